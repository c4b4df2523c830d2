import { Effect, Layer } from "effect"
import { EventLogMemory, Hitl, Negotiation, Registry, Scheduler, Switchboard } from "../src/index.js"

const program = Effect.gen(function*() {
  const registry = yield* Registry
  const scheduler = yield* Scheduler
  const rooms = yield* Negotiation
  const hitl = yield* Hitl
  for (const id of ["builder", "alice", "bob"]) yield* registry.register({ agent_id: id, name: id, capabilities: ["build"] })

  // Queued by priority (−19 most urgent, FIFO within one), then sent to a free agent
  // with the capability as a message: the ACK lifecycle, redelivery, dead letters.
  const task = yield* scheduler.submit({ capability: "build", priority: -5, scope: "repo/api", input: { target: "api" } })

  // Two critics vote; the last vote decides. They disagree (standard deviation 3.5 > 3): a human is asked.
  yield* rooms.submitProposal({ negotiation_room_id: "plan-1", artifact_type: "PLAN", producer_id: "builder", requested_critics: ["alice", "bob"] })
  yield* rooms.submitVote({ negotiation_room_id: "plan-1", critic_id: "alice", score: 10, confidence: 0.9, passed: true })
  yield* rooms.submitVote({ negotiation_room_id: "plan-1", critic_id: "bob", score: 3, confidence: 0.9, passed: false })
  const decision = yield* rooms.waitForDecision({ negotiation_room_id: "plan-1" }) // bounded: 30 s by default

  // One queue for the human, the gateway's approvals in it too; the answer is the room's final word.
  yield* hitl.decide({ id: decision.hitl_id!, action: "approve", rationale: "add a rollback step", by: "release-manager" })
  const resolved = yield* rooms.waitForDecision({ negotiation_room_id: "plan-1" })
  return { task: task.task_id, outcome: decision.outcome, resolution: resolved.resolution?.outcome }
})

export const main = program.pipe(Effect.provide(Switchboard.layer().pipe(Layer.provideMerge(EventLogMemory.layer()))))
