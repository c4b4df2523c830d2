/**
 * Switchboard's HTTP API, defined once: the server implements it
 * (`server/Handlers*.ts`), the OpenAPI document is derived from it, and the
 * typed client (`client/SwitchboardClient.ts`) is made from it. Bodies are the
 * runtime's own Schemas; errors are problem+json (`Problem.ts`).
 *
 * Beside its own routes it serves the four that Agent Assembly's Python
 * client calls (PROTOCOLS.md §2), with their exact bodies and statuses.
 * The live streams (WebSocket, Server-Sent Events) are not request/response
 * and live in `Streams.ts`.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Context, Schema } from "effect"
import { AgentDescriptor, AgentHealth, EdgeType, EnforcementMode } from "../schema/Agent.js"
import { AuditCheckpoint, AuditContext } from "../schema/Audit.js"
import { AckRequest, AgentState, Envelope, EnvelopeState, Id, Note } from "../schema/Envelope.js"
import { GatedAction } from "../schema/GatewayEvents.js"
import { Json } from "../schema/Json.js"
import { ErrorCode as ArcpErrorCode } from "../schema/Arcp.js"
import type { Principal } from "../schema/Keys.js"
import { Lease, LeaseCheck } from "../schema/Lease.js"
import { ApprovalStatus } from "../schema/Requests.js"
import {
  AckReceiptView,
  AgentView,
  ApprovalView,
  AuditEntryView,
  BudgetStatusView,
  ChainVerificationView,
  DecisionView,
  DispatchView,
  EdgeView,
  MessageStatusView,
  PolicyInfoView,
  SendReceiptView,
  StateView,
  Verdict
} from "../schema/Views.js"
import * as Coordination from "./ApiCoordination.js"
import { inspect } from "./ApiInspect.js"
import * as P from "./Problem.js"

// ---------------------------------------------------------------------------
// Who calls

/** Who a request acts as: the agent its key is bound to, or the operator. */
export class Caller extends Context.Tag("switchboard/server/Caller")<Caller, Principal>() {}

/** `Authorization: Bearer <key>`; on a server run open, a request without one acts as the operator. */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("switchboard/server/Authorization", {
  provides: Caller,
  failure: Schema.Union(P.Unauthenticated, P.Limited),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

// ---------------------------------------------------------------------------
// Shared pieces

const AgentPath = Schema.Struct({ agent_id: Id })
const MessagePath = Schema.Struct({ message_id: Id })
/** A bound on a long poll, in milliseconds: at most a minute, 30 s when absent. */
const WaitMs = Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 60_000))
const Reason = Schema.Struct({ reason: Note, by: Schema.optional(Schema.String.pipe(Schema.maxLength(256))) })
const By = Schema.Struct({ by: Schema.optional(Schema.String.pipe(Schema.maxLength(256))) })
const NoContent = HttpApiSchema.NoContent

// ---------------------------------------------------------------------------
// Agents and topology

export const Heartbeat = Schema.Struct({ state: Schema.optional(AgentState), health: Schema.optional(AgentHealth) })
export const Deregister = Schema.Struct({ reason: Note })

