/**
 * What an API key is, apart from where it is kept: its shape, the hash under
 * which it is stored, and the short public id that names it in logs and
 * audit records.
 *
 * A key is `sb_` followed by 32 random bytes in unpadded base64url (43
 * characters). The prefix lets secret scanners and people recognise a leaked
 * key; 256 bits make guessing hopeless, which is also why a plain SHA-256
 * (no salt, no slow hash) is the right way to store it: there is no small
 * space of likely keys to search, and a lookup by hash is one map access.
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex } from "@noble/hashes/utils.js"
import { Encoding } from "effect"

export const keyPrefix = "sb_"
/** Random bytes in a key. */
export const keyBytes = 32
/** Length of a whole key: the prefix and 43 base64url characters. */
export const keyLength = keyPrefix.length + Math.ceil((keyBytes * 4) / 3)
/** Hex digits of the hash that make a key's public id. */
export const keyIdLength = 12

const keyShape = new RegExp(`^${keyPrefix}[A-Za-z0-9_-]{${keyLength - keyPrefix.length}}$`)

/** The key made of `bytes`, which must be `keyBytes` fresh random bytes. */
export const encodeKey = (bytes: Uint8Array): string => keyPrefix + Encoding.encodeBase64Url(bytes)

/**
 * Whether `token` can be a key at all. Checked before hashing, so a huge or
 * malformed token costs nothing to refuse; the length test comes first so the
 * pattern never runs over a long input.
 */
export const isKeyShaped = (token: string): boolean => token.length === keyLength && keyShape.test(token)

const encoder = new TextEncoder()

/** How a key is stored: `sha256:` and the SHA-256 of the whole key's UTF-8 bytes, in lowercase hex. */
export const hashKey = (key: string): string => `sha256:${bytesToHex(sha256(encoder.encode(key)))}`

/** The public id of the key stored as `hash`: the first hex digits of the hash, which reveal nothing usable. */
export const keyIdOf = (hash: string): string => hash.slice("sha256:".length, "sha256:".length + keyIdLength)
