/**
 * Governance, the audit, the state and health over HTTP, and the four routes
 * of Agent Assembly's client. As in `HandlersRouter.ts`, a handler checks who
 * calls, calls the service, and hands back its answer.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { sha256 } from "@noble/hashes/sha2"
import { bytesToHex } from "@noble/hashes/utils"
import { Effect, Option, Stream } from "effect"
import * as Replay from "../layers/Replay.js"
import type { Action } from "../model/Policy.js"
import { NoRoute, PermissionDenied, ValidationError } from "../schema/Errors.js"
import type { Json } from "../schema/Json.js"
import { EventLog } from "../services/EventLog.js"
import { Gateway } from "../services/Gateway.js"
import { Registry } from "../services/Registry.js"
import { Router } from "../services/Router.js"
import { Runtime } from "../services/Runtime.js"
import { actAs, actingAgent, auditRefusal, mayActAs, operatorOnly } from "./Access.js"
import { Caller, SwitchboardApi } from "./Api.js"

export const gateway = HttpApiBuilder.group(SwitchboardApi, "gateway", (handlers) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const runtime = yield* Runtime
    const operator = <A, E, R>(action: string, effect: Effect.Effect<A, E, R>) =>
      Effect.zipRight(operatorOnly(action), effect)
    return handlers
      .handle("loadPolicy", ({ payload }) => operator("policies.load", gateway.loadPolicy(payload.yaml)))
      .handle("policies", () => operator("policies.list", gateway.policies))
      .handle("removePolicy", ({ path }) => operator("policies.remove", gateway.removePolicy(path.policy_id)))
      .handle("check", ({ payload }) => Effect.zipRight(actAs(payload.agent_id, "gateway.check"), gateway.check(payload)))
      .handle("dispatchTool", ({ payload }) =>
        Effect.zipRight(
          actAs(payload.agent_id, "gateway.dispatch_tool"),
          // The args came in as JSON, and the resolved ones are that JSON with strings put in.
          Effect.map(gateway.dispatchTool(payload), (dispatch) =>
            dispatch._tag === "Dispatched" ? { ...dispatch, args: dispatch.args as Json } : dispatch)
        ))
      .handle("approvals", ({ urlParams }) => operator("approvals.list", gateway.approvals(urlParams)))
      .handle("approve", ({ path, payload }) =>
        operator("approvals.approve", gateway.approve({ approval_id: path.approval_id, by: payload.by ?? "operator", note: payload.note })))
      .handle("reject", ({ path, payload }) =>
        operator("approvals.reject", gateway.reject({ approval_id: path.approval_id, by: payload.by ?? "operator", note: payload.note })))
      .handle("suspend", ({ path, payload }) => operator("agents.suspend", gateway.suspend({ agent_id: path.agent_id, ...payload })))
      .handle("resume", ({ path, payload }) => operator("agents.resume", gateway.resume({ agent_id: path.agent_id, ...payload })))
      .handle("kill", ({ path, payload }) => operator("agents.kill", gateway.kill({ agent_id: path.agent_id, ...payload })))
      .handle("halt", ({ payload }) => operator("halt", gateway.halt(payload)))
      .handle("unhalt", ({ payload }) => operator("unhalt", gateway.unhalt(payload)))
      .handle("charge", ({ path, payload }) =>
        Effect.zipRight(actAs(path.agent_id, "budgets.charge"), gateway.charge({ agent_id: path.agent_id, ...payload })))
      .handle("budgets", ({ path }) => Effect.zipRight(actAs(path.agent_id, "budgets.status"), gateway.budgets(path.agent_id)))
      .handle("grantLease", ({ payload }) => operator("leases.grant", gateway.grantLease(payload)))
      .handle("checkLease", ({ payload }) =>
        Effect.gen(function*() {
          // A lease is its holder's: another agent's key learns nothing of it, not
          // even that it exists (the refusal reads as for no lease at all), and is audited.
          const holder = yield* runtime.query((state) => state.leases.get(payload.lease_id)?.agent_id)
          const caller = yield* Caller
          if (holder !== undefined && !mayActAs(caller, holder)) {
            const denied = new PermissionDenied({ reason: `no lease ${payload.lease_id}` })
            yield* auditRefusal("leases.check", denied)
            return yield* denied
          }
          return yield* gateway.checkLease(payload)
        }))
      .handle("delegateLease", ({ path, payload }) =>
        Effect.zipRight(
          actAs(payload.agent_id, "leases.delegate"),
          gateway.delegateLease({ parent_lease_id: path.lease_id, lease: payload })
        ))
  }))

/** Audit pages are bounded: a page never holds more than this many entries. */
const defaultPage = 100

