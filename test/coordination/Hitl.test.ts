/**
 * Human in the loop on the pure model (PROTOCOLS.md §1 "Coordination"):
 * invocations with a deadline and a fallback, answered approve, deny,
 * modify or defer with a rationale; one queue with the gateway's approvals;
 * every step audited; nothing waits forever.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { verifyChain } from "../../src/model/Audit.js"
import { decideCheck } from "../../src/model/Checks.js"
import { decideLoadPolicy } from "../../src/model/Governance.js"
import { hitlQueue } from "../../src/model/Hitl.js"
import { decideHitl, decideInvoke } from "../../src/model/HitlDecide.js"
import { accept } from "../../src/model/State.js"
import type { AuditRecorded } from "../../src/schema/GatewayEvents.js"
import { parsePolicy } from "../../src/schema/Policy.js"
import { sameReplay, type World, world } from "../support/coordination.js"

const invoke = (w: World, fields = {}) =>
  w.ok((d) => decideInvoke(d, { reason: "MANUAL_OVERRIDE", context: { what: "deploy" }, invoked_by: "agent", ...fields }))
const audits = (w: World) => (w.events("AuditRecorded") as Array<AuditRecorded>).map((event) => event.record)
const expectReplay = (w: World) => {
  const { live, replayed } = sameReplay(w)
  expect(replayed).toEqual(live)
}

describe("an invocation", () => {
  it("is answered approve, deny or modify with a rationale, once; each step is audited in the chain", () => {
    const w = world({ hitlTimeoutMs: 10_000 })
    const asked = invoke(w, { proposed_actions: ["ship", "wait"], priority: 3 })
    expect(asked).toMatchObject({ hitl_id: "hitl-1", status: "open", deadline: 10_000, fallback: "DENY_BY_DEFAULT", priority: 3 })
    const decided = w.ok((d) => decideHitl(d, { id: "hitl-1", action: "approve", rationale: "looks right", by: "alice" }))
    expect(decided).toMatchObject({ status: "decided", decision: { action: "approve", rationale: "looks right", by: "alice", automatic: false } })
    expect(w.run((d) => decideHitl(d, { id: "hitl-1", action: "deny", rationale: "changed my mind" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    invoke(w)
    expect(w.run((d) => decideHitl(d, { id: "hitl-2", action: "modify", rationale: "smaller" }))).toMatchObject(Either.left({ _tag: "ValidationError" }))
    w.ok((d) => decideHitl(d, { id: "hitl-2", action: "modify", rationale: "smaller", args: { replicas: 1 } }))
    expect(w.state.hitl.get("hitl-2")!.decision).toMatchObject({ action: "modify", args: { replicas: 1 } })
    expect(w.run((d) => decideHitl(d, { id: "nope", action: "approve", rationale: "x" }))).toMatchObject(Either.left({ _tag: "NotFound" }))
    expect(audits(w).map((record) => [record.action, record.decision])).toEqual([
      ["hitl:MANUAL_OVERRIDE", "pending"],
      ["hitl:MANUAL_OVERRIDE", "approved"],
      ["hitl:MANUAL_OVERRIDE", "pending"],
      ["hitl:MANUAL_OVERRIDE", "modified"]
    ])
    expect(verifyChain(audits(w).map((record, i) => ({ offset: i + 1, record }))).ok).toBe(true)
    expectReplay(w)
  })

  it("defer extends it by its window, at most 3 times; then it must be decided", () => {
    const w = world({ hitlTimeoutMs: 1_000 })
    invoke(w)
    for (let i = 1; i <= 3; i++) {
      expect(w.ok((d) => decideHitl(d, { id: "hitl-1", action: "defer", rationale: `later ${i}` }))).toMatchObject({ deadline: 1_000 * (i + 1), extensions: i })
    }
    expect(w.run((d) => decideHitl(d, { id: "hitl-1", action: "defer", rationale: "later" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    w.at(3_999)
    expect(w.state.hitl.get("hitl-1")!.status).toBe("open")
    w.at(4_000)
    expect(w.state.hitl.get("hitl-1")!.decision).toMatchObject({ action: "deny", by: "fallback", automatic: true })
    expect(w.run((d) => decideHitl(d, { id: "hitl-1", action: "approve", rationale: "too late" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
  })

  it("with no answer by its deadline: denied by default; EXTEND_TIMEOUT waits at most 3 more windows, then denies", () => {
    const w = world({ hitlTimeoutMs: 1_000 })
    invoke(w)
    invoke(w, { fallback: "EXTEND_TIMEOUT", timeout_ms: 500 })
    w.at(999)
    // At its deadline, a human's answer comes too late even before the tick records it.
    expect(w.run((d) => ({ ...decideHitl({ ...d, now: 1_000 }, { id: "hitl-1", action: "approve", rationale: "x" }) }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    w.at(1_000)
    expect(w.state.hitl.get("hitl-1")!.decision).toMatchObject({ action: "deny", automatic: true })
    expect(w.state.hitl.get("hitl-2")).toMatchObject({ status: "open", extensions: 2, deadline: 1_500 })
    w.at(2_000)
    expect(w.state.hitl.get("hitl-2")).toMatchObject({ status: "decided", extensions: 3, decision: { action: "deny", by: "fallback" } })
    expect(w.events("HitlExtended").map((e: any) => [e.cause, e.deadline])).toEqual([["extend_timeout", 1_000], ["extend_timeout", 1_500], ["extend_timeout", 2_000]])
    expect(audits(w).map((record) => record.decision)).toEqual(["pending", "pending", "extended", "timed_out", "extended", "extended", "timed_out"])
    // AUTO_DECIDE_THRESHOLD with no rule of its subject's: denied.
    invoke(w, { fallback: "AUTO_DECIDE_THRESHOLD", timeout_ms: 1 })
    w.at(2_001)
    expect(w.state.hitl.get("hitl-3")!.decision).toMatchObject({ action: "deny" })
    expectReplay(w)
  })
})

describe("one queue", () => {
  const policy = `
id: tools
scope: { kind: global }
tools:
  deploy: { allow: true, requires_approval_if: "args.env == 'prod'" }
approval_timeout_s: 60
`

  it("holds invocations and the gateway's approvals, oldest first; both are answered through Decide", () => {
    const w = world({ livenessTimeoutMs: undefined })
    w.register("agent")
    w.ok((d) => decideLoadPolicy(d.state, Either.getOrThrow(parsePolicy(policy)), policy, d.now))
    w.at(10)
    invoke(w, { reason: "SECURITY_APPROVAL" })
    w.at(20)
    w.ok((d) => {
      const checked = decideCheck(d.state, { kind: "tool_call", agent_id: "agent", tool: "deploy", args: { env: "prod" } }, d.now)
      return accept(checked.events, checked.decision)
    })
    const queue = hitlQueue(w.state)
    expect(queue.map((item) => [item.id, item.source, item.reason, item.status])).toEqual([
      ["hitl-1", "hitl", "SECURITY_APPROVAL", "open"],
      ["approval-1", "gateway", "TOOL_PRIVILEGE_ESCALATION", "open"]
    ])
    expect(queue[1]).toMatchObject({ agent_id: "agent", deadline: 60_020, summary: expect.stringContaining("tool deploy") })
    // A gateway approval is approved or denied, nothing else.
    expect(w.run((d) => decideHitl(d, { id: "approval-1", action: "defer", rationale: "x" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    expect(w.ok((d) => decideHitl(d, { id: "approval-1", action: "approve", rationale: "release day", by: "bob" }))).toMatchObject({ id: "approval-1", status: "approved" })
    expect(w.state.approvals.get("approval-1")).toMatchObject({ status: "approved", by: "bob", note: "release day" })
    expect(w.run((d) => decideHitl(d, { id: "approval-1", action: "deny", rationale: "x" }))).toMatchObject(Either.left({ _tag: "FailedPrecondition" }))
    expect(hitlQueue(w.state).map((item) => item.id)).toEqual(["hitl-1"])
    expect(hitlQueue(w.state, { status: "closed" }).map((item) => item.id)).toEqual(["approval-1"])
    expect(hitlQueue(w.state, { status: "all" }).map((item) => item.id)).toEqual(["hitl-1", "approval-1"])
    expectReplay(w)
  })
})
