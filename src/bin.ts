#!/usr/bin/env node
/**
 * The `switchboard` command line.
 *
 *   switchboard replay <store> [--at N] [--agent ID] [--message ID]
 *
 * prints the timeline of a store (all of it, or what concerns an agent or a
 * message, up to offset N) and the state it reaches.
 *
 *   switchboard keys create --keys FILE (--agent ID | --operator)
 *
 * issues an API key (`server/KeysCommand.ts`).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, DateTime, Effect, Option, Stream } from "effect"
import * as EventLogSqlite from "./layers/EventLogSqlite.js"
import * as Replay from "./layers/Replay.js"
import type { RuntimeSnapshot } from "./model/Runtime.js"
import type { NotAStore, PersistenceError, UndecodableRecord, ValidationError as InvalidInput } from "./schema/Errors.js"
import { type KeysCommandError, keysCommand } from "./server/KeysCommand.js"
import { serveCommand } from "./server/ServeCommand.js"

const time = (ms: number) => DateTime.formatIso(DateTime.unsafeMake(ms))

export const renderState = (
  offset: number,
  state: RuntimeSnapshot,
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
    at: Options.integer("at").pipe(
      // 0 is allowed: it is the state before the first record, the empty one.
      Options.filterMap(Option.liftPredicate((at) => at >= 0), "--at must be an offset, 0 or more"),
      Options.optional,
      Options.withDescription("stop at this offset (0: before the first record)")
    ),
    agent: Options.text("agent").pipe(Options.optional, Options.withDescription("only what concerns this agent")),
    message: Options.text("message").pipe(Options.optional, Options.withDescription("only what concerns this message"))
  },
  ({ agent, at, message, store }) =>
    Effect.gen(function*() {
      const filter = { agent: Option.getOrUndefined(agent), message: Option.getOrUndefined(message) }
      const asked = Option.getOrUndefined(at)
      // One head for the timeline and the state: another process may be writing the store.
      const to = yield* Replay.lastOffset(asked)
      yield* Replay.timeline({ ...filter, to }).pipe(
        Stream.runForEach((entry) => Console.log(`#${entry.offset}  ${time(entry.at)}  ${entry.text}`))
      )
      const reached = yield* Replay.stateAt(to)
      if (asked !== undefined && reached.offset < asked) {
        yield* Console.error(`switchboard: the store ends at offset ${reached.offset}, before --at ${asked}`)
      }
      for (const line of renderState(reached.offset, Replay.snapshot(reached.state), filter)) yield* Console.log(line)
    }).pipe(Effect.provide(EventLogSqlite.layerReadonly({ filename: store })))
).pipe(Command.withDescription("print the timeline of a store and the state it reaches"))

const switchboard = Command.make("switchboard").pipe(Command.withSubcommands([replay, serveCommand, keysCommand]))

const cli = Command.run(switchboard, { name: "switchboard", version: "0.1.0" })

/**
 * A schema's reason is a tree that opens with the whole union of events,
 * thousands of characters long: the keys along it and its last line, the
 * leaf, say what is wrong. A leaf may still list every expected literal; its
 * end keeps the value actually found.
 */
const shortReason = (reason: string): string => {
  const lines = reason.split("\n").map((line) => line.replace(/^[\s└├│─]+/u, ""))
  if (lines.length === 1) return reason
  const path = lines.flatMap((line) => {
    const key = /^\[(.*)\]$/.exec(line)?.[1]
    return key === undefined ? [] : [key.replace(/^"(.*)"$/, "$1")]
  })
  const leaf = lines[lines.length - 1]
  return (path.length > 0 ? `${path.join(".")}: ` : "") +
    (leaf.length > 120 ? `${leaf.slice(0, 70)} … ${leaf.slice(-40)}` : leaf)
}

const failureLine = (error: NotAStore | PersistenceError | UndecodableRecord | InvalidInput | KeysCommandError | Error): string =>
  "_tag" in error && error._tag === "UndecodableRecord"
    ? `the record at offset ${error.offset} cannot be decoded: ${shortReason(error.reason)}`
    : error.message

cli(process.argv).pipe(
  // Failures of the store are expected (a wrong path, an edited file): one line
  // says them; runMain's report would add a stack trace that only helps for bugs.
  Effect.tapErrorCause((cause) =>
    Option.match(Cause.failureOption(cause), {
      onSome: (error) =>
        // @effect/cli has printed its own validation errors already.
        ValidationError.isValidationError(error) ? Effect.void : Console.error(`switchboard: ${failureLine(error)}`),
      onNone: () => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(cause)
    })
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
