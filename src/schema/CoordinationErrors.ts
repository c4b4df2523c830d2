/**
 * The typed errors of coordination (PROTOCOLS.md §1 "Coordination"): the
 * scheduler, worktree bindings, negotiation rooms and human-in-the-loop
 * invocations. Their codes are the gRPC status names SW4RM's coordination
 * services answer with (NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
 * DEADLINE_EXCEEDED), so that an edge maps each one without a table of its
 * own; like every error they carry their retry class.
 */
import { Schema } from "effect"
import { clip, maxMessage } from "../internal/bounds.js"

/** No task, room, invocation or binding with this id. Not retryable: asking again finds nothing again. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  code: Schema.tag("NOT_FOUND"),
  retryable: Schema.tag(false),
  /** What was looked for: `task`, `room`, `hitl`, ... */
  what: Schema.String,
  id: Schema.String
}) {
  override get message(): string {
    return `no ${this.what} ${clip(this.id)}`
  }
}

/**
 * What the request would create exists already: a task id taken, a second
 * vote of one critic (PROTOCOLS.md: "a second is ALREADY_EXISTS").
 */
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", {
  code: Schema.tag("ALREADY_EXISTS"),
  retryable: Schema.tag(false),
  what: Schema.String,
  id: Schema.String
}) {
  override get message(): string {
    return `${this.what} ${clip(this.id)} already exists`
  }
}

/**
 * The request does not fit the state it meets: a switch asked of an agent
 * with no home binding, a vote in a room already decided, a decision on an
 * invocation already answered. Not retryable as it is: the state must change
 * first.
 */
export class FailedPrecondition extends Schema.TaggedError<FailedPrecondition>()("FailedPrecondition", {
  code: Schema.tag("FAILED_PRECONDITION"),
  retryable: Schema.tag(false),
  reason: Schema.String
}) {
  override get message(): string {
    return clip(this.reason, maxMessage)
  }
}

/**
 * A bounded wait ran out before what it waited for happened (a room's
 * decision, a human's answer). Retryable: the thing waited for may still come.
 */
export class DeadlineExceeded extends Schema.TaggedError<DeadlineExceeded>()("DeadlineExceeded", {
  code: Schema.tag("DEADLINE_EXCEEDED"),
  retryable: Schema.tag(true),
  what: Schema.String,
  id: Schema.String,
  waited_ms: Schema.Number
}) {
  override get message(): string {
    return `no ${this.what} for ${clip(this.id)} within ${this.waited_ms} ms`
  }
}
