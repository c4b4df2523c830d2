/**
 * SW4RM's coordination services over real gRPC on 127.0.0.1: the
 * scheduler, worktree bindings, negotiation rooms and HITL, served beside
 * the router and registry on one port, called by a client built only from
 * the project's `.proto` files (`grpcClient.ts`), with agents' keys and the
 * operator's. Each RPC's happy path, and its refusals as typed statuses
 * with the code in the trailers: bad input, unknown things, a second vote,
 * a state that does not allow it, an agent's key acting for another, a
 * bounded wait that runs out.
 */
import * as Grpc from "@grpc/grpc-js"
import { status as Code } from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { Chunk, Effect, Fiber, Schedule, Stream, TestClock } from "effect"
import { type CallError, type Client, connect, trailers } from "./grpcClient.js"
import { request, start } from "./harness.js"
import { keys, keysFile, strangerKey } from "./wire.js"

const promise = <A>(evaluate: () => Promise<A>) => Effect.promise(evaluate)

/** The error a call fails with; the test fails if it succeeds. */
const refusalOf = (evaluate: () => Promise<unknown>) =>
  promise(() =>
    evaluate().then(
      (answer) => Promise.reject(new Error(`expected a refusal, got ${JSON.stringify(answer)}`)),
      (error: CallError) => error
    )
  )

/** A refusal's status, SW4RM code and retry class, and that its details match. */
const expectRefusal = (
  evaluate: () => Promise<unknown>,
  code: number,
  sw4rm: string,
  details: RegExp,
  retryable = "false"
) =>
  Effect.gen(function*() {
    const error = yield* refusalOf(evaluate)
    expect({ ...trailers(error), details: error.details }).toEqual({ code, sw4rm, retryable, details: expect.stringMatching(details) })
  })

/** Real time, whatever the test's clock. */
const pause = (ms: number) => promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** The fiber's result, the runtime's clock (the test's) moved a second at a time until it has one. */
const ticking = <A>(fiber: Fiber.RuntimeFiber<A>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") return yield* Fiber.join(fiber)
      yield* TestClock.adjust("1 second")
      yield* pause(20)
    }
    return yield* Effect.dieMessage("still waiting after 100 ticks")
  })

const json = (value: unknown) => Buffer.from(JSON.stringify(value))

/** A server with keys, and a client per key, closed with the test's scope. */
const world = Effect.gen(function*() {
  const started = yield* start({ keys: keysFile, runtime: { livenessTimeoutMs: undefined }, grpc: {} })
  const clients: Array<Client> = []
  yield* Effect.addFinalizer(() => Effect.sync(() => clients.forEach((client) => client.close())))
  const client = (key: string) => {
    const made = connect(started.grpcPort!, key)
    clients.push(made)
    return made
  }
  return { ...started, op: client(keys.operator), a: client(keys.a), b: client(keys.b), stranger: client(strangerKey) }
})