const agents = HttpApiGroup.make("agents")
  .add(
    HttpApiEndpoint.post("register", "/agents").setPayload(AgentDescriptor).addSuccess(AgentView)
      .addError(P.Denied).addError(P.Killed)
  )
  .add(
    HttpApiEndpoint.get("list", "/agents")
      .setUrlParams(Schema.Struct({ capability: Schema.optional(Id), team_id: Schema.optional(Id) }))
      .addSuccess(Schema.Array(AgentView))
  )
  .add(HttpApiEndpoint.get("get", "/agents/:agent_id").setPath(AgentPath).addSuccess(AgentView).addError(P.NoAgent))
  .add(
    HttpApiEndpoint.post("heartbeat", "/agents/:agent_id/heartbeat").setPath(AgentPath).setPayload(Heartbeat)
      .addSuccess(AgentView).addError(P.NoAgent)
  )
  .add(
    HttpApiEndpoint.post("keepAlive", "/agents/:agent_id/keepalive").setPath(AgentPath)
      .addSuccess(AgentView).addError(P.NoAgent)
  )
  .add(
    HttpApiEndpoint.post("deregister", "/agents/:agent_id/deregister").setPath(AgentPath).setPayload(Deregister)
      .addSuccess(NoContent).addError(P.NoAgent)
  )
  .add(HttpApiEndpoint.get("lineage", "/agents/:agent_id/lineage").setPath(AgentPath).addSuccess(Schema.Array(AgentView)))
  .add(HttpApiEndpoint.get("subtree", "/agents/:agent_id/subtree").setPath(AgentPath).addSuccess(Schema.Array(AgentView)))
  .add(
    HttpApiEndpoint.get("team", "/teams/:team_id/agents").setPath(Schema.Struct({ team_id: Id }))
      .addSuccess(Schema.Array(AgentView))
  )
  .add(HttpApiEndpoint.get("edges", "/agents/:agent_id/edges").setPath(AgentPath).addSuccess(Schema.Array(EdgeView)))
  .annotate(OpenApi.Description, "Registry: who exists, what they can do, who spawned whom")
  .middleware(Authorization)

// ---------------------------------------------------------------------------
// Messages and deliveries

/** An agent id, or any live agent advertising a capability. */
export const Recipient = Schema.Union(Id, Schema.Struct({ capability: Id }))
export const SendRequest = Schema.Struct({ to: Recipient, envelope: Envelope })

export const AckBatch = Schema.Struct({ acks: Schema.Array(AckRequest).pipe(Schema.maxItems(1024)) })
/** Per ACK of a batch, in order: its receipt, or the problem it was refused with. */
export const AckResult = Schema.Union(
  Schema.Struct({ ok: Schema.Literal(true), receipt: AckReceiptView }),
  Schema.Struct({ ok: Schema.Literal(false), error: Schema.Union(P.Invalid, P.NoMessage, P.Denied) })
)


export const SendBatch = Schema.Struct({ sends: Schema.Array(SendRequest).pipe(Schema.maxItems(1024)) })
/** Per send of a batch, in order: its receipt, or the problem it was refused with. */
export const SendResult = Schema.Union(
  Schema.Struct({ ok: Schema.Literal(true), receipt: SendReceiptView }),
  Schema.Struct({
    ok: Schema.Literal(false),
    error: Schema.Union(
      P.Invalid, P.NoAgent, P.Unavailable, P.Shutdown, P.Full, P.Duplicate, P.Gone, P.Oversize, P.Unsupported, P.Denied, P.NoMessage
    )
  })
)

const messages = HttpApiGroup.make("messages")
  .add(
    HttpApiEndpoint.post("send", "/messages").setPayload(SendRequest).addSuccess(SendReceiptView)
      .addError(P.NoAgent).addError(P.Unavailable).addError(P.Shutdown).addError(P.Full).addError(P.Duplicate)
      .addError(P.Gone).addError(P.Oversize).addError(P.Unsupported).addError(P.Denied).addError(P.NoMessage)
  )
  .add(
    HttpApiEndpoint.post("sendMany", "/messages/batch").setPayload(SendBatch).addSuccess(Schema.Array(SendResult))
      .annotate(
        OpenApi.Description,
        "Up to 1,024 sends in one request and one durable append; each is checked and decided on its own, as POST /messages would"
      )
  )
  .add(
    HttpApiEndpoint.get("status", "/messages/:message_id").setPath(MessagePath).addSuccess(MessageStatusView)
      .addError(P.NoMessage)
  )
  .add(
    HttpApiEndpoint.get("awaitStage", "/messages/:message_id/await").setPath(MessagePath)
      .setUrlParams(Schema.Struct({ stage: EnvelopeState, wait_ms: Schema.optional(WaitMs) }))
      .addSuccess(MessageStatusView).addError(P.NoMessage)
      .annotate(
        OpenApi.Description,
        "Waits until the message reaches the stage (or a terminal one), at most wait_ms; answers its status then, reached or not"
      )
  )
  .add(
    HttpApiEndpoint.post("redrive", "/messages/:message_id/redrive").setPath(MessagePath).addSuccess(SendReceiptView)
      .addError(P.NoMessage).addError(P.NoAgent)
  )
  .add(
    HttpApiEndpoint.get("deadLetters", "/agents/:agent_id/dead-letters").setPath(AgentPath)
      .addSuccess(Schema.Array(MessageStatusView))
  )
  .add(HttpApiEndpoint.post("ack", "/acks").setPayload(AckRequest).addSuccess(AckReceiptView).addError(P.NoMessage))
  .add(HttpApiEndpoint.post("ackMany", "/acks/batch").setPayload(AckBatch).addSuccess(Schema.Array(AckResult)))
  .annotate(OpenApi.Description, "Guaranteed delivery: send, status, ACKs, dead letters")
  .middleware(Authorization)

