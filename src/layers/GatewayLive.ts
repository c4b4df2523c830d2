/**
 * The live gateway: every command runs through the runtime's one loop, so a
 * decision always sees the latest policies, kill switch and budgets, and is
 * durable (with its audit record) before anyone acts on it.
 */
import { Chunk, Deferred, Effect, Either, Option, Schema, Stream } from "effect"
import { verifyChain } from "../model/Audit.js"
import { parseBudgetKey } from "../model/Budgets.js"
import {
  type Approval,
  type ApprovalStatus,
  budgetStatus,
  approvedRedactions,
  decideApprovedCall,
  decideCharge,
  decideCheck,
  decideCheckLease,
  decideDelegateLease,
  decideDispatched,
  decideGrantLease,
  decideKillSwitch,
  decideLoadPolicy,
  decideRemovePolicy,
  decideResolveApproval,
  type GatewayDecision,
  type KillSwitchCommand,
  redactArgs
} from "../model/Gateway.js"
import type { Action } from "../model/Policy.js"
import { decideKilledAgentWork, gatewayView, type RouterState } from "../model/Router.js"
import { AuditContext } from "../schema/Audit.js"
import { Id } from "../schema/Envelope.js"
import { PermissionDenied, ValidationError } from "../schema/Errors.js"
import { ChargeRequest, GatedAction } from "../schema/GatewayEvents.js"
import { inputDecoder } from "../internal/decode.js"
import { Lease, LeaseCheck } from "../schema/Lease.js"
import { parsePolicy } from "../schema/Policy.js"
import { type AuditEntry, type Dispatch, Gateway, type PolicyInfo } from "../services/Gateway.js"
import type { Runtime } from "./RouterLive.js"
import { injectSecrets } from "./Secrets.js"

// Requests from outside are checked before they reach the log, where a bad one
// would fail the others' events appended with it.
const validLease = inputDecoder(Lease, "lease", { onExcessProperty: "error" })
/** An action's args must be JSON. */
const validAction = inputDecoder(GatedAction, "action", { onExcessProperty: "error" })
const decodeContext = inputDecoder(AuditContext, "context", { onExcessProperty: "error" })
const validCharge = inputDecoder(ChargeRequest, "charge")
const validLeaseCheck = inputDecoder(LeaseCheck, "lease")
const validAgentId = inputDecoder(Id, "kill_switch")
const validReason = inputDecoder(Schema.String, "kill_switch")

/** A caller's audit context, checked before it can reach a hashed record. */
const validContext = (context: unknown): Either.Either<AuditContext | undefined, ValidationError> =>
  context === undefined ? Either.right(undefined) : decodeContext(context)

