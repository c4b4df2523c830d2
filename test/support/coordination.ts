/**
 * The coordination model alone, without the loop: a state, a clock the test
 * moves, and turns as the loop runs them (a command's events, then what the
 * deadlines and the scheduler's pass call for, until nothing more). Agents
 * take their deliveries at once, as a subscriber with room would. Every
 * event is kept, so a test can fold the log again and compare.
 */
import { Either } from "effect"
import { decideAck } from "../../src/model/Messages.js"
import { decideDeliveries } from "../../src/model/Mailboxes.js"
import { decideHeartbeat, decideRegister } from "../../src/model/Agents.js"
import { coordinationSnapshot } from "../../src/model/Coordination.js"
import { type Deciding, deciding } from "../../src/model/Hitl.js"
import { evolve, initialState, snapshot } from "../../src/model/Runtime.js"
import { decideSchedule } from "../../src/model/SchedulerDecide.js"
import type { Decision, RuntimeState } from "../../src/model/State.js"
import { decideTick } from "../../src/model/Timers.js"
import { decodeRuntimeOptions, type RuntimeOptions } from "../../src/schema/Config.js"
import type { AgentState, ErrorCode } from "../../src/schema/Envelope.js"
import type { Event } from "../../src/schema/Event.js"
import { payloadJson } from "../../src/model/Envelopes.js"

export interface World {
  readonly state: RuntimeState
  readonly log: ReadonlyArray<Event>
  readonly now: () => number
  /** A decision against the state now, its events applied, then the turn settled. */
  readonly run: <A, E>(decide: (d: Deciding) => Decision<A, E>) => Either.Either<A, E>
  /** Like `run`, failing the test on a refusal. */
  readonly ok: <A, E>(decide: (d: Deciding) => Decision<A, E>) => A
  /** Moves the clock to `ms` (from 0), turning at each deadline on the way as the loop would. */
  readonly at: (ms: number) => void
  readonly register: (agent_id: string, capabilities?: ReadonlyArray<string>) => void
  readonly heartbeat: (agent_id: string, state?: AgentState) => void
  /** Hands out what waits in these agents' mailboxes (none: every agent's). */
  readonly deliver: (...agents: ReadonlyArray<string>) => void
  readonly ack: (agent_id: string, message_id: string, stage: "READ" | "FULFILLED" | "FAILED" | "REJECTED", error_code?: ErrorCode) => void
  /** The messages queued or in flight for an agent, with their JSON payloads. */
  readonly inbox: (agent_id: string) => ReadonlyArray<{ readonly id: string; readonly type: string; readonly correlation: string; readonly payload: any; readonly location: string }>
  /** Folds the whole log again: must give the same state. */
  readonly replayed: () => RuntimeState
  readonly events: (tag: Event["_tag"]) => ReadonlyArray<Event>
}

export const world = (options: RuntimeOptions = {}, autoDeliver = true): World => {
  const config = Either.getOrThrow(decodeRuntimeOptions(options))
  const apply = evolve(config)
  const state = initialState()
  const log: Array<Event> = []
  let now = 0
  const commit = (events: ReadonlyArray<Event>) => {
    for (const event of events) {
      apply(state, event)
      log.push(event)
    }
  }
  const deliverTo = (agents: ReadonlyArray<string>) => {
    const out: Array<Event> = []
    for (const agent of agents) out.push(...decideDeliveries(state, config, agent, 1_000, now))
    commit(out)
    return out.length
  }
  const settle = () => {
    for (let i = 0; i < 100; i++) {
      const ticked = decideTick(state, config, now)
      commit(ticked)
      const scheduled = decideSchedule(deciding(state, config, now))
      commit(scheduled)
      const delivered = autoDeliver ? deliverTo([...state.agents.keys()]) : 0
      if (ticked.length + scheduled.length + delivered === 0) return
    }
    throw new Error("the turn does not settle")
  }
  const run = <A, E>(decide: (d: Deciding) => Decision<A, E>): Either.Either<A, E> => {
    const decision = decide(deciding(state, config, now))
    commit(decision.events)
    settle()
    return decision._tag === "Accepted" ? Either.right(decision.value) : Either.left(decision.error)
  }
  const self: World = {
    state,
    log,
    now: () => now,
    run,
    ok: (decide) => {
      const result = run(decide)
      if (Either.isLeft(result)) throw new Error(`refused: ${JSON.stringify(result.left)}`)
      return result.right
    },
    at: (ms) => {
      while (true) {
        const next = state.deadlines.peek()?.at
        if (next === undefined || next > ms) break
        now = Math.max(now, next)
        const top = state.deadlines.peek()
        settle()
        // A deadline handled without moving on would keep the loop turning for ever.
        if (state.deadlines.peek() === top) throw new Error(`deadline ${JSON.stringify(top)} was handled without effect`)
      }
      now = Math.max(now, ms)
      settle()
    },
    register: (agent_id, capabilities = []) => {
      self.ok(() => decideRegister(state, config, { agent_id, name: agent_id, description: "", capabilities: [...capabilities], communication_class: "STANDARD", modalities_supported: [], enforcement_mode: "enforce" }, now))
    },
    heartbeat: (agent_id, agentState) => {
      self.ok(() => decideHeartbeat(state, config, { agent_id, state: agentState }, now))
    },
    deliver: (...agents) => {
      deliverTo(agents.length === 0 ? [...state.agents.keys()] : agents)
      settle()
    },
    ack: (agent_id, message_id, stage, error_code) => {
      self.ok(() => decideAck(state, config, { agent_id, message_id, stage, error_code }, now))
    },
    inbox: (agent_id) =>
      [...state.messages.values()]
        .filter((message) => message.to === agent_id && message.location !== "done" && message.envelope !== undefined)
        .map((message) => ({
          id: message.id,
          type: message.envelope!.message_type,
          correlation: message.correlationId,
          payload: payloadJson(message.envelope!),
          location: message.location
        })),
    replayed: () => log.reduce((folded, event) => apply(folded, event), initialState()),
    events: (tag) => log.filter((event) => event._tag === tag)
  }
  return self
}

/** Whether the log folds again to the same state: the runtime's snapshot and coordination's. */
export const sameReplay = (w: World) => {
  const again = w.replayed()
  return {
    live: { ...snapshot(w.state), ...coordinationSnapshot(w.state) },
    replayed: { ...snapshot(again), ...coordinationSnapshot(again) }
  }
}
