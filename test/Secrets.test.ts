/**
 * Secret injection: placeholders are found and resolved in string leaves
 * only, the input is never modified, unknown names fail with every name
 * listed, and a resolved value never shows up in an error, a log line, or the
 * printed form of the store's values.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  ConfigProvider,
  Effect,
  Either,
  Exit,
  FastCheck as fc,
  Layer,
  Logger,
  LogLevel,
  Option,
  Redacted,
  Schema
} from "effect"
import { injectSecrets } from "../src/layers/Secrets.js"
import { findPlaceholders, resolvePlaceholders } from "../src/model/Placeholders.js"
import { UnknownPlaceholder } from "../src/schema/Errors.js"
import { SecretStore } from "../src/services/SecretStore.js"

const SECRET = "s3cr3t-VALUE-42"
const OTHER_SECRET = "hunter2-OTHER"

const lookupFrom = (values: Record<string, string>) => (name: string): string | undefined =>
  Object.hasOwn(values, name) ? values[name] : undefined

const deepFreeze = <A>(value: A): A => {
  if (value !== null && typeof value === "object") {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
    Object.freeze(value)
  }
  return value
}

// ---------------------------------------------------------------------------
// findPlaceholders

describe("findPlaceholders", () => {
  it("finds names in nested string leaves, each once, in order of appearance", () => {
    const args = {
      url: "https://api.example.com/?key=${API_KEY}",
      headers: [{ authorization: "Bearer ${TOKEN}" }, "${API_KEY} again"],
      nested: { deep: { deeper: ["x", "${DB_PASSWORD}:${TOKEN}"] } }
    }
    expect(findPlaceholders(args)).toEqual(["API_KEY", "TOKEN", "DB_PASSWORD"])
  })

  it("finds several placeholders in one string with text around them", () => {
    expect(findPlaceholders("a${A}b${B_2}c${C_}d${A}")).toEqual(["A", "B_2", "C_"])
  })

  it("leaves text that is not a placeholder alone", () => {
    expect(findPlaceholders(["$HOME", "${lower}", "${1X}", "${A-B}", "${}", "$ {X}", "${X", "{X}", "${Ab}", "${_X}"]))
      .toEqual([])
  })

  it("never looks at keys, numbers, booleans, null or non-plain objects", () => {
    const args = {
      "${KEY}": 1,
      flag: true,
      none: null,
      when: new Date(0),
      map: new Map([["a", "${IN_MAP}"]]),
      list: [1, 2, { "${ALSO_KEY}": false }]
    }
    expect(findPlaceholders(args)).toEqual([])
  })

  it("accepts a bare string and anything else", () => {
    expect(findPlaceholders("${X}")).toEqual(["X"])
    expect(findPlaceholders(undefined)).toEqual([])
    expect(findPlaceholders(42)).toEqual([])
  })
})

// ---------------------------------------------------------------------------
// resolvePlaceholders

describe("resolvePlaceholders", () => {
  it("returns a new structure and leaves the input untouched", () => {
    const args = deepFreeze({
      query: "select * from t where key = '${API_KEY}'",
      list: ["${API_KEY}", 3, null, { inner: "user=${USER_NAME};pw=${API_KEY}" }],
      untouched: { a: "plain" }
    })
    const before = structuredClone(args)
    const result = Either.getOrThrow(resolvePlaceholders(args, lookupFrom({ API_KEY: SECRET, USER_NAME: "bob" })))
    expect(result.names).toEqual(["API_KEY", "USER_NAME"])
    expect(result.args).toEqual({
      query: `select * from t where key = '${SECRET}'`,
      list: [SECRET, 3, null, { inner: `user=bob;pw=${SECRET}` }],
      untouched: { a: "plain" }
    })
    expect(args).toEqual(before)
    const out = result.args as typeof args
    expect(out).not.toBe(args)
    expect(out.list).not.toBe(args.list)
    expect(out.untouched).not.toBe(args.untouched)
  })

  it("inserts values verbatim: no replacement patterns, no second pass", () => {
    const result = Either.getOrThrow(
      resolvePlaceholders("[${A}] [${B}]", lookupFrom({ A: "$& $1 $$ $`", B: "${A}" }))
    )
    expect(result.args).toBe("[$& $1 $$ $`] [${A}]")
  })

  it("keeps a __proto__ key as a key", () => {
    const args = JSON.parse(`{"__proto__": {"x": "\${A}"}}`) as unknown
    const resolved = Either.getOrThrow(resolvePlaceholders(args, lookupFrom({ A: "v" }))).args as object
    expect(Object.getPrototypeOf(resolved)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(resolved, "__proto__")?.value).toEqual({ x: "v" })
  })

  it("returns args without placeholders as an equal copy", () => {
    const args = { a: ["b", 1, { c: true }] }
    const result = Either.getOrThrow(resolvePlaceholders(args, () => SECRET))
    expect(result).toEqual({ args, names: [] })
    expect(result.args).not.toBe(args)
  })

  it("fails with every unknown name, and no value, when any name is unknown", () => {
    const args = { a: "${KNOWN}", b: ["${MISSING_ONE}", "${KNOWN} ${MISSING_TWO}"], c: "${MISSING_ONE}" }
    const error = Either.getLeft(resolvePlaceholders(args, lookupFrom({ KNOWN: SECRET }))).pipe(Option.getOrThrow)
    expect(error).toBeInstanceOf(UnknownPlaceholder)
    expect(error.names).toEqual(["MISSING_ONE", "MISSING_TWO"])
    expect(error.code).toBe("VALIDATION_ERROR")
    expect(error.retryable).toBe(false)
    expect(error.message).toBe("Unknown placeholders: ${MISSING_ONE}, ${MISSING_TWO}")
    for (const text of [error.message, JSON.stringify(error), String(error), JSON.stringify(Schema.encodeSync(UnknownPlaceholder)(error))]) {
      expect(text).not.toContain(SECRET)
    }
  })

  it("words the message for a single name", () => {
    expect(new UnknownPlaceholder({ names: ["X"] }).message).toBe("Unknown placeholder: ${X}")
  })

  // Arbitrary JSON-like args whose strings and keys often hold placeholders
  const fragment = fc.constantFrom("${API_KEY}", "${TOKEN}", "$HOME", "${lower}", "${1X}", "${", "}", "x", " ", "/")
  const text = fc.oneof(fc.string(), fc.array(fragment, { maxLength: 6 }).map((parts) => parts.join("")))
  const key = fc.oneof(text, fc.constantFrom("__proto__", "constructor", "${KEY}"))
  const { value: jsonLike } = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      text,
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie("value"), { maxLength: 4 }),
      fc.array(fc.tuple(key, tie("value")), { maxLength: 4 }).map((entries) => Object.fromEntries(entries))
    )
  }))

  /** The structure with every string leaf replaced by one marker: keys and other leaves kept. */
  const skeleton = (value: unknown): unknown => {
    if (typeof value === "string") return "<string>"
    if (Array.isArray(value)) return value.map(skeleton)
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.keys(value).map((k) => [k, skeleton((value as Record<string, unknown>)[k])]))
    }
    return value
  }

  it("never changes keys or non-string leaves, nor the input (property)", () => {
    fc.assert(
      fc.property(jsonLike, (args) => {
        const before = structuredClone(args)
        const result = Either.getOrThrow(resolvePlaceholders(args, () => "resolved"))
        expect(skeleton(result.args)).toEqual(skeleton(args))
        expect(args).toEqual(before)
        expect(result.names).toEqual(findPlaceholders(args))
        expect(findPlaceholders(result.args)).toEqual([])
      }),
      { numRuns: 500 }
    )
  })

  it("substitutes exactly the placeholders of each string leaf (property)", () => {
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 10 }), (parts) => {
        const input = parts.join("")
        const values: Record<string, string> = { API_KEY: "<A>", TOKEN: "<T>" }
        const result = Either.getOrThrow(resolvePlaceholders([input], lookupFrom(values)))
        const expected = input.replaceAll("${API_KEY}", "<A>").replaceAll("${TOKEN}", "<T>")
        expect(result.args).toEqual([expected])
      }),
      { numRuns: 500 }
    )
  })
})

