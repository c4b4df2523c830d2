/**
 * The `Keys` service over a keys file, or open for local development, and
 * the one way keys are added to the file (`createKey`, behind `switchboard
 * keys create`).
 *
 * The file is read once, when the layer is built: a running server's keys do
 * not change under it, and a file that does not decode stops the server at
 * start rather than locking every caller out later. Adding a key rewrites the
 * whole file through a temporary file and a rename, so a reader (or a crash)
 * sees the old file or the new one, never half of one; an existing file that
 * does not decode is refused and left exactly as it was, since rewriting it
 * would drop what we could not read.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import { bytesToHex } from "@noble/hashes/utils.js"
import { DateTime, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import { problemsOf } from "../internal/bounds.js"
import { inputDecoder, schemaDecoder } from "../internal/decode.js"
import { encodeKey, hashKey, isKeyShaped, keyBytes, keyIdOf } from "../model/Keys.js"
import { Id } from "../schema/Envelope.js"
import { ValidationError, ValidationIssue } from "../schema/Errors.js"
import {
  InvalidKeysFile,
  type KeyEntry,
  KeysFile,
  KeysFileError,
  openKeyId,
  type Principal
} from "../schema/Keys.js"
import { Keys } from "../services/Keys.js"
import { RandomBytes } from "../services/RandomBytes.js"

// ---------------------------------------------------------------------------
// Reading

const decodeKeysFile = schemaDecoder(KeysFile, { onExcessProperty: "error" })

const invalid = (file: string, message: string) =>
  new InvalidKeysFile({ file, issues: [new ValidationIssue({ path: "", message })] })

const shapeHint = "a keys file is a JSON object { \"version\": 1, \"keys\": [...] }"

/** The keys file whose text is `text`; `file` only names it in errors. */
export const parseKeysFile = (file: string, text: string): Either.Either<KeysFile, InvalidKeysFile> => {
  if (text.trim() === "") return Either.left(invalid(file, `the file is empty: ${shapeHint}`))
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return Either.left(invalid(file, `not JSON: ${error instanceof Error ? error.message : String(error)}`))
  }
  // Schema would describe the whole expected type here, a paragraph long.
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left(invalid(file, `not an object: ${shapeHint}`))
  }
  return Either.mapLeft(decodeKeysFile(json), (error) =>
    new InvalidKeysFile({ file, issues: problemsOf(error.issue).map((problem) => new ValidationIssue(problem)) }))
}

const describe = (error: PlatformError): string => {
  if (error._tag === "SystemError") {
    if (error.reason === "NotFound") return "no such file"
    if (error.reason === "PermissionDenied") return "permission denied"
  }
  return error.description ?? error.message
}

const fileError = (file: string, doing: string) => (error: PlatformError) =>
  new KeysFileError({ file, reason: `${doing}: ${describe(error)}` })

const isNotFound = (error: PlatformError) => error._tag === "SystemError" && error.reason === "NotFound"

/** The keys file at `file`, decoded. A missing file is an error: a server must not start open by accident. */
export const readKeysFile = (
  file: string
): Effect.Effect<KeysFile, InvalidKeysFile | KeysFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((error) =>
        isNotFound(error)
          ? new KeysFileError({
            file,
            reason: "no such file (make one with: switchboard keys create --keys FILE --operator)"
          })
          : fileError(file, "cannot read it")(error)
      )
    )
    return yield* parseKeysFile(file, text)
  })

// ---------------------------------------------------------------------------
// The service

const principalOf = (entry: KeyEntry): Principal =>
  entry.role === "agent"
    ? { _tag: "Agent", agent_id: entry.agent_id, key_id: entry.id }
    : { _tag: "Operator", key_id: entry.id }

/** The `Keys` service for the keys of `file`. */
export const make = (file: KeysFile): Keys["Type"] => {
  const byHash = new Map(file.keys.map((entry) => [entry.hash, principalOf(entry)]))
  return {
    open: false,
    // The token carries 256 random bits: its hash leaks nothing through the
    // map's timing, so no constant-time comparison is needed.
    authenticate: (token) =>
      Effect.sync(() =>
        typeof token === "string" && isKeyShaped(token)
          ? Option.fromNullable(byHash.get(hashKey(token)))
          : Option.none()
      )
  }
}

/** Keys from the keys file at `path`, read once; fails when the file is missing or does not decode. */
export const layerFile = (
  path: string
): Layer.Layer<Keys, InvalidKeysFile | KeysFileError, FileSystem.FileSystem> =>
  Layer.effect(Keys, Effect.map(readKeysFile(path), make))

const operator: Option.Option<Principal> = Option.some({ _tag: "Operator", key_id: openKeyId })

