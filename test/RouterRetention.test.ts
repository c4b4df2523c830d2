import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { buildEnvelope } from "../src/model/Envelopes.js"
import { decideRegister } from "../src/model/Agents.js"
import { decideDeliveries } from "../src/model/Mailboxes.js"
import { decideAck, decideRedrive, decideSend } from "../src/model/Messages.js"
import { evolve, initialState, type RuntimeState } from "../src/model/Runtime.js"
import type { Decision } from "../src/model/State.js"
import { decideTick } from "../src/model/Timers.js"
import { AgentDescriptor } from "../src/schema/Agent.js"
import { defaultRuntimeConfig, type RuntimeConfig } from "../src/schema/Config.js"
import type { Event } from "../src/schema/Event.js"

// The rules alone, folded by hand as the runtime's loop does: what the state
// keeps of a message is not visible through the services.
const config: RuntimeConfig = { ...defaultRuntimeConfig, ackWaitMs: 1_000, maxAttempts: 1, livenessTimeoutMs: undefined }
const apply = evolve(config)

const step = <A, E>(state: RuntimeState, decided: Decision<A, E> | ReadonlyArray<Event>) => {
  const events = Array.isArray(decided) ? decided : (decided as Decision<A, E>).events
  if (!Array.isArray(decided) && (decided as Decision<A, E>)._tag === "Refused") throw new Error("refused")
  for (const event of events) apply(state, event)
  return events
}

const started = () => {
  const state = initialState()
  for (const agent_id of ["a", "b"]) {
    step(state, decideRegister(state, config, Schema.decodeSync(AgentDescriptor)({ agent_id, name: agent_id }), 0))
  }
  return state
}

const send = (state: RuntimeState, id: string, token: string, now: number) => {
  const envelope = buildEnvelope({ producer_id: "a", payload: "x".repeat(1_000), idempotency_token: token }, id, now)
  step(state, decideSend(state, config, { route: { _tag: "Agent", agent_id: "b" }, envelope }, now))
  step(state, decideDeliveries(state, config, "b", 10, now))
}

describe("Router state: what it keeps of a finished message", () => {
  it("lets the envelope of a message go when it finishes, and still answers for it", () => {
    const state = started()
    for (const [id, stage] of [["m1", "FULFILLED"], ["m2", "REJECTED"], ["m3", "FAILED"]] as const) {
      send(state, id, `t-${id}`, 1)
      expect(state.messages.get(id)!.envelope?.payload.length).toBe(1_000)
      step(state, decideAck(state, config, { agent_id: "b", message_id: id, stage, error_code: stage === "FULFILLED" ? undefined : "INTERNAL_ERROR" }, 2))
      const entry = state.messages.get(id)!
      expect(entry).toMatchObject({ id, producerId: "a", stage, location: "done", envelope: undefined })
    }
    // Still remembered: a duplicate is refused with the original id and its stage.
    const again = buildEnvelope({ producer_id: "a", payload: "again", idempotency_token: "t-m1" }, "m1-again", 3)
    const refused = decideSend(state, config, { route: { _tag: "Agent", agent_id: "b" }, envelope: again }, 3)
    expect(refused._tag === "Refused" && refused.error).toMatchObject({ _tag: "DuplicateDetected", original_message_id: "m1", stage: "FULFILLED" })
    // A late ack is still recorded.
    step(state, decideAck(state, config, { agent_id: "b", message_id: "m1", stage: "FAILED", error_code: "INTERNAL_ERROR" }, 4))
    expect(state.messages.get("m1")).toMatchObject({ stage: "FULFILLED", lateAcks: 1 })
  })

  it("keeps the envelope of a dead letter, re-drives it whole, and lets it go once it finishes", () => {
    const state = started()
    send(state, "m1", "t1", 1)
    step(state, decideTick(state, config, 1_001))
    expect(state.messages.get("m1")).toMatchObject({ stage: "TIMED_OUT", deadLetter: true })
    expect(state.messages.get("m1")!.envelope?.payload.length).toBe(1_000)
    step(state, decideRedrive(state, "m1", 2_000))
    const delivered = step(state, decideDeliveries(state, config, "b", 10, 2_000))
    expect(delivered).toMatchObject([{ _tag: "MessageDelivered", message_id: "m1", attempt: 1 }])
    expect(state.messages.get("m1")!.envelope?.payload.length).toBe(1_000)
    step(state, decideAck(state, config, { agent_id: "b", message_id: "m1", stage: "FULFILLED" }, 2_001))
    expect(state.messages.get("m1")).toMatchObject({ stage: "FULFILLED", deadLetter: false, envelope: undefined })
    // No longer a dead letter: nothing to re-drive.
    expect(decideRedrive(state, "m1", 2_002)._tag).toBe("Refused")
  })
})