// ---------------------------------------------------------------------------
// SecretStore

describe("SecretStore", () => {
  it.effect("layerMemory returns Redacted values that print and serialise as <redacted>", () =>
    Effect.gen(function*() {
      const store = yield* SecretStore
      const value = Option.getOrThrow(yield* store.get("API_KEY"))
      expect(Redacted.value(value)).toBe(SECRET)
      expect(String(value)).not.toContain(SECRET)
      expect(JSON.stringify(value)).not.toContain(SECRET)
      expect(JSON.stringify({ value })).not.toContain(SECRET)
      expect(`${value}`).not.toContain(SECRET)
      const wrapped = Option.getOrThrow(yield* store.get("WRAPPED"))
      expect(Redacted.value(wrapped)).toBe(OTHER_SECRET)
      expect(yield* store.get("MISSING")).toEqual(Option.none())
      expect(yield* store.get("constructor")).toEqual(Option.none())
      expect(yield* store.get("toString")).toEqual(Option.none())
    }).pipe(Effect.provide(SecretStore.layerMemory({ API_KEY: SECRET, WRAPPED: Redacted.make(OTHER_SECRET) }))))

  const envProvider = ConfigProvider.fromMap(
    new Map([
      ["SW_SECRET_API_KEY", SECRET],
      ["SW_SECRET_LIST", "a,b , c"],
      ["PATH", "/usr/bin"]
    ])
  )

  it.effect("layerEnv reads prefixed values through the ConfigProvider, as they are", () =>
    Effect.gen(function*() {
      const store = yield* SecretStore
      const value = Option.getOrThrow(yield* store.get("API_KEY"))
      expect(Redacted.value(value)).toBe(SECRET)
      expect(String(value)).not.toContain(SECRET)
      expect(JSON.stringify(value)).not.toContain(SECRET)
      expect(Redacted.value(Option.getOrThrow(yield* store.get("LIST")))).toBe("a,b , c")
      expect(yield* store.get("PATH")).toEqual(Option.none())
      expect(yield* store.get("MISSING")).toEqual(Option.none())
    }).pipe(
      Effect.provide(SecretStore.layerEnv({ prefix: "SW_SECRET_" }).pipe(Layer.provide(Layer.setConfigProvider(envProvider))))
    ))

  it.effect("layerEnv refuses an empty prefix, which would open every variable of the process", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.provide(SecretStore, SecretStore.layerEnv({ prefix: "" })))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause))).toMatch(/prefix must not be empty/)
    }))

  it.effect("layerEnv keeps the provider it was built with", () =>
    Effect.gen(function*() {
      const store = yield* SecretStore
      // The caller's provider at get time does not matter: the store was built over envProvider
      const value = yield* store.get("API_KEY").pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      expect(Option.map(value, Redacted.value)).toEqual(Option.some(SECRET))
    }).pipe(Effect.provide(SecretStore.layerEnv({ prefix: "SW_SECRET_" })), Effect.withConfigProvider(envProvider)))
})