export const audit = HttpApiBuilder.group(SwitchboardApi, "audit", (handlers) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const router = yield* Router
    const runtime = yield* Runtime
    const log = yield* EventLog
    return handlers
      .handle("entries", ({ urlParams }) =>
        Effect.gen(function*() {
          yield* operatorOnly("audit.read")
          const limit = urlParams.limit ?? defaultPage
          const from = urlParams.from ?? 1
          const page = yield* gateway.audit.pipe(
            Stream.filter((entry) =>
              entry.offset >= from &&
              (urlParams.agent_id === undefined || entry.record.agent_id === urlParams.agent_id) &&
              (urlParams.decision === undefined || entry.record.decision === urlParams.decision)
            ),
            Stream.take(limit + 1),
            Stream.runCollect
          )
          const entries = [...page]
          return entries.length > limit
            ? { entries: entries.slice(0, limit), next: entries[limit].offset }
            : { entries }
        }))
      .handle("verify", () => Effect.zipRight(operatorOnly("audit.verify"), gateway.verifyAudit))
      .handle("verifyAgainst", ({ payload }) => Effect.zipRight(operatorOnly("audit.verify"), gateway.verifyAuditAgainst(payload)))
      .handle("checkpoint", () => Effect.zipRight(operatorOnly("audit.checkpoint"), gateway.auditCheckpoint))
      .handle("state", ({ urlParams }) =>
        Effect.gen(function*() {
          yield* operatorOnly("state.read")
          if (urlParams.at === undefined) return yield* router.snapshot
          const reached = yield* Replay.stateAt(urlParams.at, runtime.config).pipe(Effect.provideService(EventLog, log))
          return { offset: reached.offset, state: Replay.snapshot(reached.state) }
        }))
      .handle("head", () => Effect.zipRight(operatorOnly("log.head"), Effect.map(log.head, (offset) => ({ offset }))))
  }))

/** `kind:target` as Agent Assembly's client names an action; a bare name is a tool. */
const assemblyAction = (agent_id: string, action: string): Action => {
  const colon = action.indexOf(":")
  const kind = colon < 0 ? "tool" : action.slice(0, colon)
  const target = colon < 0 ? action : action.slice(colon + 1)
  switch (kind) {
    case "network":
      return { kind: "network", agent_id, host: target }
    case "llm":
      return { kind: "llm_call", agent_id, model: target }
    case "tool":
      return { kind: "tool_call", agent_id, tool: target, args: {} }
    default:
      // An unknown kind is checked as a tool call named as given: the tool
      // rules (with their `*` fallback) decide, failing closed.
      return { kind: "tool_call", agent_id, tool: action, args: {} }
  }
}

/** A stable id per edge: the same edge recorded twice is one edge. */
const edgeId = (from: string, to: string, type: string) =>
  bytesToHex(sha256(new TextEncoder().encode(`${from}\u0000${to}\u0000${type}`))).slice(0, 32)

export const assembly = HttpApiBuilder.group(SwitchboardApi, "assembly", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const gateway = yield* Gateway
    return handlers
      .handle("register", ({ path, payload }) =>
        Effect.gen(function*() {
          yield* actAs(path.agent_id, "assembly.register")
          // A registration keeps what the agent registered before (its name,
          // capabilities): Agent Assembly only adds lineage and a mode.
          const before = Option.map(yield* registry.get(path.agent_id), (agent) => agent.descriptor)
          const fields = payload ?? {}
          const defined = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null && value !== undefined))
          const agent = yield* registry.register({
            ...Option.getOrElse(before, () => ({ agent_id: path.agent_id, name: path.agent_id })),
            ...defined,
            agent_id: path.agent_id
          })
          const descriptor = agent.descriptor
          return {
            agent_id: descriptor.agent_id,
            depth: descriptor.depth ?? 0,
            enforcement_mode: descriptor.enforcement_mode,
            parent_agent_id: descriptor.parent_agent_id,
            team_id: descriptor.team_id,
            delegation_reason: descriptor.delegation_reason,
            spawned_by_tool: descriptor.spawned_by_tool,
            available: agent.available,
            registered_at: agent.registered_at
          }
        }))
      .handle("check", ({ path, payload }) =>
        Effect.gen(function*() {
          yield* actAs(path.agent_id, "assembly.policy_check")
          if (Option.isNone(yield* registry.get(path.agent_id))) return yield* new NoRoute({ to: path.agent_id })
          const decision = yield* gateway.check(assemblyAction(path.agent_id, payload.action))
          return { decision: decision.decision, reason: decision.reason, rule: decision.rule, approval_id: decision.approval_id }
        }))
      .handle("edge", ({ payload }) =>
        Effect.gen(function*() {
          yield* actAs(payload.source_agent_id, "assembly.edge")
          if (payload.metadata_json !== undefined && payload.metadata_json !== null) {
            yield* Effect.try({
              try: () => JSON.parse(payload.metadata_json!) as unknown,
              catch: () => ValidationError.single("edge", "metadata_json", "must be a JSON document (as a string)")
            })
          }
          yield* registry.addEdge({ from: payload.source_agent_id, to: payload.target_agent_id, edge_type: payload.edge_type })
          return { id: edgeId(payload.source_agent_id, payload.target_agent_id, payload.edge_type) }
        }))
      .handle("dispatch", ({ payload }) =>
        Effect.gen(function*() {
          const agent_id = yield* actingAgent(payload.agent_id, "assembly.dispatch_tool")
          const dispatch = yield* gateway.dispatchTool({ ...payload, agent_id })
          return dispatch._tag === "Dispatched"
            ? { resolved_args: dispatch.args as Json, names_substituted: dispatch.substituted }
            // Answered 202: a human must approve first, then the call is dispatched again with the approval's id.
            : { decision: "pending" as const, approval_id: dispatch.approval_id, reason: dispatch.decision.reason }
        }))
  }))

export const health = HttpApiBuilder.group(SwitchboardApi, "health", (handlers) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () =>
        // A stopped loop fails the query: 503, not ready.
        runtime.query((_, offset) => ({ ready: true, offset })))
  }))
