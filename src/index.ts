/**
 * Switchboard's public API: what a user builds on, by name. Node-only parts
 * (the SQLite and PostgreSQL event logs, the remote client's Node transports)
 * come from `switchboard/node`. Codec internals (event versions, upcasters,
 * fast decoders) stay inside.
 */

// The wire: envelopes, acks, agents, leases, policies, audit records
export {
  AckPayload,
  AckRequest,
  AckStage,
  AgentState,
  CommunicationClass,
  decodeAckPayload,
  decodeEnvelope,
  decodeEnvelopeJson,
  encodeAckPayload,
  encodeEnvelope,
  encodeEnvelopeJson,
  Envelope,
  type EnvelopeJson,
  EnvelopeState,
  ErrorCode,
  MessageType
} from "./schema/Envelope.js"
export { AgentDescriptor, type AgentDescriptorJson, EdgeType, EnforcementMode } from "./schema/Agent.js"
export { Lease, type LeaseJson, LeaseNamespace } from "./schema/Lease.js"
export { InvalidPolicy, parsePolicy, PolicyDocument } from "./schema/Policy.js"
export { AuditCheckpoint, AuditContext, AuditRecord, CallStackNode } from "./schema/Audit.js"
export { type RuntimeConfig, RuntimeOptions } from "./schema/Config.js"
export { Event, type EventRecord } from "./schema/Event.js"
export {
  AgentKey,
  AgentPrincipal,
  InvalidKeysFile,
  KeyEntry,
  KeyHash,
  KeyId,
  KeysFile,
  KeysFileError,
  type KeysFileJson,
  OperatorKey,
  OperatorPrincipal,
  openKeyId,
  Principal
} from "./schema/Keys.js"

// Typed errors: each carries its wire code and retry class
export {
  AgentKilled,
  AgentShutdown,
  AgentUnavailable,
  BudgetExhausted,
  BufferFull,
  DuplicateDetected,
  InternalError,
  LeaseExpired,
  LeaseSubsetViolation,
  MessageNotFound,
  NoRoute,
  NotAStore,
  OversizePayload,
  PermissionDenied,
  PersistenceError,
  RateLimited,
  StoreInUse,
  TtlExpired,
  UndecodableRecord,
  Unauthorized,
  UnknownPlaceholder,
  UnsupportedMessageType,
  ValidationError
} from "./schema/Errors.js"

// Coordination (PROTOCOLS.md §1): the scheduler, worktree bindings, negotiation rooms, human in the loop
export { AlreadyExists, DeadlineExceeded, FailedPrecondition, NotFound } from "./schema/CoordinationErrors.js"
export * as SchedulerWire from "./schema/Scheduler.js"
export * as WorktreeWire from "./schema/Worktree.js"
export * as NegotiationWire from "./schema/Negotiation.js"
export * as HitlWire from "./schema/Hitl.js"

// Rules: pure functions a user may call on their own
export { buildEnvelope, type EnvelopeInput, payloadJson, payloadText } from "./model/Envelopes.js"
export { type RuntimeSnapshot, type RuntimeState } from "./model/Runtime.js"
export { describe as describeEvent, differences } from "./model/Timeline.js"
export { type Action, compilePolicy, evaluate as evaluatePolicies, globMatch, type Verdict } from "./model/Policy.js"
export * as Expression from "./model/Expression.js"
export { type ChainOptions, type ChainVerification, GENESIS_HASH, verifyChain } from "./model/Audit.js"
export { findPlaceholders, resolvePlaceholders } from "./model/Placeholders.js"
export { hashKey, isKeyShaped, keyIdOf } from "./model/Keys.js"
export * as RateLimit from "./model/RateLimit.js"
export { aggregate as aggregateVotes, decideOutcome as decideRoomOutcome } from "./model/Negotiation.js"
export { scopesConflict } from "./model/Scheduler.js"
export { coordinationSnapshot } from "./model/Coordination.js"

// Services: what each promises
export { EventLog, type ReadRange } from "./services/EventLog.js"
export {
  type Approval,
  type ApprovalStatus,
  type AuditEntry,
  type BudgetStatus,
  type Dispatch,
  Gateway,
  type GatewayDecision,
  type PolicyInfo
} from "./services/Gateway.js"
export { Ids } from "./services/Ids.js"
export { Keys } from "./services/Keys.js"
export { RandomBytes, type RandomBytesService } from "./services/RandomBytes.js"
export { SecretStore } from "./services/SecretStore.js"
export { type AgentInfo, type Edge, Registry } from "./services/Registry.js"
export {
  type AckError,
  type AckReceipt,
  type Delivery,
  type Inbound,
  type MessageStatus,
  type Recipient,
  Router,
  type SendError,
  type SendReceipt,
  type StageNotice,
  type SubscriptionOptions
} from "./services/Router.js"
export { type Committed, Runtime, type TurnExtension } from "./services/Runtime.js"
export { Scheduler } from "./services/Scheduler.js"
export { Worktrees } from "./services/Worktrees.js"
export { Negotiation } from "./services/Negotiation.js"
export { Hitl } from "./services/Hitl.js"

// Layers and machinery
export { newEnvelope } from "./layers/Envelopes.js"
export * as EventLogMemory from "./layers/EventLogMemory.js"
export * as KeysLive from "./layers/KeysLive.js"
export * as RateLimiter from "./layers/RateLimiter.js"
export type { EventLogOptions } from "./layers/EventLogStore.js"
export * as Processor from "./layers/Processor.js"
export * as Replay from "./layers/Replay.js"
export { injectSecrets } from "./layers/Secrets.js"
export * as Switchboard from "./layers/Switchboard.js"
export * as SchedulerLive from "./layers/SchedulerLive.js"
export * as WorktreesLive from "./layers/WorktreesLive.js"
export * as NegotiationLive from "./layers/NegotiationLive.js"
export * as HitlLive from "./layers/HitlLive.js"

// Remote: the typed HTTP client, an agent's live stream, and the Router and Registry of a server
export * as SwitchboardClient from "./client/SwitchboardClient.js"
export * as Consumer from "./client/Consumer.js"
export * as Remote from "./client/Remote.js"
export * as ArcpClient from "./client/ArcpClient.js"
export * as ArcpAgent from "./client/ArcpAgent.js"
export * as Arcp from "./services/Arcp.js"
export * as ArcpWire from "./schema/Arcp.js"
export * as ArcpLive from "./layers/ArcpLive.js"
