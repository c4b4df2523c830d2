/**
 * Negotiation rooms on the pure model (PROTOCOLS.md §1 "Coordination"): the
 * decision rule and its thresholds per room, one vote per critic, the
 * decision at the last vote or the deadline, the room's id as every
 * envelope's correlation_id, and an escalation answered by a human or by
 * the fallback; the list of rooms, a page at a time in the order opened.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { decideHitl } from "../../src/model/HitlDecide.js"
import { aggregate, decideOutcome, decideProposal, decideVote, selectRooms } from "../../src/model/Negotiation.js"
import { defaultThresholds, type ProposalRequest, type Vote } from "../../src/schema/Negotiation.js"
import { sameReplay, type World, world } from "../support/coordination.js"

const vote = (critic_id: string, score: number, confidence: number, passed = true): Vote => ({
  critic_id,
  score,
  confidence,
  passed,
  strengths: [],
  weaknesses: [],
  recommendations: []
})
const outcome = (votes: ReadonlyArray<Vote>, complete = true, thresholds = defaultThresholds) =>
  decideOutcome(votes, thresholds, complete).outcome

const room = (options = {}, request: Partial<ProposalRequest> = {}) => {
  const w = world({ livenessTimeoutMs: undefined, ...options })
  for (const id of ["producer", "c1", "c2", "c3"]) w.register(id)
  w.ok((d) => decideProposal(d, {
    negotiation_room_id: "r1",
    artifact_type: "CODE",
    artifact: { diff: "+1" },
    producer_id: "producer",
    requested_critics: ["c1", "c2", "c3"],
    ...request
  }))
  return w
}
const cast = (w: World, v: Vote) => w.run((d) => decideVote(d, { ...v, negotiation_room_id: "r1" }))
const expectReplay = (w: World) => {
  const { live, replayed } = sameReplay(w)
  expect(replayed).toEqual(live)
}

describe("the decision rule", () => {
  it("APPROVED when the weighted mean ≥ 7, mean confidence ≥ 0.7, pass ratio ≥ 0.8 and deviation ≤ 2", () => {
    expect(outcome([vote("a", 8, 0.9), vote("b", 7, 0.8), vote("c", 9, 1)])).toBe("APPROVED")
    // Each threshold, just missed.
    expect(outcome([vote("a", 7, 0.9), vote("b", 6.9, 0.9)])).toBe("REVISION_REQUESTED")
    expect(outcome([vote("a", 9, 0.69), vote("b", 9, 0.69)])).toBe("REVISION_REQUESTED")
    expect(outcome([vote("a", 9, 1), vote("b", 9, 1), vote("c", 9, 1), vote("d", 9, 1, false), vote("e", 9, 1, false)])).toBe("REVISION_REQUESTED")
    expect(outcome([vote("a", 9.5, 1), vote("b", 4.5, 1)])).toBe("REVISION_REQUESTED")
  })

  it("ESCALATED_TO_HITL when any confidence < 0.3, the deviation > 3, or votes are missing at the deadline; that wins over an approval", () => {
    expect(outcome([vote("a", 9, 1), vote("b", 9, 1), vote("c", 9, 1), vote("d", 9, 0.29)])).toBe("ESCALATED_TO_HITL")
    expect(outcome([vote("a", 10, 1), vote("b", 3, 1)])).toBe("ESCALATED_TO_HITL")
    expect(outcome([vote("a", 10, 1)], false)).toBe("ESCALATED_TO_HITL")
    expect(outcome([], false)).toBe("ESCALATED_TO_HITL")
    expect(aggregate([vote("a", 10, 1), vote("b", 4, 0.5)])).toEqual({
      mean: 7,
      min_score: 4,
      max_score: 10,
      std_dev: 3,
      weighted_mean: 8,
      vote_count: 2,
      mean_confidence: 0.75,
      pass_ratio: 1
    })
  })

  it("the thresholds are the room's own", () => {
    const lenient = { ...defaultThresholds, approve_weighted_mean_min: 5, escalate_std_dev_above: 5, approve_std_dev_max: 5 }
    expect(outcome([vote("a", 9.5, 1), vote("b", 4.5, 1)], true, lenient)).toBe("APPROVED")
  })

  it("any set of votes gets exactly one outcome, and an approval always meets every threshold", () => {
    const arbitraryVote = fc.record({
      score: fc.double({ min: 0, max: 10, noNaN: true }),
      confidence: fc.double({ min: 0, max: 1, noNaN: true }),
      passed: fc.boolean()
    })
    fc.assert(fc.property(fc.array(arbitraryVote, { minLength: 1, maxLength: 8 }), (votes) => {
      const all = votes.map((v, i) => vote(`c${i}`, v.score, v.confidence, v.passed))
      const decided = decideOutcome(all, defaultThresholds, true)
      const score = decided.aggregated_score
      if (decided.outcome === "APPROVED") {
        expect(score.weighted_mean).toBeGreaterThanOrEqual(7)
        expect(score.std_dev).toBeLessThanOrEqual(2)
        expect(all.every((v) => v.confidence >= 0.3)).toBe(true)
      }
      if (all.some((v) => v.confidence < 0.3)) expect(decided.outcome).toBe("ESCALATED_TO_HITL")
    }), { numRuns: 300 })
  })
})

describe("a room", () => {
  it("each critic gets the proposal, correlated by the room's id; the last requested vote decides it; the producer hears", () => {
    const w = room()
    for (const critic of ["c1", "c2", "c3"]) {
      expect(w.inbox(critic)).toMatchObject([{ type: "NEGOTIATION", correlation: "r1", payload: { type: "proposal", negotiation_room_id: "r1", artifact: { diff: "+1" } } }])
    }
    cast(w, vote("c1", 8, 0.9))
    cast(w, vote("c2", 8, 0.9))
    expect(w.state.rooms.get("r1")!.decision).toBeUndefined()
    cast(w, vote("c3", 9, 0.9))
    expect(w.state.rooms.get("r1")!.decision).toMatchObject({ outcome: "APPROVED", decided_at: 0 })
    expect(w.inbox("producer")).toMatchObject([{ type: "NEGOTIATION", correlation: "r1", payload: { type: "decision", outcome: "APPROVED" } }])
    expectReplay(w)
  })

  it("one vote per critic: a second is ALREADY_EXISTS; a stranger is refused; a decided room takes no vote", () => {
    const w = room()
    cast(w, vote("c1", 8, 0.9))
    expect(cast(w, vote("c1", 1, 0.9))).toMatchObject(Either.left({ _tag: "AlreadyExists", code: "ALREADY_EXISTS" }))
    expect(cast(w, vote("producer", 1, 0.9))).toMatchObject(Either.left({ _tag: "PermissionDenied" }))
    expect(w.run((d) => decideVote(d, { ...vote("c1", 1, 1), negotiation_room_id: "nope" }))).toMatchObject(Either.left({ _tag: "NotFound" }))
    cast(w, vote("c2", 2, 0.9, false))
    cast(w, vote("c3", 2, 0.9, false))
    expect(w.state.rooms.get("r1")!.decision!.outcome).toBe("REVISION_REQUESTED")
    expect(w.run((d) => decideProposal(d, { negotiation_room_id: "r1", artifact_type: "PLAN", producer_id: "producer", requested_critics: ["c1"] })))
      .toMatchObject(Either.left({ _tag: "AlreadyExists" }))
    expect(w.run((d) => decideProposal(d, { artifact_type: "PLAN", producer_id: "producer", requested_critics: ["ghost"] })))
      .toMatchObject(Either.left({ _tag: "NoRoute" }))
    expect(w.run((d) => decideProposal(d, { artifact_type: "PLAN", producer_id: "producer", requested_critics: ["c1", "c1"] })))
      .toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
  })

  it("at the deadline without every vote it escalates to a human (DEBATE_DEADLOCK), whose answer is the room's final word", () => {
    const w = room({}, { deadline_ms: 5_000 })
    cast(w, vote("c1", 9, 1))
    w.at(5_000)
    const decision = w.state.rooms.get("r1")!.decision!
    expect(decision).toMatchObject({ outcome: "ESCALATED_TO_HITL", decided_at: 5_000 })
    expect(w.state.hitl.get(decision.hitl_id!)).toMatchObject({ reason: "DEBATE_DEADLOCK", subject: { _tag: "Room", room_id: "r1" } })
    expect(cast(w, vote("c2", 9, 1))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    w.ok((d) => decideHitl(d, { id: decision.hitl_id!, action: "approve", rationale: "good enough", by: "alice" }))
    expect(w.state.rooms.get("r1")!.resolution).toMatchObject({ outcome: "APPROVED", by: "alice", rationale: "good enough" })
    expect(w.inbox("producer").map((m) => m.payload.type)).toEqual(["decision", "resolution"])
    expectReplay(w)
  })

  it("unanswered, the fallback decides: deny by default, or the room's thresholds alone", () => {
    const w = room({ hitlTimeoutMs: 1_000 }, { deadline_ms: 100 })
    cast(w, vote("c1", 9, 1))
    w.at(1_100)
    expect(w.state.rooms.get("r1")!.resolution).toMatchObject({ outcome: "REVISION_REQUESTED", by: "fallback" })

    const auto = room({ hitlTimeoutMs: 1_000 }, { deadline_ms: 100, hitl_fallback: "AUTO_DECIDE_THRESHOLD" })
    cast(auto, vote("c1", 9, 1))
    auto.at(1_100)
    expect(auto.state.rooms.get("r1")!.resolution).toMatchObject({ outcome: "APPROVED", by: "fallback" })
    expectReplay(auto)
  })

  it("a human may modify the outcome, but only to one the room knows", () => {
    const w = room({}, { deadline_ms: 100 })
    w.at(100)
    const hitl = w.state.rooms.get("r1")!.decision!.hitl_id!
    expect(w.run((d) => decideHitl(d, { id: hitl, action: "modify", rationale: "x", args: { outcome: "MAYBE" } }))).toMatchObject(Either.left({ _tag: "ValidationError" }))
    w.ok((d) => decideHitl(d, { id: hitl, action: "modify", rationale: "needs tests", args: { outcome: "REVISION_REQUESTED" } }))
    expect(w.state.rooms.get("r1")!.resolution).toMatchObject({ outcome: "REVISION_REQUESTED", action: "modify" })
  })
})

describe("the list of rooms", () => {
  const ids = (page: ReturnType<typeof selectRooms>) => [page.rooms.map((found) => found.negotiation_room_id), page.next]

  it("pages rooms in the order opened, decided or not, by producer or critic; a replay lists them alike", () => {
    // Ids that sort otherwise than they were opened: the order is the log's, not the ids'.
    const w = room({}, { negotiation_room_id: "z" })
    w.ok((d) => decideProposal(d, { negotiation_room_id: "b", artifact_type: "PLAN", artifact: {}, producer_id: "c1", requested_critics: ["c2"] }))
    w.ok((d) => decideProposal(d, { negotiation_room_id: "m", artifact_type: "PLAN", artifact: {}, producer_id: "c2", requested_critics: ["c3"] }))
    w.ok((d) => decideVote(d, { ...vote("c2", 9, 1), negotiation_room_id: "b" }))
    expect(ids(selectRooms(w.state, {}))).toEqual([["z", "b", "m"], undefined])
    expect(ids(selectRooms(w.state, { limit: 2 }))).toEqual([["z", "b"], "b"])
    expect(ids(selectRooms(w.state, { limit: 2, after: "b" }))).toEqual([["m"], undefined])
    // A page that ends exactly at the last room says there is no next.
    expect(ids(selectRooms(w.state, { limit: 3 }))).toEqual([["z", "b", "m"], undefined])
    expect(ids(selectRooms(w.state, { status: "decided" }))).toEqual([["b"], undefined])
    expect(ids(selectRooms(w.state, { status: "open", limit: 1 }))).toEqual([["z"], "z"])
    expect(ids(selectRooms(w.state, { status: "open", after: "z" }))).toEqual([["m"], undefined])
    // c2 criticises z and b, and produces m; the producer only z.
    expect(ids(selectRooms(w.state, { agent_id: "c2" }))).toEqual([["z", "b", "m"], undefined])
    expect(ids(selectRooms(w.state, { agent_id: "producer" }))).toEqual([["z"], undefined])
    expect(ids(selectRooms(w.state, { agent_id: "nobody" }))).toEqual([[], undefined])
    // A cursor no room has points nowhere: nothing, rather than the first page again.
    expect(ids(selectRooms(w.state, { after: "gone" }))).toEqual([[], undefined])
    expect(ids(selectRooms(w.replayed(), { limit: 2 }))).toEqual([["z", "b"], "b"])
  })
})
