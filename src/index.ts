/**
 * Switchboard's public API. Node-only parts (the SQLite and PostgreSQL event
 * logs, opening a store file) come from `switchboard/node`.
 */

// Shapes: the wire, the log's events, the errors
export * from "./schema/Agent.js"
export * from "./schema/Envelope.js"
export * from "./schema/Errors.js"
export * from "./schema/Event.js"
export * from "./schema/RouterEvents.js"
export * from "./schema/GatewayEvents.js"
export * from "./schema/Audit.js"
export * from "./schema/Lease.js"
export * from "./schema/Policy.js"

// Rules
export { buildEnvelope, type EnvelopeInput, payloadJson, payloadText } from "./model/Envelopes.js"
export {
  type AckError,
  defaultRouterConfig,
  type RouterConfig,
  type RouterSnapshot,
  type SendError
} from "./model/Router.js"
export { describe as describeEvent, differences } from "./model/Timeline.js"
export type { Action, Decision, Verdict } from "./model/Policy.js"
export { compilePolicy, evaluate as evaluatePolicies, globMatch } from "./model/Policy.js"
export * as Expression from "./model/Expression.js"
export type { Approval, ApprovalStatus, AuditContext, GatewayDecision } from "./model/Gateway.js"
export { type ChainOptions, type ChainVerification, GENESIS_HASH, verifyChain } from "./model/Audit.js"
export { findPlaceholders, resolvePlaceholders } from "./model/Placeholders.js"

// Services
export { EventLog, type ReadRange } from "./services/EventLog.js"
export { type AuditEntry, type BudgetStatus, type Dispatch, Gateway, type PolicyInfo } from "./services/Gateway.js"
export { Ids } from "./services/Ids.js"
export { SecretStore } from "./services/SecretStore.js"
export { type AgentInfo, Registry } from "./services/Registry.js"
export {
  type AckReceipt,
  type AckRequest,
  type Delivery,
  type Inbound,
  type MessageStatus,
  type Recipient,
  Router,
  type SendReceipt,
  type StageNotice
} from "./services/Router.js"

// Layers and machinery
export { newEnvelope } from "./layers/Envelopes.js"
export * as EventLogMemory from "./layers/EventLogMemory.js"
export type { EventLogOptions } from "./layers/EventLogStore.js"
export * as Processor from "./layers/Processor.js"
export * as Replay from "./layers/Replay.js"
export { injectSecrets } from "./layers/Secrets.js"
export * as Switchboard from "./layers/Switchboard.js"