// ---------------------------------------------------------------------------
// injectSecrets

/** Runs `effect` at debug level with every log line, in two formats, captured. */
const capturingLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const capture = Logger.zip(Logger.logfmtLogger, Logger.jsonLogger).pipe(
      Logger.map(([logfmt, json]) => {
        lines.push(logfmt, json)
      })
    )
    const exit = yield* effect.pipe(
      Effect.exit,
      Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
    return { exit, lines }
  })

describe("injectSecrets", () => {
  const secrets = SecretStore.layerMemory({ API_KEY: SECRET, TOKEN: OTHER_SECRET })

  it.effect("resolves every placeholder from the store, logging names only", () =>
    Effect.gen(function*() {
      const args = { url: "https://x/?k=${API_KEY}", headers: { auth: "Bearer ${TOKEN}" }, n: 1 }
      const { exit, lines } = yield* capturingLogs(injectSecrets(args))
      const result = yield* exit
      expect(result.names).toEqual(["API_KEY", "TOKEN"])
      expect(result.args).toEqual({ url: `https://x/?k=${SECRET}`, headers: { auth: `Bearer ${OTHER_SECRET}` }, n: 1 })
      expect(args.url).toBe("https://x/?k=${API_KEY}")
      expect(lines.length).toBeGreaterThan(0)
      expect(lines.some((line) => line.includes("API_KEY"))).toBe(true)
      for (const line of lines) {
        expect(line).not.toContain(SECRET)
        expect(line).not.toContain(OTHER_SECRET)
      }
    }).pipe(Effect.provide(secrets)))

  it.effect("fails with UnknownPlaceholder naming every unknown name, never a value", () =>
    Effect.gen(function*() {
      const args = ["${API_KEY}", "${NOPE}", { x: "${TOKEN} ${ALSO_NOPE}" }]
      const { exit, lines } = yield* capturingLogs(injectSecrets(args))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause).pipe(Option.getOrThrow) : undefined
      expect(error).toBeInstanceOf(UnknownPlaceholder)
      expect(error?.names).toEqual(["NOPE", "ALSO_NOPE"])
      const texts = [
        ...lines,
        error!.message,
        JSON.stringify(error),
        String(error),
        Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
      ]
      for (const text of texts) {
        expect(text).not.toContain(SECRET)
        expect(text).not.toContain(OTHER_SECRET)
      }
      expect(lines.some((line) => line.includes("NOPE"))).toBe(true)
    }).pipe(Effect.provide(secrets)))

  it.effect("needs no store lookups when there is nothing to resolve", () =>
    Effect.gen(function*() {
      const result = yield* injectSecrets({ a: "$HOME", b: [1, "${lower}"] })
      expect(result).toEqual({ args: { a: "$HOME", b: [1, "${lower}"] }, names: [] })
    }).pipe(Effect.provide(SecretStore.layerMemory({}))))

  it.effect("works over the environment store", () =>
    Effect.gen(function*() {
      const result = yield* injectSecrets({ key: "${API_KEY}" })
      expect(result.args).toEqual({ key: SECRET })
      const error = yield* Effect.flip(injectSecrets({ key: "${PATH}" }))
      expect(error.names).toEqual(["PATH"])
    }).pipe(
      Effect.provide(SecretStore.layerEnv({ prefix: "SW_SECRET_" })),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SW_SECRET_API_KEY", SECRET], ["PATH", "/bin"]])))
    ))
})
