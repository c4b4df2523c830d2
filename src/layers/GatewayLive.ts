/**
 * The live gateway: a thin layer over the command loop, so a decision always
 * sees the latest policies, kill switch and budgets, and is durable (with its
 * audit record) before anyone acts on it. Every request from outside is
 * decoded first: a bad one fails alone, before it can reach the log.
 */
import { Chunk, Effect, Either, Layer, Option, Schema, Stream } from "effect"
import { decideDeniedAccess } from "../model/Access.js"
import { decideApprovedCall, decideResolveApproval } from "../model/Approvals.js"
import { verifyChain } from "../model/Audit.js"
import { budgetStatus, currenciesOf, decideCharge } from "../model/Budgets.js"
import { decideCheck, decideDispatched, redactArgs } from "../model/Checks.js"
import { type Approval, type ApprovalStatus, decideLoadPolicy, decideRemovePolicy, policyInfo } from "../model/Governance.js"
import { decideKillSwitch, type KillSwitchCommand } from "../model/KillSwitch.js"
import type { Action } from "../model/Policy.js"
import { decideCheckLease, decideDelegateLease, decideGrantLease } from "../model/Leases.js"
import { accept } from "../model/State.js"
import { AuditCheckpoint, AuditContext } from "../schema/Audit.js"
import { Id } from "../schema/Envelope.js"
import { PermissionDenied, ValidationError } from "../schema/Errors.js"
import { inputDecoder } from "../internal/decode.js"
import { ChargeRequest, GatedAction } from "../schema/GatewayEvents.js"
import { copyJson } from "../schema/Json.js"
import { Lease, LeaseCheck } from "../schema/Lease.js"
import { readPolicy } from "../schema/Policy.js"
import {
  ApprovalAnswer,
  ApprovalsFilter,
  DeniedAccess,
  HaltRequest,
  ResumeRequest,
  SuspendRequest,
  UnhaltRequest
} from "../schema/Requests.js"
import { EventLog } from "../services/EventLog.js"
import { type AuditEntry, type Dispatch, Gateway } from "../services/Gateway.js"
import { Runtime } from "../services/Runtime.js"
import * as Waiters from "./Waiters.js"
import type { Look } from "./Waiters.js"
import { injectSecrets } from "./Secrets.js"
import { fieldOf, idOf, offsetOf, traced, tracedEffect, valueAt } from "./Spans.js"
import { runSliced } from "./Slicing.js"

const validLease = inputDecoder(Lease, "lease", { onExcessProperty: "error" })
/** An action's args must be JSON; they are copied, so that the caller's object is the caller's again. */
const decodeAction = inputDecoder(GatedAction, "action", { onExcessProperty: "error" })
const validAction = (input: unknown) =>
  Either.map(decodeAction(input), (action): GatedAction =>
    action.kind === "tool_call" ? { ...action, args: copyJson(action.args) } : action)
const validContext = inputDecoder(Schema.UndefinedOr(AuditContext), "context", { onExcessProperty: "error" })
const validCharge = inputDecoder(ChargeRequest, "charge")
const validLeaseCheck = inputDecoder(LeaseCheck, "lease")
const validCheckpoint = inputDecoder(AuditCheckpoint, "checkpoint")
const validResolution = inputDecoder(ApprovalAnswer, "approval")
const validId = (subject: string) => inputDecoder(Id, subject)
const validAgentId = validId("agent_id")
const validApprovalId = validId("approval_id")
const validStatus = inputDecoder(Schema.UndefinedOr(ApprovalsFilter), "approvals")
const validSuspend = inputDecoder(SuspendRequest, "kill_switch")
const validResume = inputDecoder(ResumeRequest, "kill_switch")
const validHalt = inputDecoder(HaltRequest, "kill_switch")
const validUnhalt = inputDecoder(Schema.UndefinedOr(UnhaltRequest), "kill_switch")
/** A request's outer shape, checked before any field of it is read. */
const validObject = (subject: string) => inputDecoder(Schema.Record({ key: Schema.String, value: Schema.Unknown }), subject)
const validCheck = validObject("action")
const validDispatch = validObject("dispatch")
const validDenied = inputDecoder(DeniedAccess, "denied", { onExcessProperty: "error" })
const validDelegation = inputDecoder(Schema.Struct({ parent_lease_id: Id, lease: Schema.Unknown }), "lease")

