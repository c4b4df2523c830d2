/**
 * `${NAME}` placeholders in a tool call's args (PROTOCOLS.md §2, "Secret
 * injection").
 *
 * Rules:
 * - NAME matches `[A-Z][A-Z0-9_]*`; anything else (`$HOME`, `${lower}`,
 *   `${1X}`, `${A-B}`) is ordinary text and stays as it is. There is no escape
 *   syntax.
 * - Only string leaves are looked at. Object keys, numbers, booleans, null
 *   and any non-plain object (a Date, a class instance) are never touched.
 * - A string may hold several placeholders with text around them.
 * - Substitution is one pass: a substituted value is never scanned again, so
 *   a secret that itself contains `${OTHER}` is inserted literally.
 *
 * Args are JSON-like: plain objects and arrays nested without cycles.
 */
import { Either } from "effect"
import { UnknownPlaceholder } from "../schema/Errors.js"

const placeholderPattern = /\$\{([A-Z][A-Z0-9_]*)\}/g

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== "object") return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Visits every string leaf, depth first, keys in their own order. */
const visitStrings = (value: unknown, visit: (text: string) => void): void => {
  if (typeof value === "string") {
    visit(value)
  } else if (Array.isArray(value)) {
    for (const item of value) visitStrings(item, visit)
  } else if (isPlainObject(value)) {
    for (const key of Object.keys(value)) visitStrings(value[key], visit)
  }
}

/** Rebuilds `value` with every string leaf mapped; containers are always fresh copies. */
const mapStrings = (value: unknown, f: (text: string) => string): unknown => {
  if (typeof value === "string") return f(value)
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, f))
  if (isPlainObject(value)) {
    // fromEntries defines own properties, so a `__proto__` key stays a key
    return Object.fromEntries(Object.keys(value).map((key) => [key, mapStrings(value[key], f)]))
  }
  return value
}

/** The names of the placeholders in `args`, each once, in order of appearance. */
export const findPlaceholders = (args: unknown): ReadonlyArray<string> => {
  const names = new Set<string>()
  visitStrings(args, (text) => {
    for (const match of text.matchAll(placeholderPattern)) names.add(match[1])
  })
  return Array.from(names)
}

/**
 * A copy of `args` with every placeholder replaced by `lookup(name)`; `args`
 * itself is left untouched. `names` lists the substituted names (each once, in
 * order of appearance). If any name is unknown (`lookup` gives `undefined`),
 * nothing is substituted and the error lists every unknown name.
 */
export const resolvePlaceholders = (
  args: unknown,
  lookup: (name: string) => string | undefined
): Either.Either<{ readonly args: unknown; readonly names: ReadonlyArray<string> }, UnknownPlaceholder> => {
  const names = findPlaceholders(args)
  const values = new Map<string, string>()
  const unknown: Array<string> = []
  for (const name of names) {
    const value = lookup(name)
    if (value === undefined) unknown.push(name)
    else values.set(name, value)
  }
  if (unknown.length > 0) return Either.left(new UnknownPlaceholder({ names: unknown }))
  if (names.length === 0) return Either.right({ args: mapStrings(args, (text) => text), names })
  // A replacer function, not a string: a value holding `$&` or `$1` must go in verbatim
  const resolved = mapStrings(args, (text) => text.replace(placeholderPattern, (_, name: string) => values.get(name)!))
  return Either.right({ args: resolved, names })
}
