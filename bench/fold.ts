/**
 * Folding the log: what `evolve` costs a message (its accepted, delivered and
 * acknowledged events) on the runtime's state, outside any loop or store:
 * the work a replay and a restart do, and a part of every live turn. Run
 * twice: messages numbered by their producer (so that dedup fingerprints
 * each payload, as PROTOCOLS.md's rule asks) and not numbered. The baseline,
 * in the same run, is a plain JavaScript Map taking one entry per message.
 *
 * Flags: `--messages N` (or BENCH_MESSAGES), default 20,000; best of 7 runs.
 */
import { Console, Effect } from "effect"
import { buildEnvelope } from "../src/model/Envelopes.js"
import { evolve, initialState } from "../src/model/Runtime.js"
import { defaultRuntimeConfig } from "../src/schema/Config.js"
import type { Event } from "../src/schema/Event.js"
import { intOption, printResult } from "./report.js"

const payload = new Uint8Array(256).fill(65)

const agent = (agent_id: string) => ({
  agent_id,
  name: agent_id,
  description: "",
  capabilities: [],
  communication_class: "STANDARD" as const,
  modalities_supported: [],
  enforcement_mode: "enforce" as const,
  depth: 0
})

const eventsOf = (count: number, numbered: boolean): ReadonlyArray<Event> => {
  const events: Array<Event> = [
    { _tag: "AgentRegistered", agent: agent("p"), liveness_deadline: undefined, at: 0 },
    { _tag: "AgentRegistered", agent: agent("c"), liveness_deadline: undefined, at: 0 }
  ]
  for (let i = 0; i < count; i++) {
    const envelope = buildEnvelope({ producer_id: "p", payload, sequence_number: numbered ? i + 1 : 0 }, `m${i}`, 0)
    events.push(
      { _tag: "MessageAccepted", to: "c", route: { _tag: "Agent", agent_id: "c" }, lane: "STANDARD", envelope, expires_at: undefined, at: 1 },
      { _tag: "MessageDelivered", message_id: `m${i}`, to: "c", attempt: 1, delivery_seq: i + 1, lane: "STANDARD", ack_deadline: 30_001, at: 1 },
      { _tag: "MessageAcked", message_id: `m${i}`, agent_id: "c", stage: "FULFILLED", at: 2 }
    )
  }
  return events
}

/** The best of 7 runs of `work`, in µs a message. */
const best = (count: number, work: () => void) => {
  let fastest = Infinity
  for (let round = 0; round < 7; round++) {
    const start = performance.now()
    work()
    fastest = Math.min(fastest, performance.now() - start)
  }
  return (fastest * 1000) / count
}

export const main = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const count = intOption(args, "messages", "BENCH_MESSAGES") ?? 20_000
    const apply = evolve(defaultRuntimeConfig)
    const fold = (events: ReadonlyArray<Event>) => () => {
      const state = initialState()
      for (const event of events) apply(state, event)
    }
    const round = (value: number) => Math.round(value * 1000) / 1000
    const numbered = round(best(count, fold(eventsOf(count, true))))
    const plain = round(best(count, fold(eventsOf(count, false))))
    const baseline = round(best(count, () => {
      const map = new Map<string, number>()
      for (let i = 0; i < count; i++) map.set(`m${i}`, i)
    }))
    yield* Console.log(`fold: ${count} messages (accepted, delivered, acked), best of 7; baseline: a Map taking one entry a message`)
    yield* Console.log(`numbered messages   ${numbered.toFixed(2)} µs/message  baseline ${baseline.toFixed(3)} µs  ratio ${(numbered / baseline).toFixed(1)}`)
    yield* Console.log(`unnumbered messages ${plain.toFixed(2)} µs/message  baseline ${baseline.toFixed(3)} µs  ratio ${(plain / baseline).toFixed(1)}`)
    yield* printResult({
      bench: "fold",
      figures: { numbered_us: numbered, unnumbered_us: plain, baseline_us: baseline, messages: count },
      ratios: { numbered_vs_baseline: round(numbered / baseline), unnumbered_vs_baseline: round(plain / baseline) }
    })
  })