describe("SW4RM's coordination over gRPC", () => {
  it.scoped("SchedulerService: submit, preempt, poll and purge the activity, shut down; refusals as statuses", () =>
    Effect.gen(function*() {
      const { a, b, op, stranger } = yield* world
      yield* promise(() => a.register("a", { capabilities: ["work"] }))
      yield* promise(() => b.register("b"))
      const inbox = a.stream("a")
      const submitted = yield* promise(() =>
        op.rpc("scheduler", "SubmitTask", {
          agent_id: "capability:work",
          task_id: "t1",
          priority: 5,
          params: json({ target: "api" }),
          content_type: "application/json",
          scope: "repo/api"
        })
      )
      expect(submitted.answer).toEqual({ accepted: true, reason: "" })
      expect(submitted.headers["sw4rm-task-id"]).toBe("t1")
      const [task] = yield* promise(() => inbox.until(1))
      expect(JSON.parse(task.msg.payload.toString())).toMatchObject({ type: "task", task_id: "t1", input: { target: "api" }, scope: "repo/api" })

      // An agent's key submits as its agent; a task with no id is named by the runtime. Bytes that are not JSON are kept.
      const named = yield* promise(() =>
        b.rpc("scheduler", "SubmitTask", { agent_id: "b", priority: 10, params: Buffer.from([1, 2, 3]), content_type: "application/octet-stream" })
      )
      expect(named.headers["sw4rm-task-id"]).toMatch(/^task-/)
      const bInbox = b.stream("b")
      const [bTask] = yield* promise(() => bInbox.until(1))
      expect(JSON.parse(bTask.msg.payload.toString()).input).toEqual({ content_type: "application/octet-stream", base64: "AQID" })

      // A queued task less urgent than what a runs does not preempt it.
      yield* promise(() => op.rpc("scheduler", "SubmitTask", { agent_id: "a", task_id: "t2", priority: 10 }))
      expect((yield* promise(() => op.rpc("scheduler", "RequestPreemption", { agent_id: "a", task_id: "t2", reason: "test" }))).answer)
        .toEqual({ enqueued: false })

      const activity = yield* promise(() => a.rpc("scheduler", "PollActivityBuffer", { agent_id: "a" }))
      expect(activity.answer.entries).toEqual(expect.arrayContaining([expect.objectContaining({ task_id: "t1", timestamp: expect.any(String) })]))
      const purged = yield* promise(() => a.rpc("scheduler", "PurgeActivity", { agent_id: "a", task_ids: ["t1"] }))
      expect(purged.answer.purged).toBeGreaterThan(0)
      expect((yield* promise(() => a.rpc("scheduler", "PollActivityBuffer", { agent_id: "a" }))).answer.entries).toEqual([])

      yield* expectRefusal(() => op.rpc("scheduler", "SubmitTask", { agent_id: "a", priority: 30 }), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /priority/)
      yield* expectRefusal(
        () => op.rpc("scheduler", "SubmitTask", { agent_id: "a", params: Buffer.from("{"), content_type: "application/json" }),
        Code.INVALID_ARGUMENT,
        "VALIDATION_ERROR",
        /params: is not JSON/
      )
      yield* expectRefusal(() => op.rpc("scheduler", "SubmitTask", { agent_id: "" }), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /agent_id: must not be empty/)
      yield* expectRefusal(() => op.rpc("scheduler", "SubmitTask", { agent_id: "a", task_id: "t1" }), Code.ALREADY_EXISTS, "ALREADY_EXISTS", /t1/)
      yield* expectRefusal(() => op.rpc("scheduler", "RequestPreemption", { agent_id: "a", task_id: "nope" }), Code.NOT_FOUND, "NOT_FOUND", /nope/)
      yield* expectRefusal(() => a.rpc("scheduler", "RequestPreemption", { agent_id: "a", task_id: "t2" }), Code.PERMISSION_DENIED, "PERMISSION_DENIED", /operators only/)
      yield* expectRefusal(() => a.rpc("scheduler", "PollActivityBuffer", { agent_id: "b" }), Code.PERMISSION_DENIED, "PERMISSION_DENIED", /not b/)
      yield* expectRefusal(() => a.rpc("scheduler", "ShutdownAgent", { agent_id: "b" }), Code.PERMISSION_DENIED, "PERMISSION_DENIED", /not b/)
      yield* expectRefusal(() => a.rpc("scheduler", "PurgeActivity", { agent_id: "b", task_ids: [] }), Code.PERMISSION_DENIED, "PERMISSION_DENIED", /not b/)
      yield* expectRefusal(() => stranger.rpc("scheduler", "PollActivityBuffer", { agent_id: "a" }), Code.UNAUTHENTICATED, "PERMISSION_DENIED", /unknown API key/)

      expect((yield* promise(() => a.rpc("scheduler", "ShutdownAgent", { agent_id: "a", grace_period: { seconds: 1, nanos: 0 } }))).answer)
        .toEqual({ ok: true })
      inbox.cancel()
      bInbox.cancel()
    }))

  it.scoped("WorktreeService: bind, switch, approve, reject, status, unbind; the operator's approvals; refusals", () =>
    Effect.gen(function*() {
      const { a, b, gateway, op } = yield* world
      yield* promise(() => a.register("a"))
      yield* promise(() => b.register("b"))
      expect((yield* promise(() => a.rpc("worktree", "Bind", { agent_id: "a", repo_id: "repo", worktree_id: "main" }))).answer)
        .toEqual({ ok: true, reason: "" })
      const status = () => promise(() => a.rpc("worktree", "Status", { agent_id: "a" })).pipe(Effect.map(({ answer }) => answer))
      expect(yield* status()).toEqual({ repo_id: "repo", worktree_id: "main", state: "BOUND_HOME" })

      const asked = yield* promise(() => a.rpc("worktree", "RequestSwitch", { agent_id: "a", target_worktree_id: "feature" }))
      expect(asked.answer).toEqual({ repo_id: "repo", worktree_id: "main", state: "SWITCH_PENDING" })
      yield* expectRefusal(() => a.rpc("worktree", "ApproveSwitch", { agent_id: "a" }), Code.PERMISSION_DENIED, "PERMISSION_DENIED", /operators only/)
      yield* expectRefusal(
        () => op.rpc("worktree", "ApproveSwitch", { agent_id: "a", target_worktree_id: "other" }),
        Code.FAILED_PRECONDITION,
        "FAILED_PRECONDITION",
        /pending switch is to feature, not other/
      )
      const approved = yield* promise(() => op.rpc("worktree", "ApproveSwitch", { agent_id: "a", target_worktree_id: "feature", ttl_ms: 60_000 }))
      expect(approved.answer).toEqual({ repo_id: "repo", worktree_id: "feature", state: "BOUND_NON_HOME" })
      yield* expectRefusal(() => op.rpc("worktree", "RejectSwitch", { agent_id: "a" }), Code.FAILED_PRECONDITION, "FAILED_PRECONDITION", /no switch pending/)

      yield* promise(() => a.rpc("worktree", "Unbind", { agent_id: "a" }))
      expect(yield* status()).toEqual({ repo_id: "", worktree_id: "", state: "UNBOUND" })
      yield* promise(() => a.rpc("worktree", "Bind", { agent_id: "a", repo_id: "repo", worktree_id: "main" }))
      yield* promise(() => a.rpc("worktree", "RequestSwitch", { agent_id: "a", target_worktree_id: "hotfix" }))
      const rejected = yield* promise(() => op.rpc("worktree", "RejectSwitch", { agent_id: "a", reason: "not now" }))
      expect(rejected.answer).toEqual({ repo_id: "repo", worktree_id: "main", state: "BOUND_HOME" })

      yield* expectRefusal(() => b.rpc("worktree", "RequestSwitch", { agent_id: "b", target_worktree_id: "x" }), Code.FAILED_PRECONDITION, "FAILED_PRECONDITION", /b/)
      yield* expectRefusal(() => a.rpc("worktree", "Bind", { agent_id: "b", repo_id: "repo", worktree_id: "main" }), Code.PERMISSION_DENIED, "PERMISSION_DENIED", /not b/)
      yield* expectRefusal(() => a.rpc("worktree", "Status", { agent_id: "b" }), Code.PERMISSION_DENIED, "PERMISSION_DENIED", /not b/)
      yield* expectRefusal(() => a.rpc("worktree", "Bind", { agent_id: "a", repo_id: "", worktree_id: "main" }), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /repo_id: must not be empty/)
      // The key's refusals are in the audit, as over HTTP.
      const denied = Chunk.toReadonlyArray(yield* Stream.runCollect(gateway.audit))
        .map((entry) => entry.record)
        .filter((record) => record.agent_id === "a" && /^den/.test(record.decision))
        .map((record) => record.action)
      expect(denied).toEqual(expect.arrayContaining(["worktree.approve", "worktree.bind", "worktree.status"]))
    }))

  it.scoped("NegotiationRoomService: propose, vote, read the votes, get and wait for the decision; refusals and a bounded wait", () =>
    Effect.gen(function*() {
      const { a, b, op } = yield* world
      yield* promise(() => a.register("a"))
      yield* promise(() => b.register("b"))
      yield* promise(() => op.register("c"))
      const proposal = { artifact_type: "CODE", artifact_id: "art-1", producer_id: "a", artifact: json({ diff: "+1" }), requested_critics: ["b", "c"] }
      // No room id: the room is named after the artifact, as SW4RM's reference keys rooms.
      expect((yield* promise(() => a.rpc("negotiation", "SubmitProposal", { proposal }))).answer)
        .toEqual({ artifact_id: "art-1", negotiation_room_id: "art-1" })
      yield* expectRefusal(() => a.rpc("negotiation", "SubmitProposal", { proposal }), Code.ALREADY_EXISTS, "ALREADY_EXISTS", /art-1/)
      yield* expectRefusal(() => a.rpc("negotiation", "SubmitProposal", { proposal: { ...proposal, artifact_type: 0 } }), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /artifact_type: is required \(0 is ARTIFACT_TYPE_UNSPECIFIED\)/)
      yield* expectRefusal(() => a.rpc("negotiation", "SubmitProposal", {}), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /proposal: is required/)
      yield* expectRefusal(() => a.rpc("negotiation", "SubmitProposal", { proposal: { ...proposal, artifact_id: "art-2", producer_id: "b" } }), Code.PERMISSION_DENIED, "PERMISSION_DENIED", /not b/)

      expect((yield* promise(() => a.rpc("negotiation", "GetDecision", { artifact_id: "art-1" }))).answer).toEqual({ decision: null })
      // Bounded: by timeout_seconds on the server (on the runtime's clock, the test's), and by the call's own deadline.
      const bounded = yield* Effect.fork(refusalOf(() => a.rpc("negotiation", "WaitForDecision", { negotiation_room_id: "art-1", timeout_seconds: 1 })))
      const ranOut = yield* ticking(bounded)
      expect({ ...trailers(ranOut), details: ranOut.details })
        .toEqual({ code: Code.DEADLINE_EXCEEDED, sw4rm: "DEADLINE_EXCEEDED", retryable: "true", details: "no decision for art-1 within 1000 ms" })
      const late = yield* refusalOf(() => a.rpc("negotiation", "WaitForDecision", { negotiation_room_id: "art-1" }, 300))
      expect(late.code).toBe(Code.DEADLINE_EXCEEDED)

      const vote = { artifact_id: "art-1", negotiation_room_id: "art-1", critic_id: "b", score: 9, confidence: 0.9, passed: true, strengths: ["small"] }
      expect((yield* promise(() => b.rpc("negotiation", "SubmitVote", { vote }))).answer).toEqual({ artifact_id: "art-1", critic_id: "b" })
      yield* expectRefusal(() => b.rpc("negotiation", "SubmitVote", { vote }), Code.ALREADY_EXISTS, "ALREADY_EXISTS", /b/)
      yield* expectRefusal(() => a.rpc("negotiation", "SubmitVote", { vote: { ...vote, critic_id: "c" } }), Code.PERMISSION_DENIED, "PERMISSION_DENIED", /not c/)
      yield* expectRefusal(() => op.rpc("negotiation", "SubmitVote", { vote: { ...vote, critic_id: "c", artifact_id: "other" } }), Code.NOT_FOUND, "NOT_FOUND", /artifact other in room art-1/)
      yield* expectRefusal(() => op.rpc("negotiation", "SubmitVote", { vote: { ...vote, critic_id: "c", negotiation_room_id: "nope", artifact_id: "" } }), Code.NOT_FOUND, "NOT_FOUND", /room nope/)
      yield* expectRefusal(() => op.rpc("negotiation", "SubmitVote", { vote: { ...vote, critic_id: "c", score: 11 } }), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /score/)
      yield* expectRefusal(() => op.rpc("negotiation", "GetVotes", {}), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /negotiation_room_id: is required/)

      const votes = (yield* promise(() => a.rpc("negotiation", "GetVotes", { artifact_id: "art-1" }))).answer
      expect(votes).toMatchObject({ vote_count: 1, votes: [{ critic_id: "b", score: 9, strengths: ["small"], negotiation_room_id: "art-1", artifact_id: "art-1" }] })
      expect(votes.votes[0].voted_at.seconds).toBeGreaterThan(0)

      // The last vote decides; a wait under way returns the decision.
      const waiting = yield* Effect.fork(promise(() => a.rpc("negotiation", "WaitForDecision", { artifact_id: "art-1", timeout_seconds: 30 })))
      yield* promise(() => op.rpc("negotiation", "SubmitVote", { vote: { ...vote, critic_id: "c", score: 8, confidence: 0.8 } }))
      const decided = (yield* Fiber.join(waiting)).answer.decision
      expect(decided).toMatchObject({
        artifact_id: "art-1",
        negotiation_room_id: "art-1",
        outcome: "APPROVED",
        aggregated_score: { vote_count: 2, min_score: 8, max_score: 9 }
      })
      expect(decided.votes).toHaveLength(2)
      expect((yield* promise(() => b.rpc("negotiation", "GetDecision", { negotiation_room_id: "art-1" }))).answer.decision).toMatchObject({ outcome: "APPROVED" })
      yield* expectRefusal(() => op.rpc("negotiation", "SubmitVote", { vote: { ...vote, critic_id: "c" } }), Code.ALREADY_EXISTS, "ALREADY_EXISTS", /c/)
    }))

  it.scoped("HitlService: Decide asks a human in the one queue and answers the human's decision; bounded by the call's deadline", () =>
    Effect.gen(function*() {
      const { a, grpcPort, url } = yield* world
      yield* promise(() => a.register("a"))
      const asked = yield* Effect.fork(promise(() =>
        a.rpc("hitl", "Decide", { reason_type: "SECURITY_APPROVAL", context: json({ secret: "db" }), proposed_actions: ["rotate"], priority: 2 })
      ))
      // The human finds it in the queue, as the agent's question, and modifies it.
      const queued = yield* request(`${url}/hitl`, { key: keys.operator }).pipe(
        Effect.filterOrFail((answer) => answer.body.length > 0),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.compose(Schedule.recurs(200))))
      )
      expect(queued.body[0]).toMatchObject({ source: "hitl", reason: "SECURITY_APPROVAL", agent_id: "a", priority: 2, context: { secret: "db" } })
      const id = queued.body[0].id
      const decided = yield* request(`${url}/hitl/${id}/decide`, {
        method: "POST",
        key: keys.operator,
        body: { action: "modify", rationale: "rotate the replica only", args: { replica: true } }
      })
      expect(decided.status).toBe(200)
      const { answer, headers } = yield* Fiber.join(asked)
      expect(headers["sw4rm-hitl-id"]).toBe(id)
      expect({ ...answer, decision_payload: JSON.parse(answer.decision_payload.toString()) })
        .toEqual({ action: "modify", rationale: "rotate the replica only", decision_payload: { replica: true } })

      yield* expectRefusal(() => a.rpc("hitl", "Decide", { reason_type: 0 }), Code.INVALID_ARGUMENT, "VALIDATION_ERROR", /reason_type: is required \(0 is HITL_REASON_UNSPECIFIED\)/)
      const late = yield* refusalOf(() => a.rpc("hitl", "Decide", { reason_type: "MANUAL_OVERRIDE" }, 300))
      expect(late.code).toBe(Code.DEADLINE_EXCEEDED)
      // Bytes that are no HitlInvocation (a field cut short): INVALID_ARGUMENT, as on the router.
      const malformed = yield* promise(() =>
        new Promise<CallError>((resolve, reject) => {
          const raw = new Grpc.Client(`127.0.0.1:${grpcPort}`, Grpc.credentials.createInsecure())
          const metadata = new Grpc.Metadata()
          metadata.set("authorization", `Bearer ${keys.a}`)
          raw.makeUnaryRequest("/sw4rm.hitl.HitlService/Decide", (value: Buffer) => value, (value: Buffer) => value, Buffer.from([0x12, 0xff, 0xff]), metadata, (error) => {
            raw.close()
            if (error === null) reject(new Error("expected a refusal"))
            else resolve(error as CallError)
          })
        })
      )
      expect(trailers(malformed)).toEqual({ code: Code.INVALID_ARGUMENT, sw4rm: "VALIDATION_ERROR", retryable: "false" })
    }))

  it.scoped("any bytes, to any coordination RPC: an answer or a typed status, never INTERNAL, never a crash", () =>
    Effect.gen(function*() {
      const { grpcPort, op } = yield* world
      yield* promise(() => op.register("a"))
      const methods: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
        ["sw4rm.scheduler.SchedulerService", ["SubmitTask", "RequestPreemption", "ShutdownAgent", "PollActivityBuffer", "PurgeActivity"]],
        ["sw4rm.worktree.WorktreeService", ["Bind", "Unbind", "RequestSwitch", "ApproveSwitch", "RejectSwitch", "Status"]],
        ["sw4rm.negotiation_room.NegotiationRoomService", ["SubmitProposal", "SubmitVote", "GetVotes", "GetDecision", "WaitForDecision"]],
        ["sw4rm.hitl.HitlService", ["Decide"]]
      ]
      const paths = methods.flatMap(([service, names]) => names.map((name) => `/${service}/${name}`))
      const raw = new Grpc.Client(`127.0.0.1:${grpcPort}`, Grpc.credentials.createInsecure())
      yield* Effect.addFinalizer(() => Effect.sync(() => raw.close()))
      const metadata = new Grpc.Metadata()
      metadata.set("authorization", `Bearer ${keys.operator}`)
      // What bounded waits (a vote-less room, a question nobody answers) may end with: the call's own deadline.
      const typed = new Set([Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.ALREADY_EXISTS, Code.FAILED_PRECONDITION, Code.PERMISSION_DENIED, Code.DEADLINE_EXCEEDED])
      const send = (path: string, bytes: Uint8Array) =>
        new Promise<number>((resolve) => {
          raw.makeUnaryRequest(path, (value: Buffer) => value, (value: Buffer) => value, Buffer.from(bytes), metadata, { deadline: Date.now() + 250 }, (error) =>
            resolve(error === null ? Code.OK : (error as CallError).code))
        })
      yield* promise(() =>
        fc.assert(
          fc.asyncProperty(fc.constantFrom(...paths), fc.uint8Array({ maxLength: 64 }), async (path, bytes) => {
            const code = await send(path, bytes)
            if (!typed.has(code)) throw new Error(`${path} answered ${Buffer.from(bytes).toString("hex")} with status ${code}`)
          }),
          { numRuns: 240, seed: 15 }
        )
      )
      // And the server still serves.
      expect((yield* promise(() => op.rpc("worktree", "Status", { agent_id: "a" }))).answer).toEqual({ repo_id: "", worktree_id: "", state: "UNBOUND" })
    }))
})