/** No keys: every caller, with any token or none, is the operator. For local development only. */
export const layerOpen: Layer.Layer<Keys> = Layer.succeed(Keys, {
  open: true,
  authenticate: () => Effect.succeed(operator)
})

// ---------------------------------------------------------------------------
// Adding a key

export type CreateKeyOptions =
  | { readonly file: string; readonly agent_id: string }
  | { readonly file: string; readonly operator: true }

export interface CreatedKey {
  /** The key itself: shown to its owner once, kept nowhere. */
  readonly key: Redacted.Redacted<string>
  /** What the file now holds for it. */
  readonly entry: KeyEntry
  /** Whether the file did not exist and was made. */
  readonly createdFile: boolean
}

/** A keys file made by `createKey` is readable by its owner only. */
const newFileMode = 0o600

const decodeAgentId = inputDecoder(Id, "agent_id")
const encodeKeysFile = Schema.encodeSync(KeysFile)
const utf8 = new TextEncoder()

/**
 * Writes within this process take turns: two concurrent creates would each
 * read the same file and the second rename would drop the first key. Other
 * processes are not excluded; keys are added by hand, one command at a time.
 */
const writes = Effect.unsafeMakeSemaphore(1)

/** `text` in `file`, whole or not at all: written to a temporary file beside it, flushed, then renamed over it. */
const replaceFile = (fs: FileSystem.FileSystem, file: string, text: string, mode: number) =>
  Effect.gen(function*() {
    const random = yield* RandomBytes
    const temp = `${file}.${bytesToHex(yield* random.next(6))}.tmp`
    yield* Effect.scoped(Effect.gen(function*() {
      const handle = yield* fs.open(temp, { flag: "wx", mode })
      yield* handle.writeAll(utf8.encode(text))
      yield* handle.sync
    })).pipe(
      // `open` applied the umask; the file gets exactly `mode`.
      Effect.zipRight(fs.chmod(temp, mode)),
      Effect.zipRight(fs.rename(temp, file)),
      Effect.tapError(() => Effect.ignore(fs.remove(temp)))
    )
  }).pipe(
    Effect.mapError((error) =>
      isNotFound(error)
        ? new KeysFileError({ file, reason: "cannot write it: no such directory" })
        : fileError(file, "cannot write it")(error)
    )
  )

/**
 * Adds a new key for the agent `agent_id`, or an operator key, to the keys
 * file `file`, making the file (mode 0600) when it does not exist, and
 * answers the key. An existing file keeps its mode; one that does not decode
 * fails with `InvalidKeysFile` and is not touched. A symbolic link is
 * followed: the file it points to is replaced, the link stays.
 */
export const createKey = (
  options: CreateKeyOptions
): Effect.Effect<CreatedKey, ValidationError | InvalidKeysFile | KeysFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const agent_id = "agent_id" in options ? yield* decodeAgentId(options.agent_id) : undefined
    const fs = yield* FileSystem.FileSystem
    const target = yield* fs.realPath(options.file).pipe(
      Effect.catchIf(isNotFound, () => Effect.succeed(options.file)),
      Effect.mapError(fileError(options.file, "cannot read it"))
    )
    const existing = yield* fs.readFileString(target).pipe(
      Effect.map(Option.some),
      Effect.catchIf(isNotFound, () => Effect.succeedNone),
      Effect.mapError(fileError(options.file, "cannot read it"))
    )
    const keys = Option.isSome(existing) ? yield* parseKeysFile(options.file, existing.value) : undefined
    const mode = keys === undefined
      ? newFileMode
      : yield* Effect.map(fs.stat(target), (info) => info.mode & 0o777).pipe(
        Effect.mapError(fileError(options.file, "cannot read it"))
      )

    const random = yield* RandomBytes
    const key = encodeKey(yield* random.next(keyBytes))
    const hash = hashKey(key)
    const id = keyIdOf(hash)
    const created_at = yield* DateTime.now
    const entry: KeyEntry = agent_id === undefined
      ? { id, hash, role: "operator", created_at }
      : { id, hash, role: "agent", agent_id, created_at }
    if (keys?.keys.some((other) => other.id === id || other.hash === hash)) {
      // Two keys from 256 random bits never meet; 48 bits of id, once in 2^24 keys at worst.
      return yield* Effect.dieMessage(`createKey: the new key's id ${id} is already in ${options.file}`)
    }
    const next: KeysFile = { version: 1, keys: [...(keys?.keys ?? []), entry] }
    yield* replaceFile(fs, target, JSON.stringify(encodeKeysFile(next), null, 2) + "\n", mode)
    return { key: Redacted.make(key), entry, createdFile: keys === undefined }
  }).pipe(writes.withPermits(1), Effect.withSpan("Keys.create"))