// ---------------------------------------------------------------------------
// Governance

export const PolicyUpload = Schema.Struct({ yaml: Schema.String.pipe(Schema.maxLength(1_000_000)) })
export const CheckRequest = Schema.extend(GatedAction, Schema.Struct({ context: Schema.optional(AuditContext) }))
export const DispatchRequest = Schema.Struct({
  agent_id: Id,
  tool: Id,
  args: Json,
  approval_id: Schema.optional(Id),
  context: Schema.optional(AuditContext)
})
export const ApprovalReply = Schema.Struct({
  by: Schema.optional(Schema.String.pipe(Schema.maxLength(256))),
  note: Schema.optional(Note)
})
export const Charge = Schema.Struct({ currency: Id, amount: Schema.Finite })

const gateway = HttpApiGroup.make("gateway")
  .add(HttpApiEndpoint.post("loadPolicy", "/policies").setPayload(PolicyUpload).addSuccess(PolicyInfoView).addError(P.PolicyInvalid))
  .add(HttpApiEndpoint.get("policies", "/policies").addSuccess(Schema.Array(PolicyInfoView)))
  .add(
    HttpApiEndpoint.del("removePolicy", "/policies/:policy_id").setPath(Schema.Struct({ policy_id: Id }))
      .addSuccess(NoContent)
  )
  .add(HttpApiEndpoint.post("check", "/check").setPayload(CheckRequest).addSuccess(DecisionView))
  .add(
    HttpApiEndpoint.post("dispatchTool", "/tools/dispatch").setPayload(DispatchRequest).addSuccess(DispatchView)
      .addError(P.Denied).addError(P.Placeholder)
  )
  .add(
    HttpApiEndpoint.get("approvals", "/approvals").setUrlParams(Schema.Struct({ status: Schema.optional(ApprovalStatus) }))
      .addSuccess(Schema.Array(ApprovalView))
  )
  .add(
    HttpApiEndpoint.post("approve", "/approvals/:approval_id/approve").setPath(Schema.Struct({ approval_id: Id }))
      .setPayload(ApprovalReply).addSuccess(ApprovalView).addError(P.Denied)
  )
  .add(
    HttpApiEndpoint.post("reject", "/approvals/:approval_id/reject").setPath(Schema.Struct({ approval_id: Id }))
      .setPayload(ApprovalReply).addSuccess(ApprovalView).addError(P.Denied)
  )
  .add(HttpApiEndpoint.post("suspend", "/agents/:agent_id/suspend").setPath(AgentPath).setPayload(Reason).addSuccess(NoContent))
  .add(HttpApiEndpoint.post("resume", "/agents/:agent_id/resume").setPath(AgentPath).setPayload(By).addSuccess(NoContent))
  .add(HttpApiEndpoint.post("kill", "/agents/:agent_id/kill").setPath(AgentPath).setPayload(Reason).addSuccess(NoContent))
  .add(HttpApiEndpoint.post("halt", "/halt").setPayload(Reason).addSuccess(NoContent))
  .add(HttpApiEndpoint.post("unhalt", "/unhalt").setPayload(By).addSuccess(NoContent))
  .add(
    HttpApiEndpoint.post("charge", "/agents/:agent_id/charge").setPath(AgentPath).setPayload(Charge)
      .addSuccess(Schema.Array(BudgetStatusView)).addError(P.Budget)
  )
  .add(
    HttpApiEndpoint.get("budgets", "/agents/:agent_id/budgets").setPath(AgentPath).addSuccess(Schema.Array(BudgetStatusView))
  )
  .add(HttpApiEndpoint.post("grantLease", "/leases").setPayload(Lease).addSuccess(Lease))
  .add(
    HttpApiEndpoint.post("checkLease", "/leases/check").setPayload(LeaseCheck).addSuccess(NoContent)
      .addError(P.Denied).addError(P.Expired)
  )
  .add(
    HttpApiEndpoint.post("delegateLease", "/leases/:lease_id/delegate").setPath(Schema.Struct({ lease_id: Id }))
      .setPayload(Lease).addSuccess(Lease).addError(P.NotSubset).addError(P.Expired)
  )
  .annotate(OpenApi.Description, "Governance: policies, checks, approvals, kill switch, budgets, leases")
  .middleware(Authorization)

