/**
 * The audit trail's hash chain (PROTOCOLS.md §2, "Audit").
 *
 * `record.hash = sha256_hex(prev_hash + canonicalJson(record without hash and prev_hash))`,
 * where `prev_hash` is the previous record's `hash` and `GENESIS_HASH` for the
 * first. Editing, inserting, removing or reordering any record breaks the
 * chain at that record or right after it, which `verifyChain` reports.
 *
 * What a chain alone cannot show: that records were cut off at the end, or
 * that a tail was rewritten with every hash recomputed. A verifier that must
 * rule that out holds the trail to an `AuditCheckpoint` (a count of records
 * and the hash of the last) kept elsewhere, which `verifyChain` also checks.
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex } from "@noble/hashes/utils.js"
import type { AuditCheckpoint, AuditRecord, UnsealedAuditRecord } from "../schema/Audit.js"

/** The `prev_hash` of the first record of a trail. */
export const GENESIS_HASH = "0".repeat(64)

/**
 * JSON with object keys sorted (by UTF-16 code units, as `Array.prototype.sort`
 * and RFC 8785 do) at every depth and no whitespace. Otherwise as
 * `JSON.stringify`: object fields that are `undefined` (or functions, symbols)
 * are omitted, such array items become `null`, and `toJSON` is honoured.
 * Unlike `JSON.stringify`, values that JSON cannot represent faithfully throw
 * a `TypeError` instead of turning into `null` or `{}` silently: non-finite
 * numbers, bigints, cycles, and `undefined` at the top.
 */
export const canonicalJson = (value: unknown): string => {
  const text = writeCanonical(value, [], undefined)
  if (text === undefined) throw new TypeError(`canonicalJson: a ${typeof value} has no JSON form`)
  return text
}

/**
 * `value` in canonical JSON, or `undefined` when it has none (as
 * `JSON.stringify` omits it). `ancestors` are the objects being written
 * around it, to refuse cycles: a short array, as records are shallow.
 * `skip` names top-level fields left out (the hash fields of a record).
 */
