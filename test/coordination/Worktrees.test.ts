/**
 * Worktree bindings on the pure model (PROTOCOLS.md §1 "Coordination"): the
 * five states and their moves, the TTL, reject and revoke returning home,
 * BIND_FAILED retried at most 3 times then a human asked after 60 s, the
 * gateway's policies as the hook, and envelopes that name another worktree
 * than their recipient's refused with VALIDATION_ERROR; the list of
 * bindings, a page at a time in the order first bound.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { decideCheck } from "../../src/model/Checks.js"
import { decideLoadPolicy } from "../../src/model/Governance.js"
import { decideHitl } from "../../src/model/HitlDecide.js"
import { buildEnvelope } from "../../src/model/Envelopes.js"
import { decideSend } from "../../src/model/Messages.js"
import {
  decideApproveSwitch,
  decideBind,
  decideBindFailure,
  decideRejectSwitch,
  decideRequestSwitch,
  decideRevoke,
  decideUnbind,
  selectBindings,
  worktreeStatus
} from "../../src/model/Worktrees.js"
import { parsePolicy } from "../../src/schema/Policy.js"
import { sameReplay, type World, world } from "../support/coordination.js"

const statusOf = (w: World, agent = "a") => worktreeStatus(w.state, agent)
const bound = (options = {}) => {
  const w = world({ livenessTimeoutMs: undefined, ...options })
  w.register("a")
  w.ok((d) => decideBind(d, { agent_id: "a", repo_id: "r", worktree_id: "main" }))
  return w
}
const expectReplay = (w: World) => {
  const { live, replayed } = sameReplay(w)
  expect(replayed).toEqual(live)
}
const policy = (w: World, yaml: string) => {
  const document = Either.getOrThrow(parsePolicy(yaml))
  w.ok((d) => decideLoadPolicy(d.state, document, yaml, d.now))
}

describe("the five states", () => {
  it("UNBOUND → BOUND_HOME → SWITCH_PENDING → BOUND_NON_HOME → (TTL) BOUND_HOME → UNBOUND", () => {
    const w = bound({ worktreeTtlMs: 5_000 })
    expect(statusOf(w)).toMatchObject({ state: "BOUND_HOME", repo_id: "r", worktree_id: "main", home: { repo_id: "r", worktree_id: "main" } })
    expect(w.run((d) => decideBind(d, { agent_id: "a", repo_id: "r", worktree_id: "other" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "feature" }))
    expect(statusOf(w)).toMatchObject({ state: "SWITCH_PENDING", worktree_id: "main", pending: { repo_id: "r", worktree_id: "feature" } })
    expect(w.run((d) => decideApproveSwitch(d, { agent_id: "a", target_worktree_id: "wrong" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    w.at(1_000)
    w.ok((d) => decideApproveSwitch(d, { agent_id: "a", target_worktree_id: "feature" }))
    expect(statusOf(w)).toMatchObject({ state: "BOUND_NON_HOME", worktree_id: "feature", ttl_deadline: 6_000 })
    // The agent is told where it works now, by WORKTREE_CONTROL envelopes.
    expect(w.inbox("a").map((m) => [m.type, m.payload.type])).toEqual([["WORKTREE_CONTROL", "switched"]])
    w.at(6_000)
    expect(statusOf(w)).toMatchObject({ state: "BOUND_HOME", worktree_id: "main" })
    expect(w.events("WorktreeReturnedHome")).toMatchObject([{ reason: "ttl_expired", at: 6_000 }])
    w.ok((d) => decideUnbind(d, { agent_id: "a" }))
    expect(statusOf(w)).toMatchObject({ state: "UNBOUND", repo_id: "", worktree_id: "" })
    expectReplay(w)
  })

  it("a rejected, revoked or unanswered switch returns the agent home; only a bound agent may switch", () => {
    const w = bound({ hitlTimeoutMs: 2_000 })
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "x" }))
    w.ok((d) => decideRejectSwitch(d, { agent_id: "a", reason: "no" }))
    expect(statusOf(w).state).toBe("BOUND_HOME")
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "x", repo_id: "other-repo" }))
    w.ok((d) => decideApproveSwitch(d, { agent_id: "a", ttl_ms: 0 }))
    expect(statusOf(w)).toMatchObject({ state: "BOUND_NON_HOME", repo_id: "other-repo", ttl_deadline: 3_600_000 })
    w.ok((d) => decideRevoke(d, { agent_id: "a", reason: "done early" }))
    expect(statusOf(w).state).toBe("BOUND_HOME")
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "x" }))
    w.at(2_000)
    expect(statusOf(w).state).toBe("BOUND_HOME")
    expect(w.events("WorktreeReturnedHome").map((e: any) => e.reason)).toEqual(["rejected", "revoked", "switch_timed_out"])
    expect(w.run((d) => decideRevoke(d, { agent_id: "a" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    expect(w.run((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "main" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    w.register("b")
    expect(w.run((d) => decideRequestSwitch(d, { agent_id: "b", target_worktree_id: "x" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    expect(w.run((d) => decideBind(d, { agent_id: "ghost", repo_id: "r", worktree_id: "w" }))).toMatchObject(Either.left({ _tag: "NoRoute" }))
    expectReplay(w)
  })

  it("a switch that requires a human waits for the HITL decision: approve (with a TTL) switches, deny stays home", () => {
    const w = bound()
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "x", requires_hitl: true }))
    const hitl = statusOf(w).pending!.hitl_id!
    expect(w.state.hitl.get(hitl)).toMatchObject({ reason: "WORKTREE_OVERRIDE", subject: { _tag: "WorktreeSwitch", agent_id: "a" } })
    w.ok((d) => decideHitl(d, { id: hitl, action: "modify", rationale: "an hour", args: { ttl_ms: 60_000 } }))
    expect(statusOf(w)).toMatchObject({ state: "BOUND_NON_HOME", ttl_deadline: 60_000 })
    w.ok((d) => decideRevoke(d, { agent_id: "a" }))
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "x", requires_hitl: true }))
    const second = statusOf(w).pending!.hitl_id!
    w.ok((d) => decideHitl(d, { id: second, action: "deny", rationale: "stay" }))
    expect(statusOf(w).state).toBe("BOUND_HOME")
    // Answered through the worktree service instead: the question is withdrawn.
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "x", requires_hitl: true }))
    const third = statusOf(w).pending!.hitl_id!
    w.ok((d) => decideApproveSwitch(d, { agent_id: "a" }))
    expect(w.state.hitl.get(third)!.status).toBe("withdrawn")
    expectReplay(w)
  })
})

describe("BIND_FAILED", () => {
  it("is retried at most 3 times, then a human is asked 60 s later; approve tries again with the count reset", () => {
    const w = bound({ bindRetryDelayMs: 1_000 })
    for (let failure = 1; failure <= 3; failure++) {
      w.ok((d) => decideBindFailure(d, { agent_id: "a", reason: `disk full ${failure}` }))
      expect(statusOf(w)).toMatchObject({ state: "BIND_FAILED", failures: failure, retry_at: w.now() + 1_000, repo_id: "" })
      w.at(w.now() + 1_000)
      expect(statusOf(w).state).toBe("BOUND_HOME")
    }
    expect(w.inbox("a").map((m) => m.payload)).toMatchObject([{ type: "bind", attempt: 2 }, { type: "bind", attempt: 3 }, { type: "bind", attempt: 4 }])
    w.ok((d) => decideBindFailure(d, { agent_id: "a", reason: "still full" }))
    const failedAt = w.now()
    expect(statusOf(w)).toMatchObject({ state: "BIND_FAILED", failures: 4, escalate_at: failedAt + 60_000, retry_at: undefined })
    w.at(failedAt + 59_999)
    expect(w.events("HitlInvoked")).toEqual([])
    w.at(failedAt + 60_000)
    const hitl = statusOf(w).hitl_id!
    expect(w.state.hitl.get(hitl)).toMatchObject({ reason: "WORKTREE_OVERRIDE", subject: { _tag: "WorktreeBindFailed" }, context: { failures: 4, last_error: "still full" } })
    w.ok((d) => decideHitl(d, { id: hitl, action: "approve", rationale: "disk cleaned" }))
    expect(statusOf(w)).toMatchObject({ state: "BOUND_HOME", failures: 0 })
    expectReplay(w)
  })

  it("denied, the agent is unbound; modified, it is bound elsewhere; binding again confirms and clears the count", () => {
    const w = bound({ bindRetryDelayMs: 1, bindEscalateAfterMs: 1 })
    const escalate = () => {
      for (let i = 0; i < 4; i++) {
        w.ok((d) => decideBindFailure(d, { agent_id: "a", reason: "x" }))
        w.at(w.now() + 1)
      }
      return statusOf(w).hitl_id!
    }
    w.ok((d) => decideHitl(d, { id: escalate(), action: "deny", rationale: "give up" }))
    expect(statusOf(w).state).toBe("UNBOUND")
    w.ok((d) => decideBind(d, { agent_id: "a", repo_id: "r", worktree_id: "main" }))
    w.ok((d) => decideHitl(d, { id: escalate(), action: "modify", rationale: "use the spare", args: { repo_id: "r", worktree_id: "spare" } }))
    expect(statusOf(w)).toMatchObject({ state: "BOUND_HOME", worktree_id: "spare", failures: 0 })
    w.ok((d) => decideBindFailure(d, { agent_id: "a", reason: "x" }))
    w.at(w.now() + 1)
    expect(statusOf(w)).toMatchObject({ state: "BOUND_HOME", failures: 1 })
    w.ok((d) => decideBind(d, { agent_id: "a", repo_id: "r", worktree_id: "spare" }))
    expect(statusOf(w).failures).toBe(0)
    // Away from home, a failure sends it home; unbound, there is nothing to fail.
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "x" }))
    expect(w.run((d) => decideBindFailure(d, { agent_id: "a", reason: "x" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    w.ok((d) => decideApproveSwitch(d, { agent_id: "a" }))
    w.ok((d) => decideBindFailure(d, { agent_id: "a", reason: "x" }))
    expect(statusOf(w).state).toBe("BOUND_HOME")
    w.register("b")
    expect(w.run((d) => decideBindFailure(d, { agent_id: "b", reason: "x" }))).toMatchObject(Either.left({ _tag: "NotFound" }))
    expectReplay(w)
  })
})

describe("the gateway decides which repositories an agent may bind", () => {
  it("deny refuses (audited), pending asks a human, allow binds", () => {
    const w = world({ livenessTimeoutMs: undefined })
    w.register("a")
    policy(w, `
id: repos
scope: { kind: global }
tools:
  "*": { allow: false }
  worktree.bind: { allow: true, requires_approval_if: "args.repo_id != 'sandbox'" }
`)
    expect(w.ok((d) => decideBind(d, { agent_id: "a", repo_id: "sandbox", worktree_id: "w" }))).toEqual({ hitl_id: undefined })
    expect(statusOf(w).state).toBe("BOUND_HOME")
    w.ok((d) => decideUnbind(d, { agent_id: "a" }))
    const pending = w.ok((d) => decideBind(d, { agent_id: "a", repo_id: "prod", worktree_id: "w" }))
    expect(pending.hitl_id).toBeDefined()
    expect(statusOf(w)).toMatchObject({ state: "UNBOUND", hitl_id: pending.hitl_id })
    expect(w.run((d) => decideBind(d, { agent_id: "a", repo_id: "prod", worktree_id: "w" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    w.ok((d) => decideHitl(d, { id: pending.hitl_id!, action: "approve", rationale: "ok for today" }))
    expect(statusOf(w)).toMatchObject({ state: "BOUND_HOME", repo_id: "prod" })
    policy(w, `
id: repos
scope: { kind: global }
tools:
  worktree.bind: { allow: false }
`)
    w.ok((d) => decideUnbind(d, { agent_id: "a" }))
    const audits = w.events("AuditRecorded").length
    expect(w.run((d) => decideBind(d, { agent_id: "a", repo_id: "sandbox", worktree_id: "w" }))).toMatchObject(Either.left({ _tag: "PermissionDenied" }))
    const denial = w.events("AuditRecorded").slice(audits) as Array<any>
    expect(denial).toMatchObject([{ record: { agent_id: "a", action: "worktree.bind:sandbox/w", decision: "deny" } }])
    expectReplay(w)
  })
})

describe("a tool that works in a worktree", () => {
  it("is denied with worktree_not_bound while its agent is unbound or its binding failed, and allowed once bound", () => {
    const w = world({ livenessTimeoutMs: undefined })
    w.register("a")
    // Even under a `*` that needs a worktree, binding one stays possible.
    policy(w, `
id: git
scope: { kind: global }
tools:
  "*": { allow: true, requires_worktree: true }
  web.search: { allow: true }
`)
    const call = (tool: string) => decideCheck(w.state, { kind: "tool_call", agent_id: "a", tool, args: {} }, 0).decision
    expect(call("git.commit")).toMatchObject({ decision: "deny", rule: "policy git: tools.*.requires_worktree" })
    expect(call("git.commit").reason).toMatch(/^worktree_not_bound: tool git\.commit works in a worktree, and agent a is bound to none/)
    expect(call("web.search").decision).toBe("allow")
    w.ok((d) => decideBind(d, { agent_id: "a", repo_id: "r", worktree_id: "main" }))
    expect(call("git.commit").decision).toBe("allow")
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "feature" }))
    expect(call("git.commit").decision).toBe("allow")
    w.ok((d) => decideRejectSwitch(d, { agent_id: "a" }))
    w.ok((d) => decideBindFailure(d, { agent_id: "a", reason: "disk full" }))
    expect(call("git.commit").decision).toBe("deny")
  })
})

describe("envelopes that name a worktree", () => {
  const send = (w: World, to: string, fields: { readonly repo_id?: string; readonly worktree_id?: string }) =>
    w.run((d) => decideSend(d.state, d.config, { route: { _tag: "Agent", agent_id: to }, envelope: buildEnvelope({ producer_id: "p", payload: 1, ...fields }, `m-${w.log.length}`, d.now) }, d.now))

  it("are refused with VALIDATION_ERROR when they name another worktree than the recipient's binding, saying which", () => {
    const w = bound()
    w.register("p")
    w.register("never-bound")
    expect(send(w, "a", { repo_id: "r", worktree_id: "main" })._tag).toBe("Right")
    expect(send(w, "a", { worktree_id: "main" })._tag).toBe("Right")
    expect(send(w, "a", { repo_id: "", worktree_id: "" })._tag).toBe("Right")
    const refused = send(w, "a", { repo_id: "r", worktree_id: "feature" })
    expect(refused).toMatchObject(Either.left({ _tag: "ValidationError", code: "VALIDATION_ERROR", issues: [{ path: "worktree_id" }] }))
    expect(Either.isLeft(refused) && refused.left.message).toContain("a is BOUND_HOME at r/main")
    expect(send(w, "a", { repo_id: "other" })).toMatchObject(Either.left({ issues: [{ path: "repo_id" }] }))
    // An agent never bound takes any.
    expect(send(w, "never-bound", { repo_id: "x", worktree_id: "y" })._tag).toBe("Right")
    // Away from home, its current worktree is the target.
    w.ok((d) => decideRequestSwitch(d, { agent_id: "a", target_worktree_id: "feature" }))
    expect(send(w, "a", { worktree_id: "feature" })._tag).toBe("Left")
    w.ok((d) => decideApproveSwitch(d, { agent_id: "a" }))
    expect(send(w, "a", { worktree_id: "feature" })._tag).toBe("Right")
    expect(send(w, "a", { worktree_id: "main" })._tag).toBe("Left")
    // A failed binding takes none that names a worktree.
    w.ok((d) => decideRevoke(d, { agent_id: "a" }))
    w.ok((d) => decideBindFailure(d, { agent_id: "a", reason: "x" }))
    expect(send(w, "a", { repo_id: "r", worktree_id: "main" })._tag).toBe("Left")
    expect(send(w, "a", {})._tag).toBe("Right")
  })
})

describe("the list of bindings", () => {
  it("pages the agents ever bound, in the order first bound, by state or agent; one never bound has none", () => {
    const w = bound()
    for (const id of ["c", "b", "never"]) w.register(id)
    w.ok((d) => decideBind(d, { agent_id: "c", repo_id: "r", worktree_id: "c" }))
    w.ok((d) => decideBind(d, { agent_id: "b", repo_id: "r", worktree_id: "b" }))
    w.ok((d) => decideUnbind(d, { agent_id: "c" }))
    const rows = (page: ReturnType<typeof selectBindings>) => [page.bindings.map((row) => `${row.agent_id} ${row.state}`), page.next]
    expect(rows(selectBindings(w.state, {}))).toEqual([["a BOUND_HOME", "c UNBOUND", "b BOUND_HOME"], undefined])
    expect(rows(selectBindings(w.state, { limit: 1 }))).toEqual([["a BOUND_HOME"], "a"])
    expect(rows(selectBindings(w.state, { limit: 1, after: "a" }))).toEqual([["c UNBOUND"], "c"])
    expect(rows(selectBindings(w.state, { state: "BOUND_HOME", after: "a" }))).toEqual([["b BOUND_HOME"], undefined])
    expect(rows(selectBindings(w.state, { agent_id: "c" }))).toEqual([["c UNBOUND"], undefined])
    expect(rows(selectBindings(w.state, { agent_id: "never" }))).toEqual([[], undefined])
    expect(rows(selectBindings(w.replayed(), {}))).toEqual(rows(selectBindings(w.state, {})))
  })
})