// ---------------------------------------------------------------------------
// Audit, state and the log

export const AuditQuery = Schema.Struct({
  /** The first offset to read (default 1). */
  from: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive())),
  /** At most this many entries (default 100, at most 1,000). */
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000))),
  agent_id: Schema.optional(Id),
  decision: Schema.optional(Id)
})
export const AuditPage = Schema.Struct({
  entries: Schema.Array(AuditEntryView),
  /** Where the next page starts; absent on the last page. */
  next: Schema.optional(Schema.Number)
}).annotations({ identifier: "AuditPage" })
export const LogHead = Schema.Struct({ offset: Schema.Number }).annotations({ identifier: "LogHead" })

const audit = HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("entries", "/audit").setUrlParams(AuditQuery).addSuccess(AuditPage)
      .addError(P.Undecodable)
  )
  .add(HttpApiEndpoint.get("verify", "/audit/verify").addSuccess(ChainVerificationView).addError(P.Undecodable))
  .add(
    HttpApiEndpoint.post("verifyAgainst", "/audit/verify").setPayload(AuditCheckpoint).addSuccess(ChainVerificationView)
      .addError(P.Undecodable)
  )
  .add(HttpApiEndpoint.get("checkpoint", "/audit/checkpoint").addSuccess(AuditCheckpoint))
  .add(
    HttpApiEndpoint.get("state", "/state")
      .setUrlParams(Schema.Struct({ at: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())) }))
      .addSuccess(StateView).addError(P.Undecodable)
      .annotate(OpenApi.Description, "The state now, or (with at) the state the log folds to at that offset: a replay")
  )
  .add(HttpApiEndpoint.get("head", "/log/head").addSuccess(LogHead))
  .annotate(OpenApi.Description, "Operators: the audit trail and its verification, the state at any offset, the log")
  .middleware(Authorization)

// ---------------------------------------------------------------------------
// Agent Assembly's client routes (PROTOCOLS.md §2), as its GatewayClient calls them