export const layer: Layer.Layer<Gateway, never, Runtime | EventLog> = Layer.scoped(
  Gateway,
  Effect.gen(function*() {
    const { extend, query, run } = yield* Runtime
    const log = yield* EventLog
    const approvalWaiters = Waiters.make<void, Approval>(query)

    yield* extend({
      committed: (events, state) => {
        for (const event of events) {
          if (event._tag !== "ApprovalResolved") continue
          const approval = state.approvals.get(event.approval_id)
          if (approval !== undefined) approvalWaiters.wake(event.approval_id, () => ({ ...approval }))
        }
      },
      stopped: approvalWaiters.failAll
    })

    const check = (request: Action & { readonly context?: AuditContext | undefined }) =>
      Effect.flatMap(validCheck(request), ({ context, ...action }) =>
        Effect.flatMap(
          Either.all([validAction(action), validContext(context)]),
          ([valid, checkedContext]) =>
            valueAt(run((state, now) => {
              const { decision, events } = decideCheck(state, valid, now, checkedContext)
              return accept(events, decision)
            }))
        ))

    const resolveApproval = (outcome: "approved" | "rejected") => (request: ApprovalAnswer) =>
      Effect.flatMap(validResolution(request), (valid) =>
        valueAt(run((state, now) => decideResolveApproval(state, { ...valid, outcome }, now))))

    /** A kill-switch command from a request decoded whole: `by` is "operator" unless given. */
    const killSwitch = <R extends { readonly by?: string | undefined } | undefined>(
      valid: (request: unknown) => Either.Either<R, ValidationError>,
      command: (request: R) => KillSwitchCommand
    ) =>
    (request: unknown) =>
      Effect.flatMap(valid(request), (checked) =>
        Effect.asVoid(valueAt(run((state, now) => decideKillSwitch(state, command(checked), checked?.by ?? "operator", now)))))

    const audit = log.read().pipe(
      Stream.filterMap((entry) =>
        entry.event._tag === "AuditRecorded"
          ? Option.some<AuditEntry>({ offset: entry.offset, record: entry.event.record })
          : Option.none()
      )
    )

    const awaitApproval = (approvalId: string) =>
      Effect.flatMap(validApprovalId(approvalId), (id) =>
        approvalWaiters.await(id, (state): Look<void, Approval> => {
          const approval = state.approvals.get(id)
          if (approval === undefined) return { _tag: "Absent" }
          return approval.status === "open" ? { _tag: "Wait", wants: undefined } : { _tag: "Now", value: { ...approval } }
        }, () => ValidationError.single("approval", "approval_id", `no approval ${id}`)))

    const dispatchTool = (request: {
      readonly agent_id: string
      readonly tool: string
      readonly args: unknown
      readonly approval_id?: string | undefined
      readonly context?: AuditContext | undefined
    }) =>
      Effect.gen(function*() {
        yield* validDispatch(request)
        const action = yield* validAction({ kind: "tool_call", agent_id: request.agent_id, tool: request.tool, args: request.args })
        const context = yield* validContext(request.context)
        const approvalId = request.approval_id === undefined ? undefined : yield* validApprovalId(request.approval_id)
        const decision = approvalId !== undefined
          ? yield* valueAt(run((state, now) => decideApprovedCall(state, approvalId, action, now, context)))
          : yield* valueAt(run((state, now) => {
            const checked = decideCheck(state, action, now, context)
            return accept(checked.events, checked.decision)
          }))
        if (decision.decision === "deny") return yield* new PermissionDenied({ reason: decision.reason })
        if (decision.decision === "pending") {
          return { _tag: "AwaitingApproval", approval_id: decision.approval_id!, decision } satisfies Dispatch
        }
        // Secrets go in last, just before the call leaves: nothing recorded above ever held them.
        const injected = yield* injectSecrets(action.kind === "tool_call" ? action.args : request.args)
        yield* valueAt(run((state, now) =>
          accept(decideDispatched(state, { agent_id: action.agent_id, tool: request.tool, substituted: injected.names }, now, context))
        ))
        return {
          _tag: "Dispatched",
          args: decision.redact === undefined ? injected.args : redactArgs(injected.args, decision.redact),
          substituted: injected.names,
          decision
        } satisfies Dispatch
      })

    const byAgent = (agentId: unknown) => ({ agent_id: idOf(agentId) })
    const ofAgent = (request: unknown) => ({ agent_id: idOf(fieldOf(request, "agent_id")) })
    const ofApproval = (request: unknown) => ({ approval_id: idOf(fieldOf(request, "approval_id")) })

    // Every method a span, when a tracer records them (`Spans.ts`).
    return Gateway.of({
      loadPolicy: traced("Gateway.loadPolicy", (yaml) =>
        Effect.flatMap(
          // Read in slices: a policy at the size limit is a tenth of a second of parsing.
          Effect.flatten(runSliced(() => readPolicy(yaml))),
          (document) => valueAt(run((state, now) => decideLoadPolicy(state, document, yaml, now)))
        ), undefined, (info) => ({ policy_id: info.policy_id })),
      removePolicy: traced("Gateway.removePolicy", (policyId) =>
        Effect.flatMap(validId("policy_id")(policyId), (id) =>
          Effect.asVoid(valueAt(run((state, now) => decideRemovePolicy(state, id, now))))), (policyId) => ({ policy_id: idOf(policyId) })),
      policies: tracedEffect("Gateway.policies", query((state) => [...state.policies].map(([id, entry]) => policyInfo(id, entry)))),
      check: traced("Gateway.check", check, (request) => ({
        agent_id: idOf(fieldOf(request, "agent_id")),
        kind: idOf(fieldOf(request, "kind"))
      }), (decision) => ({ decision: decision.decision })),
      approvals: traced("Gateway.approvals", (filter) =>
        Effect.flatMap(validStatus(filter), (valid) => {
          const status: ApprovalStatus | undefined = valid?.status
          return query((state) =>
            [...state.approvals.values()]
              .filter((approval) => status === undefined || approval.status === status)
              .map((approval) => ({ ...approval }))
          )
        })),
      approve: traced("Gateway.approve", resolveApproval("approved"), ofApproval),
      reject: traced("Gateway.reject", resolveApproval("rejected"), ofApproval),
      awaitApproval: traced("Gateway.awaitApproval", awaitApproval, (approvalId) => ({ approval_id: idOf(approvalId) })),
      suspend: traced("Gateway.suspend", killSwitch(validSuspend, ({ agent_id, reason }) => ({ _tag: "Suspend", agent_id, reason })), ofAgent),
      resume: traced("Gateway.resume", killSwitch(validResume, ({ agent_id }) => ({ _tag: "Resume", agent_id })), ofAgent),
      kill: traced("Gateway.kill", killSwitch(validSuspend, ({ agent_id, reason }) => ({ _tag: "Kill", agent_id, reason })), ofAgent),
      halt: traced("Gateway.halt", killSwitch(validHalt, ({ reason }) => ({ _tag: "Halt", reason }))),
      unhalt: traced("Gateway.unhalt", killSwitch(validUnhalt, () => ({ _tag: "Unhalt" }))),
      charge: traced("Gateway.charge", (input) =>
        Effect.flatMap(validCharge(input), (request) => valueAt(run((state, now) => decideCharge(state, request, now)))), ofAgent),
      budgets: traced("Gateway.budgets", (agentId) =>
        Effect.flatMap(validAgentId(agentId), (id) =>
          query((state) => currenciesOf(state, id).flatMap((currency) => budgetStatus(state, id, currency)))), byAgent),
      grantLease: traced("Gateway.grantLease", (input) =>
        Effect.flatMap(validLease(input), (lease) => valueAt(run((state, now) => decideGrantLease(state, lease, now)))), (input) => ({
        agent_id: idOf(fieldOf(input, "agent_id")),
        lease_id: idOf(fieldOf(input, "lease_id"))
      })),
      checkLease: traced("Gateway.checkLease", (input) =>
        Effect.flatMap(validLeaseCheck(input), (request) => Effect.asVoid(valueAt(run((state, now) => decideCheckLease(state, request, now))))), (input) => ({ lease_id: idOf(fieldOf(input, "lease_id")) })),
      delegateLease: traced("Gateway.delegateLease", (request) =>
        Effect.flatMap(validDelegation(request), ({ lease: input, parent_lease_id }) =>
          Effect.flatMap(validLease(input), (lease) =>
            valueAt(run((state, now) => decideDelegateLease(state, { parent_lease_id, lease }, now))))), (request) => ({
        parent_lease_id: idOf(fieldOf(request, "parent_lease_id")),
        agent_id: idOf(fieldOf(fieldOf(request, "lease"), "agent_id"))
      })),
      dispatchTool: traced("Gateway.dispatchTool", dispatchTool, (request) => ({
        agent_id: idOf(fieldOf(request, "agent_id")),
        tool: idOf(fieldOf(request, "tool"))
      })),
      recordDenied: traced("Gateway.recordDenied", (request) =>
        Effect.flatMap(validDenied(request), (denied) =>
          run(
            (state, now) => decideDeniedAccess(state, denied, now),
            ({ record }, records): AuditEntry => ({ offset: records[0].offset, record })
          )), (request) => ({ agent_id: idOf(fieldOf(request, "agent_id")) }), offsetOf),
      audit,
      auditCheckpoint: tracedEffect("Gateway.auditCheckpoint", query((state) => ({ records: state.audits, head: state.auditHead }))),
      verifyAuditAgainst: traced("Gateway.verifyAuditAgainst", (input) =>
        Effect.flatMap(validCheckpoint(input), (checkpoint) =>
          Effect.map(Stream.runCollect(audit), (entries) => verifyChain(Chunk.toReadonlyArray(entries), { checkpoint })))),
      verifyAudit: tracedEffect("Gateway.verifyAudit", Effect.map(Stream.runCollect(audit), (entries) => verifyChain(Chunk.toReadonlyArray(entries))))
    })
  })
)
