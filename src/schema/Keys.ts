/**
 * The API keys file, who a key makes its caller (a `Principal`), and the
 * errors of reading and writing the file.
 *
 * The file holds hashes only, so reading it (a backup, a support bundle)
 * gives nobody a key:
 *
 * ```json
 * { "version": 1,
 *   "keys": [
 *     { "id": "3f9a0c1b2d4e", "hash": "sha256:3f9a…", "role": "agent",
 *       "agent_id": "worker-1", "created_at": "2025-01-01T12:00:00.000Z" },
 *     { "id": "77c0e41a9b02", "hash": "sha256:77c0…", "role": "operator",
 *       "created_at": "2025-01-01T12:00:00.000Z" } ] }
 * ```
 *
 * It is decoded strictly: an unknown field is refused rather than ignored,
 * since in a file that decides who may do what a misspelt field silently
 * dropped is a hole. Ids and hashes are unique, so a log line's key id names
 * one key.
 */
import { Schema } from "effect"
import { clip, maxMessage } from "../internal/bounds.js"
import { Id, Timestamp } from "./Envelope.js"
import { ValidationIssue } from "./Errors.js"

/** A key's public id: short, printable, safe in a log line. */
export const KeyId = Schema.String.pipe(
  Schema.pattern(/^[0-9A-Za-z_.-]{1,64}$/, {
    message: () => "must be 1 to 64 letters, digits, '_', '.' or '-'"
  })
)

/** How a key is stored: never the key itself. */
export const KeyHash = Schema.String.pipe(
  Schema.pattern(/^sha256:[0-9a-f]{64}$/, {
    message: () => "must be \"sha256:\" followed by 64 lowercase hex digits"
  })
)

/** A key that acts as one agent: it may send, receive and acknowledge as `agent_id`, nothing else. */
export const AgentKey = Schema.Struct({
  id: KeyId,
  hash: KeyHash,
  role: Schema.Literal("agent"),
  agent_id: Id,
  created_at: Timestamp
})
export type AgentKey = typeof AgentKey.Type

/** A key that administers the whole runtime. */
export const OperatorKey = Schema.Struct({
  id: KeyId,
  hash: KeyHash,
  role: Schema.Literal("operator"),
  created_at: Timestamp
})
export type OperatorKey = typeof OperatorKey.Type

export const KeyEntry = Schema.Union(AgentKey, OperatorKey)
export type KeyEntry = typeof KeyEntry.Type

/** The first entry that has each value of `field`, to report a later repeat against it. */
const repeats = (keys: ReadonlyArray<KeyEntry>, field: "id" | "hash") => {
  const first = new Map<string, number>()
  const issues: Array<Schema.FilterIssue> = []
  keys.forEach((key, index) => {
    const earlier = first.get(key[field])
    if (earlier === undefined) first.set(key[field], index)
    else issues.push({ path: ["keys", index, field], message: `repeats the ${field} of keys.${earlier}` })
  })
  return issues
}

export const KeysFile = Schema.Struct({
  version: Schema.Literal(1),
  keys: Schema.Array(KeyEntry)
}).pipe(
  Schema.filter((file) => {
    const issues = [...repeats(file.keys, "id"), ...repeats(file.keys, "hash")]
    return issues.length === 0 ? undefined : issues
  })
)
export type KeysFile = typeof KeysFile.Type
export type KeysFileJson = typeof KeysFile.Encoded

/** Who a request comes from, once its key is checked. */
export const AgentPrincipal = Schema.TaggedStruct("Agent", { agent_id: Id, key_id: Schema.String })
export const OperatorPrincipal = Schema.TaggedStruct("Operator", { key_id: Schema.String })
export const Principal = Schema.Union(AgentPrincipal, OperatorPrincipal)
export type Principal = typeof Principal.Type

/**
 * The `key_id` of the operator every caller is when no keys file is used
 * (local development). Not a valid `KeyId`, so it never names a real key.
 */
export const openKeyId = "(open)"

// ---------------------------------------------------------------------------
// Errors

/** The keys file is not one: bad JSON, a missing or wrong field, a repeated id. Each issue names its field. */
export class InvalidKeysFile extends Schema.TaggedError<InvalidKeysFile>()("InvalidKeysFile", {
  code: Schema.tag("VALIDATION_ERROR"),
  retryable: Schema.tag(false),
  file: Schema.String,
  issues: Schema.Array(ValidationIssue)
}) {
  override get message(): string {
    return `invalid keys file ${clip(this.file)}: ` +
      clip(this.issues.map((issue) => issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`).join("; "), maxMessage)
  }
}

/**
 * The keys file cannot be read or written: missing, a directory, not
 * permitted, a full disk. Not retryable: someone has to fix the file system.
 */
export class KeysFileError extends Schema.TaggedError<KeysFileError>()("KeysFileError", {
  code: Schema.tag("INTERNAL_ERROR"),
  retryable: Schema.tag(false),
  file: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `keys file ${clip(this.file)}: ${clip(this.reason, maxMessage)}`
  }
}