const writeCanonical = (
  value: unknown,
  ancestors: Array<object>,
  skip: ReadonlySet<string> | undefined
): string | undefined => {
  if (value !== null && typeof value === "object" && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    value = (value as { toJSON: () => unknown }).toJSON()
  }
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value)
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} has no JSON form`)
      return JSON.stringify(value)
    case "bigint":
      throw new TypeError("canonicalJson: a bigint has no JSON form")
    case "undefined":
    case "function":
    case "symbol":
      return undefined
  }
  if (value === null) return "null"
  const object = value as object
  if (ancestors.includes(object)) throw new TypeError("canonicalJson: the value is cyclic")
  ancestors.push(object)
  let text: string
  if (Array.isArray(object)) {
    text = "["
    for (let i = 0; i < object.length; i++) {
      text += (i === 0 ? "" : ",") + (writeCanonical(object[i], ancestors, undefined) ?? "null")
    }
    text += "]"
  } else {
    const record = object as Record<string, unknown>
    const keys = Object.keys(record).sort()
    text = "{"
    let first = true
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (skip?.has(key)) continue
      const field = writeCanonical(record[key], ancestors, undefined)
      if (field === undefined) continue
      text += (first ? "" : ",") + quotedKey(key) + ":" + field
      first = false
    }
    text += "}"
  }
  ancestors.pop()
  return text
}

/** Keys in JSON form, remembered: records repeat the same few keys endlessly. */
const quotedKeys = new Map<string, string>()
const quotedKey = (key: string) => {
  let quoted = quotedKeys.get(key)
  if (quoted === undefined) {
    quoted = JSON.stringify(key)
    // Bounded, as keys may come from data (the args of a call stack).
    if (quotedKeys.size < 4_096) quotedKeys.set(key, quoted)
  }
  return quoted
}

/** The fields a record's hash does not cover. */
const sealFields: ReadonlySet<string> = new Set(["hash", "prev_hash"])

// The hash is noble's portable SHA-256 rather than `node:crypto`, so that the
// main entry runs wherever Effect does. It hashes in JavaScript, several times
// slower than Node's native one, and every gateway decision seals a record: the
// UTF-8 bytes are written into one reused buffer rather than handed over as a
// string, which noble would encode with a new `TextEncoder` and copy each time.
const encoder = new TextEncoder()
/** Large enough for a record with a call stack of a few dozen nodes. */
const scratch = new Uint8Array(16_384)

/** `text` in UTF-8: in `scratch` (valid until the next call) when it surely fits. */
const utf8 = (text: string): Uint8Array => {
  // A UTF-16 code unit takes at most 3 bytes in UTF-8 (a surrogate pair, 4 for 2).
  if (text.length * 3 > scratch.length) return encoder.encode(text)
  return scratch.subarray(0, encoder.encodeInto(text, scratch).written)
}

/** SHA-256 of `text`'s UTF-8 bytes, in lowercase hex. */
const sha256Hex = (text: string): string => bytesToHex(sha256(utf8(text)))

/**
 * The hash of a record whose predecessor's hash is `prevHash`: SHA-256, in
 * lowercase hex, over `prevHash` followed by the record's canonical JSON.
 * `hash` and `prev_hash` fields on `record`, if any, are not part of it.
 */
export const chainHash = (prevHash: string, record: UnsealedAuditRecord): string =>
  sha256Hex(prevHash + writeCanonical(record, [], sealFields))

/** `record` chained after the record whose hash is `prevHash`. */
export const sealRecord = (prevHash: string, record: UnsealedAuditRecord): AuditRecord => ({
  ...record,
  prev_hash: prevHash,
  hash: chainHash(prevHash, record)
})

export type ChainVerification =
  | { readonly ok: true; readonly count: number }
  | {
    readonly ok: false
    /** The offset given with the record reported; undefined when there is none (no record at all). */
    readonly offset: number | undefined
    readonly reason: string
  }

/** What `verifyChain` holds the records to, besides their own links: one or the other. */
export type ChainOptions =
  | {
    /** The hash the first record chains to, when verifying a segment that starts mid-trail. */
    readonly prevHash?: string | undefined
    readonly checkpoint?: undefined
  }
  | {
    readonly prevHash?: undefined
    /** A head of this trail taken earlier: the records up to it must be the ones it committed to. */
    readonly checkpoint?: AuditCheckpoint | undefined
  }

const failure = (offset: number | undefined, reason: string): ChainVerification => ({ ok: false, offset, reason })

/** Why `checkpoint` cannot be verified against, if it cannot: it would not fail closed. */
const unusable = (checkpoint: AuditCheckpoint): string | undefined => {
  if (!Number.isSafeInteger(checkpoint.records) || checkpoint.records < 0 || typeof checkpoint.head !== "string") {
    return `the checkpoint is not a count of records and a hash: ${JSON.stringify(checkpoint)}`
  }
  if (checkpoint.records === 0 && checkpoint.head !== GENESIS_HASH) {
    return `the checkpoint counts no records, so its head must be the genesis hash, not ${checkpoint.head}`
  }
  return undefined
}

/**
 * Recomputes every hash and checks every link, in order, and reports the
 * first record that is wrong, with the `offset` given with it:
 *
 * - a record whose `hash` does not match its content (or that cannot be
 *   hashed): it was changed;
 * - a record whose own hash is right, but that the next record does not chain
 *   to: it was changed and its hash recomputed, or records after it were
 *   removed, or, when the next record chains to the same predecessor, one of
 *   the two was inserted. The chain alone cannot tell more; it does tell that
 *   the break is right after this record. A record that was re-sealed on another
 *   `prev_hash` looks the same, and is reported at its predecessor;
 * - a first record whose `prev_hash` is not `GENESIS_HASH` (or
 *   `options.prevHash`, when verifying a segment that starts mid-trail).
 *
 * An edit of the last record with its hash recomputed, or a cut or rewritten
 * tail, leaves a chain that is whole: only a head kept elsewhere shows it.
 * With `options.checkpoint`, the record that ends the checkpointed part must
 * have the checkpoint's `head` as its hash (else it is reported: the trail up
 * to it was rewritten), and a trail shorter than the checkpoint is reported at
 * its last record (records after it were removed). Records after the
 * checkpoint are verified as any others. Reads one record past the one it
 * reports, no further. Never throws.
 */
export const verifyChain = (
  records: Iterable<{ readonly offset: number; readonly record: AuditRecord }>,
  options?: ChainOptions
): ChainVerification => {
  const checkpoint = options?.checkpoint
  const refused = checkpoint === undefined ? undefined : unusable(checkpoint)
  if (refused !== undefined) return failure(undefined, refused)
  const start = options?.prevHash ?? GENESIS_HASH
  let head = start
  /** The record before, whose hash is `head`, and the hash before that (to spot an insertion). */
  let previous: { readonly offset: number; readonly prevHash: string } | undefined
  let count = 0
  for (const { offset, record } of records) {
    let actual: string
    try {
      actual = chainHash(record.prev_hash, record)
    } catch (error) {
      return failure(offset, `the record cannot be hashed: ${error instanceof Error ? error.message : String(error)}`)
    }
    if (record.hash !== actual) {
      return failure(offset, `hash ${String(record.hash)} does not match the record's content (expected ${actual})`)
    }
    if (record.prev_hash !== head) {
      if (previous === undefined) {
        return failure(
          offset,
          options?.prevHash === undefined
            ? `prev_hash ${String(record.prev_hash)} of the first record is not the genesis hash`
            : `prev_hash ${String(record.prev_hash)} does not link to the given previous hash ${start}`
        )
      }
      // This record is sealed as it was written, on a predecessor that is no longer there as it was.
      return failure(
        previous.offset,
        record.prev_hash === previous.prevHash
          ? `the next record (offset ${offset}) chains to the same predecessor as this one: one of them was inserted`
          : `hash ${head} is not the one the next record (offset ${offset}) chains to, ${record.prev_hash}: ` +
            "this record was changed and its hash recomputed, or records after it were removed"
      )
    }
    previous = { offset, prevHash: head }
    head = record.hash
    count++
    if (count === checkpoint?.records && head !== checkpoint.head) {
      return failure(
        offset,
        `hash ${head} of record ${count} is not the checkpoint's head ${checkpoint.head}: ` +
          "the trail up to this record was rewritten since the checkpoint, its hashes recomputed"
      )
    }
  }
  if (checkpoint !== undefined && count < checkpoint.records) {
    return failure(
      previous?.offset,
      `the trail ends ${previous === undefined ? "before any record" : `here, after ${count} records`}, ` +
        `but the checkpoint counts ${checkpoint.records}: records were removed from its end`
    )
  }
  return { ok: true, count }
}