export const AssemblyRegister = Schema.Struct({
  parent_agent_id: Schema.optional(Schema.NullOr(Id)),
  team_id: Schema.optional(Schema.NullOr(Id)),
  delegation_reason: Schema.optional(Schema.NullOr(Note)),
  spawned_by_tool: Schema.optional(Schema.NullOr(Id)),
  depth: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.nonNegative()))),
  enforcement_mode: Schema.optional(Schema.NullOr(EnforcementMode))
})
export const AssemblyAgent = Schema.Struct({
  agent_id: Schema.String,
  depth: Schema.Number,
  enforcement_mode: EnforcementMode,
  parent_agent_id: Schema.optional(Schema.String),
  team_id: Schema.optional(Schema.String),
  delegation_reason: Schema.optional(Schema.String),
  spawned_by_tool: Schema.optional(Schema.String),
  available: Schema.Boolean,
  registered_at: Schema.Number
}).annotations({ identifier: "AssemblyAgent" })
export const AssemblyCheck = Schema.Struct({ action: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(512)) })
export const AssemblyDecision = Schema.Struct({
  decision: Verdict,
  reason: Schema.String,
  rule: Schema.String,
  approval_id: Schema.optional(Schema.String)
}).annotations({ identifier: "AssemblyDecision" })
export const AssemblyEdge = Schema.Struct({
  source_agent_id: Id,
  target_agent_id: Id,
  edge_type: EdgeType,
  /** A JSON document, as a string. */
  metadata_json: Schema.optional(Schema.NullOr(Schema.String.pipe(Schema.maxLength(65_536))))
})
export const AssemblyDispatch = Schema.Struct({
  tool: Id,
  args: Json,
  /** The acting agent: the key's own agent; an operator (or an open server) must name one. */
  agent_id: Schema.optional(Id),
  approval_id: Schema.optional(Id)
})
export const AssemblyDispatched = Schema.Struct({
  resolved_args: Json,
  names_substituted: Schema.Array(Schema.String)
}).annotations({ identifier: "AssemblyDispatched" })
export const AssemblyPending = Schema.Struct({
  decision: Schema.Literal("pending"),
  approval_id: Schema.String,
  reason: Schema.String
}).annotations({ identifier: "AssemblyPending", [HttpApiSchema.AnnotationStatus]: 202 })

const assembly = HttpApiGroup.make("assembly")
  .add(
    HttpApiEndpoint.post("register", "/agents/:agent_id/register").setPath(AgentPath)
      .setPayload(Schema.NullOr(AssemblyRegister)).addSuccess(AssemblyAgent).addError(P.Denied).addError(P.Killed)
  )
  .add(
    HttpApiEndpoint.post("check", "/agents/:agent_id/policy/check").setPath(AgentPath).setPayload(AssemblyCheck)
      .addSuccess(AssemblyDecision).addError(P.NoAgent)
  )
  .add(
    HttpApiEndpoint.post("edge", "/topology/edges").setPayload(AssemblyEdge)
      .addSuccess(Schema.Struct({ id: Schema.String }), { status: 201 })
  )
  .add(
    HttpApiEndpoint.post("dispatch", "/dispatch_tool").setPayload(AssemblyDispatch)
      .addSuccess(AssemblyDispatched).addSuccess(AssemblyPending).addError(P.Denied).addError(P.Placeholder)
  )
  .annotate(OpenApi.Description, "The routes Agent Assembly's GatewayClient calls, with its bodies and statuses")
  .middleware(Authorization)

// ---------------------------------------------------------------------------
// Health

// ---------------------------------------------------------------------------
// ARCP jobs run by remote agents: what the agent reports (README, "ARCP")

const JobPath = Schema.Struct({ job_id: Id })
/** The agent that reports: an agent key's own (it may leave it out); an operator's names any, or none. */
const Reporter = { agent_id: Schema.optional(Id) }
export const ReportEvents = Schema.Struct({
  ...Reporter,
  events: Schema.Array(Schema.Struct({ kind: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)), body: Json }))
    .pipe(Schema.minItems(1), Schema.maxItems(1024))
}).annotations({ identifier: "ReportEvents" })
export const ReportAnswer = Schema.Union(
  Schema.Struct({ ok: Schema.Literal(true), child_job_id: Schema.optional(Schema.String) }),
  Schema.Struct({ ok: Schema.Literal(false), code: ArcpErrorCode, message: Schema.String })
).annotations({ identifier: "ReportAnswer" })
export const ReportResult = Schema.Struct({
  ...Reporter,
  result: Schema.optional(Json),
  result_id: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256))),
  result_size: Schema.optional(Schema.NonNegativeInt),
  summary: Schema.optional(Schema.String.pipe(Schema.maxLength(4096)))
}).annotations({ identifier: "ReportResult" })
export const ReportError = Schema.Struct({
  ...Reporter,
  code: ArcpErrorCode,
  message: Schema.String.pipe(Schema.maxLength(4096)),
  details: Schema.optional(Json)
}).annotations({ identifier: "ReportError" })

