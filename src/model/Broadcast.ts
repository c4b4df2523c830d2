/**
 * An envelope sent over SW4RM's gRPC surface with no recipient (PROTOCOLS.md
 * §1, "SW4RM over gRPC"): SW4RM's reference profile gives a copy to every
 * other registered, available agent, each copy its own message with its own
 * lifecycle, dead letters, status and ACKs.
 *
 * The runtime knows a message by its id, so each copy needs one of its own;
 * yet its recipient must see, and acknowledge, the id its producer gave it
 * (SW4RM's clients wait for an ACK naming that id). A copy's id is the
 * producer's, a `#`, and 16 hex digits of a hash of that id and the
 * recipient: the same for every try of a send (so a retry of a broadcast is
 * deduplicated copy by copy), different for each recipient, and recognised
 * again from the id and the recipient alone, without a table. The same goes
 * for an idempotency token, which each copy must also have to itself (two
 * copies of one token would be one logical message). What an edge hands a
 * recipient is `restore`d: the ids as the producer wrote them. An ACK that
 * names the producer's id is taken for the acknowledging agent's own copy
 * (`Messages.ts`).
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex } from "@noble/hashes/utils.js"
import { type Envelope, maxIdLength } from "../schema/Envelope.js"
import { ValidationError } from "../schema/Errors.js"
import type { AgentInfo } from "./Agents.js"

const tagLength = 16
const encoder = new TextEncoder()

/** The longest id (or token) a broadcast may carry: its copies' ids add a `#` and the tag, within `maxIdLength`. */
export const maxBroadcastIdLength = maxIdLength - 1 - tagLength

const tagOf = (id: string, recipient: string) =>
  bytesToHex(sha256(encoder.encode(`${id}\u0000${recipient}`))).slice(0, tagLength)

/** The id of the copy of `id` made for `recipient`. */
export const copyId = (id: string, recipient: string) => `${id}#${tagOf(id, recipient)}`

const hexDigit = /^[0-9a-f]$/

/** The producer's id of a copy made for `recipient`; undefined when `id` is no copy made for it. */
export const originalId = (id: string, recipient: string): string | undefined => {
  const at = id.length - tagLength - 1
  // Most ids are not copies: told apart without hashing anything.
  if (at < 1 || id[at] !== "#" || !hexDigit.test(id[id.length - 1])) return undefined
  const original = id.slice(0, at)
  return id.slice(at + 1) === tagOf(original, recipient) ? original : undefined
}

/** Who gets a copy: every registered, available agent but the producer, in the registry's order. */
export const recipientsOf = (agents: ReadonlyArray<AgentInfo>, producer: string): ReadonlyArray<string> =>
  agents.flatMap((agent) => agent.available && agent.descriptor.agent_id !== producer ? [agent.descriptor.agent_id] : [])

/** Whether the envelope can be broadcast: its id and token leave room for the copies' tags. */
export const checkBroadcast = (envelope: Envelope): ValidationError | undefined => {
  const tooLong = (value: string | undefined) => value !== undefined && value.length > maxBroadcastIdLength
  const field = tooLong(envelope.message_id) ? "message_id" : tooLong(envelope.idempotency_token) ? "idempotency_token" : undefined
  return field === undefined ? undefined : ValidationError.single(
    "envelope",
    field,
    `must be at most ${maxBroadcastIdLength} characters for an envelope sent to every agent (each copy adds ${tagLength + 1})`
  )
}

/** The copy of the envelope for `recipient`: its own id and token, everything else as sent. */
export const copyFor = (envelope: Envelope, recipient: string): Envelope => ({
  ...envelope,
  message_id: copyId(envelope.message_id, recipient),
  idempotency_token: envelope.idempotency_token === undefined ? undefined : copyId(envelope.idempotency_token, recipient)
})

/** The envelope as its producer sent it, for `recipient`: unchanged unless it is a copy made for that recipient. */
export const restore = (envelope: Envelope, recipient: string): Envelope => {
  const message_id = originalId(envelope.message_id, recipient)
  if (message_id === undefined) return envelope
  const token = envelope.idempotency_token
  return { ...envelope, message_id, idempotency_token: token === undefined ? undefined : originalId(token, recipient) ?? token }
}
