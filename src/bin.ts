#!/usr/bin/env node
/**
 * The `switchboard` command line.
 *
 *   switchboard replay <store> [--at N] [--agent ID] [--message ID]
 *
 * prints the timeline of a store (all of it, or what concerns an agent or a
 * message, up to offset N) and the state it reaches.
 */
import { Args, Command, Options } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, DateTime, Effect, Option, Stream } from "effect"
import { openStore } from "./layers/EventLogSqlite.js"
import * as Replay from "./layers/Replay.js"
import type { RouterSnapshot } from "./model/Router.js"

const time = (ms: number) => DateTime.formatIso(DateTime.unsafeMake(ms))

export const renderState = (
  offset: number,
  state: RouterSnapshot,
  filter: { readonly agent?: string | undefined; readonly message?: string | undefined }
): ReadonlyArray<string> => {
  const lines = [`state at offset ${offset}:`]
  if (filter.message !== undefined) {
    const message = state.messages[filter.message]
    lines.push(message === undefined
      ? `  message ${filter.message}: unknown at this offset`
      : `  message ${filter.message}: ${message.stage}${message.error_code ? ` (${message.error_code})` : ""}, ` +
        `to ${message.to}, ${message.location.replace("_", " ")}, attempts ${message.attempts}` +
        (message.dead_letter ? ", dead letter" : ""))
  }
  const agents = Object.entries(state.agents).filter(([id]) => filter.agent === undefined || id === filter.agent)
  for (const [id, agent] of agents) {
    const mailbox = state.mailboxes[id]
    const queued = mailbox ? mailbox.queued.PRIVILEGED.length + mailbox.queued.STANDARD.length + mailbox.queued.BULK.length : 0
    lines.push(
      `  agent ${id}: ${agent.registered ? (agent.live ? agent.state : "unavailable") : "deregistered"}; ` +
        `queued ${queued}, in flight ${mailbox?.in_flight ?? 0}, dead letters ${mailbox?.dead_letters.length ?? 0}` +
        (mailbox ? `, next delivery_seq ${mailbox.next_delivery_seq}` : "")
    )
  }
  if (filter.agent === undefined && filter.message === undefined) {
    const stages = new Map<string, number>()
    for (const message of Object.values(state.messages)) stages.set(message.stage, (stages.get(message.stage) ?? 0) + 1)
    lines.push(`  messages: ${[...stages].map(([stage, n]) => `${n} ${stage}`).join(", ") || "none"}`)
  }
  return lines
}

const replay = Command.make(
  "replay",
  {
    store: Args.file({ name: "store" }).pipe(Args.withDescription("a Switchboard SQLite store")),
    at: Options.integer("at").pipe(Options.optional, Options.withDescription("stop at this offset")),
    agent: Options.text("agent").pipe(Options.optional, Options.withDescription("only what concerns this agent")),
    message: Options.text("message").pipe(Options.optional, Options.withDescription("only what concerns this message"))
  },
  ({ agent, at, message, store }) =>
    Effect.gen(function*() {
      const filter = { agent: Option.getOrUndefined(agent), message: Option.getOrUndefined(message) }
      const to = Option.getOrUndefined(at)
      yield* Replay.timeline({ ...filter, to }).pipe(
        Stream.runForEach((entry) => Console.log(`#${entry.offset}  ${time(entry.at)}  ${entry.text}`))
      )
      const reached = yield* Replay.stateAt(to)
      for (const line of renderState(reached.offset, Replay.snapshot(reached.state), filter)) yield* Console.log(line)
    }).pipe(Effect.provide(openStore(store)))
).pipe(Command.withDescription("print the timeline of a store and the state it reaches"))

const switchboard = Command.make("switchboard").pipe(Command.withSubcommands([replay]))

const cli = Command.run(switchboard, { name: "switchboard", version: "0.1.0" })

cli(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