const arcp = HttpApiGroup.make("arcp")
  .add(
    HttpApiEndpoint.post("reportEvents", "/arcp/jobs/:job_id/events").setPath(JobPath).setPayload(ReportEvents)
      .addSuccess(Schema.Array(ReportAnswer)).addError(P.NoJob).addError(P.Ended)
  )
  .add(
    HttpApiEndpoint.post("reportResult", "/arcp/jobs/:job_id/result").setPath(JobPath).setPayload(ReportResult)
      .addSuccess(NoContent).addError(P.NoJob).addError(P.Ended)
  )
  .add(
    HttpApiEndpoint.post("reportError", "/arcp/jobs/:job_id/error").setPath(JobPath).setPayload(ReportError)
      .addSuccess(NoContent).addError(P.NoJob).addError(P.Ended)
  )
  .middleware(Authorization)

export const Health = Schema.Struct({ status: Schema.Literal("ok") })
export const Readiness = Schema.Struct({ ready: Schema.Boolean, offset: Schema.Number })

const health = HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Health))
  .add(HttpApiEndpoint.get("ready", "/ready").addSuccess(Readiness))
  .annotate(OpenApi.Description, "Liveness and readiness, without a key")

// ---------------------------------------------------------------------------
// The OpenAPI document, as the server answers

const decodeErrorRef = "#/components/schemas/HttpApiDecodeError"

/** A response's schema without the platform's HttpApiDecodeError, which `Edge.ts` answers as a ValidationError. */
const withoutDecodeError = (schema: any): any => {
  if (!Array.isArray(schema?.anyOf)) return schema
  const rest = schema.anyOf.filter((member: any) => member?.$ref !== decodeErrorRef)
  return rest.length === 1 ? rest[0] : { ...schema, anyOf: rest }
}

/**
 * Every error is answered as problem+json, but the generator files a status
 * that several errors share under application/json, and lists the
 * platform's decode error that the edge never answers. A body that may be
 * null may also be left out (Agent Assembly's register).
 */
const asServed = (spec: Record<string, any>): Record<string, any> => {
  for (const operations of Object.values<any>(spec.paths ?? {})) {
    for (const operation of Object.values<any>(operations)) {
      for (const [status, response] of Object.entries<any>(operation.responses ?? {})) {
        if (Number(status) < 400 || response.content === undefined) continue
        const schema = Object.values<any>(response.content)[0]?.schema
        response.content = { "application/problem+json": { schema: withoutDecodeError(schema) } }
      }
      const body = operation.requestBody?.content?.["application/json"]?.schema
      if (Array.isArray(body?.anyOf) && body.anyOf.some((member: any) => member?.type === "null")) {
        operation.requestBody.required = false
      }
    }
  }
  if (!JSON.stringify(spec.paths).includes(decodeErrorRef)) delete spec.components?.schemas?.HttpApiDecodeError
  return spec
}

// ---------------------------------------------------------------------------

export class SwitchboardApi extends HttpApi.make("switchboard")
  .add(agents)
  .add(messages)
  .add(gateway)
  .add(audit)
  .add(assembly)
  .add(arcp)
  .add(Coordination.scheduler.middleware(Authorization))
  .add(Coordination.worktrees.middleware(Authorization))
  .add(Coordination.negotiation.middleware(Authorization))
  .add(Coordination.hitl.middleware(Authorization))
  .add(health)
  .add(inspect.middleware(Authorization))
  .addError(P.Invalid)
  .addError(P.Denied)
  .addError(P.Oversize)
  .addError(P.Internal)
  .addError(P.Persistence)
  .annotateContext(OpenApi.annotations({
    title: "Switchboard",
    version: "0.1.0",
    description: "An event-sourced runtime for message-driven AI agents: registry, router with ACKs, governance, audit, replay",
    transform: asServed
  }))
{}