export const make = (runtime: Runtime) =>
  Effect.gen(function*() {
    const { log, onCommitted, query, run } = runtime
    const approvalWaiters = new Map<string, Array<Deferred.Deferred<Approval>>>()

    onCommitted((events, state) => {
      for (const event of events) {
        if (event._tag !== "ApprovalResolved") continue
        const approval = state.gateway.approvals.get(event.approval_id)
        for (const waiter of approvalWaiters.get(event.approval_id) ?? []) {
          if (approval !== undefined) Deferred.unsafeDone(waiter, Effect.succeed({ ...approval }))
        }
        approvalWaiters.delete(event.approval_id)
      }
    })

    const policyInfo = (state: RouterState, policyId: string): PolicyInfo => {
      const entry = state.gateway.policies.get(policyId)!
      return { policy_id: policyId, version: entry.version, scope: entry.document.scope }
    }

    const checkValid = (action: Action, context: AuditContext | undefined) => {
      let decision: GatewayDecision | undefined
      return run(
        (state, now) => {
          const checked = decideCheck(state.gateway, gatewayView(state), action, now, context)
          decision = checked.decision
          return Either.right(checked.events)
        },
        () => decision!
      )
    }
    const check = (input: Action, context?: AuditContext) =>
      Effect.flatMap(
        Either.all([validAction(input), validContext(context)]),
        ([action, valid]) => checkValid(action, valid)
      )

    const resolveApproval = (outcome: "approved" | "rejected") => (approvalId: string, by: string, note?: string) =>
      run(
        (state, now) =>
          decideResolveApproval(state.gateway, gatewayView(state), { approval_id: approvalId, outcome, by, note }, now),
        (state) => ({ ...state.gateway.approvals.get(approvalId)! })
      )

    const killSwitch = (command: KillSwitchCommand, by = "operator") =>
      Effect.zipRight(
        Either.all([
          "agent_id" in command ? validAgentId(command.agent_id) : Either.right(""),
          "reason" in command ? validReason(command.reason) : Either.right(""),
          validReason(by)
        ]),
        Effect.asVoid(run((state, now) =>
        Either.map(
          decideKillSwitch(state.gateway, gatewayView(state), command, by, now),
          (events) => command._tag === "Kill" ? [...events, ...decideKilledAgentWork(state, command.agent_id, now)] : events
        )
      )))

    const currenciesOf = (state: RouterState, agentId: string) => {
      const team = state.agents.get(agentId)?.descriptor.team_id
      const currencies = new Set<string>()
      for (const key of state.gateway.spent.keys()) {
        const { currency, id, scope } = parseBudgetKey(key)
        if ((scope === "agent" && id === agentId) || (scope === "team" && id === team)) currencies.add(currency)
      }
      for (const { document } of state.gateway.policyList) {
        for (const budget of document.budgets ?? []) currencies.add(budget.currency)
      }
      return [...currencies].sort()
    }

    const audit = log.read().pipe(
      Stream.filterMap((entry) =>
        entry.event._tag === "AuditRecorded"
          ? Option.some<AuditEntry>({ offset: entry.offset, record: entry.event.record })
          : Option.none()
      )
    )

    const dispatchTool = (request: {
      readonly agent_id: string
      readonly tool: string
      readonly args: unknown
      readonly approval_id?: string | undefined
      readonly context?: AuditContext | undefined
    }) =>
      Effect.gen(function*() {
        const action = yield* validAction({
          kind: "tool_call",
          agent_id: request.agent_id,
          tool: request.tool,
          args: request.args
        })
        const context = yield* validContext(request.context)
        let decision: GatewayDecision
        if (request.approval_id !== undefined) {
          const approvalId = request.approval_id
          let redact: ReadonlyArray<string> = []
          decision = yield* run(
            (state, now) => {
              redact = approvedRedactions(state.gateway, gatewayView(state), approvalId, action, now)
              return decideApprovedCall(state.gateway, gatewayView(state), approvalId, action, now, context)
            },
            (): GatewayDecision => ({
              decision: redact.length > 0 ? "redact" : "allow",
              reason: `approved (${approvalId})`,
              rule: `approval ${approvalId}`,
              dry_run: false,
              redact: redact.length > 0 ? redact : undefined
            })
          )
        } else {
          decision = yield* checkValid(action, context)
          if (decision.decision === "deny") return yield* new PermissionDenied({ reason: decision.reason })
          if (decision.decision === "pending") {
            return { _tag: "AwaitingApproval", approval_id: decision.approval_id!, decision } satisfies Dispatch
          }
        }
        // Secrets go in last, just before the call leaves: nothing recorded above ever held them.
        const injected = yield* injectSecrets(action.kind === "tool_call" ? action.args : request.args)
        yield* run((state, now) =>
          Either.right(decideDispatched(state.gateway, gatewayView(state), {
            agent_id: request.agent_id,
            tool: request.tool,
            substituted: injected.names
          }, now, context))
        )
        return {
          _tag: "Dispatched",
          args: decision.redact === undefined ? injected.args : redactArgs(injected.args, decision.redact),
          substituted: injected.names,
          decision
        } satisfies Dispatch
      })

    return Gateway.of({
      loadPolicy: (yaml) =>
        Effect.flatMap(
          parsePolicy(yaml),
          (document) =>
            run(
              (state, now) => Either.right(decideLoadPolicy(state.gateway, document, yaml, now)),
              (state) => policyInfo(state, document.id)
            )
        ),
      removePolicy: (policyId) => Effect.asVoid(run((state, now) => decideRemovePolicy(state.gateway, policyId, now))),
      policies: query((state) => [...state.gateway.policies.keys()].map((id) => policyInfo(state, id))),
      check,
      approvals: (status?: ApprovalStatus) =>
        query((state) =>
          [...state.gateway.approvals.values()]
            .filter((approval) => status === undefined || approval.status === status)
            .map((approval) => ({ ...approval }))
        ),
      approve: resolveApproval("approved"),
      reject: resolveApproval("rejected"),
      awaitApproval: (approvalId) =>
        Effect.gen(function*() {
          const done = yield* Deferred.make<Approval>()
          const found = yield* query((state) => {
            const approval = state.gateway.approvals.get(approvalId)
            if (approval === undefined) return false
            if (approval.status !== "open") Deferred.unsafeDone(done, Effect.succeed({ ...approval }))
            else approvalWaiters.set(approvalId, [...(approvalWaiters.get(approvalId) ?? []), done])
            return true
          })
          if (!found) return yield* ValidationError.single("approval", "approval_id", `no approval ${approvalId}`)
          return yield* Deferred.await(done)
        }),
      suspend: (agentId, reason, by) => killSwitch({ _tag: "Suspend", agent_id: agentId, reason }, by),
      resume: (agentId, by) => killSwitch({ _tag: "Resume", agent_id: agentId }, by),
      kill: (agentId, reason, by) => killSwitch({ _tag: "Kill", agent_id: agentId, reason }, by),
      halt: (reason, by) => killSwitch({ _tag: "Halt", reason }, by),
      unhalt: (by) => killSwitch({ _tag: "Unhalt" }, by),
      charge: (input) =>
        Effect.flatMap(validCharge(input), (request) =>
          run(
            (state, now) => decideCharge(state.gateway, gatewayView(state), request, now),
            (state) => budgetStatus(state.gateway, gatewayView(state), request.agent_id, request.currency)
          )),
      budgets: (agentId) =>
        query((state) =>
          currenciesOf(state, agentId).flatMap((currency) =>
            budgetStatus(state.gateway, gatewayView(state), agentId, currency)
          )
        ),
      grantLease: (input) =>
        Effect.flatMap(
          validLease(input),
          (lease) => run((state, now) => decideGrantLease(state.gateway, lease, now), () => lease)
        ),
      checkLease: (input) =>
        Effect.flatMap(validLeaseCheck(input), (request) =>
          Effect.asVoid(run((state, now) => decideCheckLease(state.gateway, gatewayView(state), request, now)))),
      delegateLease: (request) =>
        Effect.flatMap(
          validLease(request.lease),
          (lease) =>
            run(
              (state, now) =>
                decideDelegateLease(state.gateway, gatewayView(state), {
                  parent_lease_id: request.parent_lease_id,
                  lease
                }, now),
              (state) => state.gateway.leases.get(lease.lease_id)!
            )
        ),
      dispatchTool,
      audit,
      verifyAudit: Effect.map(Stream.runCollect(audit), (entries) => verifyChain(Chunk.toReadonlyArray(entries)))
    })
  })
