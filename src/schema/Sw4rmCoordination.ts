/**
 * SW4RM's coordination messages over gRPC (`proto/scheduler.proto`,
 * `worktree.proto`, `negotiation_room.proto`, `hitl.proto`) as the edge
 * receives them from the protobuf decoder, with the decisions of
 * `Sw4rm.ts` (enums by number, their 0 refused where a value is required,
 * an empty string an absent optional field, an unset message `null`).
 *
 * These check the shape; the services then decode what they are given with
 * their own request Schemas (ranges, id bounds), as they do for every edge.
 * What SW4RM's messages carry as bytes with a content type (a task's
 * params, an artifact, a HITL context) is JSON to the runtime: bytes that
 * parse as JSON are that value; other bytes are kept as `{ content_type,
 * base64 }`; bytes that claim a JSON content type and are not JSON are
 * refused.
 */
import { Either, Schema } from "effect"
import { Header, Id, maxListLength, Note, Uint32, Uint64 } from "./Envelope.js"
import { ValidationError } from "./Errors.js"
import { HitlReason, HitlReasonNumber } from "./Hitl.js"
import type { Json } from "./Json.js"
import { ArtifactType, ArtifactTypeNumber } from "./Negotiation.js"
import { EmptyAsAbsent, enumFromNumber, Present, ProtoTimestamp } from "./Sw4rm.js"

const Bytes = Schema.Uint8ArrayFromSelf
const Texts = Schema.Array(Note).pipe(Schema.maxItems(maxListLength))
const Ids = Schema.Array(Header).pipe(Schema.maxItems(maxListLength))
/** A timestamp a client sets and the runtime does not keep: its own clock counts. */
const Ignored = Schema.NullOr(ProtoTimestamp)

// ---------------------------------------------------------------------------
// Bytes with a content type, as JSON

const utf8 = new TextDecoder("utf-8", { fatal: true })

const isJsonType = (contentType: string) => /^application\/([\w.+-]*\+)?json\b/i.test(contentType.trim())

/**
 * Bytes and their content type as the runtime's JSON: none when empty; the
 * value when they parse as JSON; `{ content_type, base64 }` otherwise, or a
 * ValidationError naming `field` when the content type says JSON.
 */
export const jsonOfBytes = (
  bytes: Uint8Array,
  contentType: string,
  field: string
): Either.Either<Json | undefined, ValidationError> => {
  if (bytes.length === 0) return Either.right(undefined)
  try {
    return Either.right(JSON.parse(utf8.decode(bytes)) as Json)
  } catch {
    if (isJsonType(contentType)) {
      return Either.left(ValidationError.single("request", field, `is not JSON, as its content type ${contentType} says`))
    }
    return Either.right({ content_type: contentType, base64: Buffer.from(bytes).toString("base64") })
  }
}

// ---------------------------------------------------------------------------
// SchedulerService

export const SubmitTaskRequest = Schema.Struct({
  /** An agent id, or `capability:NAME`. */
  agent_id: Id,
  task_id: EmptyAsAbsent,
  priority: Schema.Int,
  params: Bytes,
  content_type: Header,
  scope: EmptyAsAbsent
})

export const PreemptRequest = Schema.Struct({ agent_id: Id, task_id: Id, reason: EmptyAsAbsent })

const ProtoDuration = Schema.Struct({ seconds: Schema.Number, nanos: Schema.Number })

export const ShutdownAgentRequest = Schema.Struct({
  agent_id: Id,
  /** Unset: the runtime's default grace. */
  grace_period: Schema.NullOr(ProtoDuration)
})

/** A `google.protobuf.Duration` in whole milliseconds; the service bounds it. */
export const millisOf = (duration: typeof ProtoDuration.Type) => duration.seconds * 1000 + Math.floor(duration.nanos / 1_000_000)

export const AgentRequest = Schema.Struct({ agent_id: Id })

export const PurgeActivityRequest = Schema.Struct({ agent_id: Id, task_ids: Ids })

// ---------------------------------------------------------------------------
// WorktreeService

export const BindRequest = Schema.Struct({ agent_id: Id, repo_id: Id, worktree_id: Id })

export const SwitchRequest = Schema.Struct({ agent_id: Id, target_worktree_id: Id, requires_hitl: Schema.Boolean })

export const SwitchApprove = Schema.Struct({
  agent_id: Id,
  target_worktree_id: EmptyAsAbsent,
  /** 0: the runtime's default. */
  ttl_ms: Uint64
})

export const SwitchReject = Schema.Struct({ agent_id: Id, reason: EmptyAsAbsent })

// ---------------------------------------------------------------------------
// NegotiationRoomService

const ProtoProposal = Schema.Struct({
  artifact_type: enumFromNumber(ArtifactType, ArtifactTypeNumber, "ARTIFACT_TYPE"),
  artifact_id: EmptyAsAbsent,
  producer_id: Id,
  artifact: Bytes,
  artifact_content_type: EmptyAsAbsent,
  requested_critics: Ids,
  negotiation_room_id: EmptyAsAbsent,
  created_at: Ignored
})

export const SubmitProposalRequest = Schema.Struct({ proposal: Present(ProtoProposal) })

const ProtoVote = Schema.Struct({
  artifact_id: EmptyAsAbsent,
  critic_id: Id,
  score: Schema.Number,
  confidence: Schema.Number,
  passed: Schema.Boolean,
  strengths: Texts,
  weaknesses: Texts,
  recommendations: Texts,
  negotiation_room_id: EmptyAsAbsent,
  voted_at: Ignored
})

export const SubmitVoteRequest = Schema.Struct({ vote: Present(ProtoVote) })

/** A room, by `negotiation_room_id`, or by `artifact_id` when that is empty. */
export const RoomRequest = Schema.Struct({ artifact_id: EmptyAsAbsent, negotiation_room_id: EmptyAsAbsent })

export const WaitForDecisionRequest = Schema.Struct({
  artifact_id: EmptyAsAbsent,
  negotiation_room_id: EmptyAsAbsent,
  /** 0: the default wait. */
  timeout_seconds: Uint32
})

/** The room a request names: its room id, else its artifact id (a proposal without a room id opens the room so named). */
export const roomIdOf = (request: { readonly artifact_id?: string | undefined; readonly negotiation_room_id?: string | undefined }) => {
  const id = request.negotiation_room_id ?? request.artifact_id
  return id === undefined
    ? Either.left(ValidationError.single("request", "negotiation_room_id", "is required (or artifact_id)"))
    : Either.right(id)
}

// ---------------------------------------------------------------------------
// HitlService

export const HitlInvocation = Schema.Struct({
  reason_type: enumFromNumber(HitlReason, HitlReasonNumber, "HITL_REASON"),
  context: Bytes,
  proposed_actions: Texts,
  priority: Schema.Int
})

/** Epoch milliseconds as a `google.protobuf.Timestamp`. */
export const protoTime = (millis: number) => {
  const seconds = Math.floor(millis / 1000)
  return { seconds, nanos: (millis - seconds * 1000) * 1_000_000 }
}
