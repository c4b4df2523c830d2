/**
 * How deeply input from outside may nest, and how much of it an error
 * message may show.
 *
 * Schema's parser, its formatters and `JSON.stringify` recurse once per level
 * of nesting: a few kilobytes of `[[[[…]]]]` exhaust the stack and throw a
 * RangeError. Every decoder of outside input first refuses a value nested
 * more than `maxDepth` arrays and objects deep (`depthError`), with a walk
 * that never recurses deeper than that bound; below it, everything
 * downstream is safe.
 *
 * An error about bad input goes back to the caller, into logs and onto the
 * wire; its size must not be the input's. Schema's own messages print the
 * whole value they refuse ("Expected string, actual <the value>"), a path
 * names keys as long as the input made them, and a request with a million
 * excess keys makes a million issues. Every message built from input goes
 * through here: values are shown up to `maxShownValue` characters, texts (an
 * id, a key) up to `maxShownText`, a message up to `maxMessage`, and at most
 * `maxProblems` problems are listed, then how many more there were.
 *
 * For a value that fits, the text is the one Schema prints (`preview` writes
 * what `formatUnknown` writes), so a small input's error reads exactly as
 * Schema's own.
 */
import { Option, ParseResult, Predicate, SchemaAST } from "effect"

/**
 * The most levels of arrays and objects an input may nest, the input itself
 * being the first: `{ "args": [1] }` is 2 deep. Far beyond any request,
 * record or policy written by hand, and far below what overflows the stack.
 */
export const maxDepth = 64
/** Keys of a path shown in a "nested too deeply" problem: where the nesting starts. */
const maxPathShown = 8

/** A value shown in a message: at most this many characters, then `…`. */
export const maxShownValue = 80
/** An id, a name or a key shown in a message (as long as the longest id taken). */
export const maxShownText = 256
/** One problem's message, or one path. */
export const maxMessage = 1024
/** Problems listed in one error; the rest are counted. */
export const maxProblems = 50

/** `text`, cut to `limit` characters and marked `…` when it is longer (never in the middle of a surrogate pair). */
export const clip = (text: string, limit: number = maxShownText): string => {
  if (text.length <= limit) return text
  const end = /[\uD800-\uDBFF]/.test(text[limit - 1]) ? limit - 1 : limit
  return `${text.slice(0, end)}…`
}

const circular = "[Circular]"

const safeToString = (value: { toString(): unknown }): string => {
  try {
    const text = value.toString()
    return typeof text === "string" ? text : String(text)
  } catch {
    return "[toString threw]"
  }
}

const formatDate = (date: Date): string => {
  try {
    return date.toISOString()
  } catch {
    return "Invalid Date"
  }
}

/**
 * `value` as Schema's messages print it (Effect's `formatUnknown`), but never
 * more than `limit` characters: it stops writing once past it, so a huge or
 * deeply nested value costs no more than a small one. May throw where the
 * value does (a getter); `issueText` catches that.
 */
export const preview = (value: unknown, limit: number = maxShownValue): string => {
  let out = ""
  const seen = new WeakSet<object>()
  /** Writes `text`; false once the output is past the limit, when writing stops. */
  const write = (text: string): boolean => {
    const room = limit + 1 - out.length
    out += text.length > room ? text.slice(0, room) : text
    return out.length <= limit
  }
  const quoted = (text: string) => JSON.stringify(text.length > limit ? text.slice(0, limit) : text)
  const go = (v: unknown): boolean => {
    if (Array.isArray(v)) {
      if (seen.has(v)) return write(circular)
      seen.add(v)
      if (!write("[")) return false
      for (let i = 0; i < v.length; i++) {
        if ((i > 0 && !write(",")) || !go(v[i])) return false
      }
      return write("]")
    }
    if (Predicate.isDate(v)) return write(formatDate(v))
    if (
      Predicate.hasProperty(v, "toString") && Predicate.isFunction(v.toString) &&
      v.toString !== Object.prototype.toString && v.toString !== Array.prototype.toString
    ) {
      if (!write(safeToString(v as { toString(): unknown }))) return false
      if (v instanceof Error && v.cause) return write(" (cause: ") && go(v.cause) && write(")")
      return true
    }
    if (typeof v === "string") return write(quoted(v))
    if (typeof v === "number" || v == null || typeof v === "boolean" || typeof v === "symbol") return write(String(v))
    if (typeof v === "bigint") return write(`${String(v)}n`)
    if (v instanceof Set || v instanceof Map) {
      if (seen.has(v)) return write(circular)
      seen.add(v)
      if (!write(`${v.constructor.name}([`)) return false
      let i = 0
      for (const item of v) {
        if ((i++ > 0 && !write(",")) || !go(item)) return false
      }
      return write("])")
    }
    if (Predicate.isObject(v)) {
      if (seen.has(v)) return write(circular)
      seen.add(v)
      const constructor = (v as { readonly constructor?: { readonly name?: unknown } }).constructor
      const wrapped = constructor !== undefined && constructor !== Object && typeof constructor.name === "string" &&
        constructor.name !== ""
      if (wrapped && !write(`${constructor.name}(`)) return false
      let keys: Array<PropertyKey>
      try {
        keys = Reflect.ownKeys(v)
      } catch {
        keys = ["[ownKeys threw]"]
      }
      if (!write("{")) return false
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]
        if (i > 0 && !write(",")) return false
        if (!write(`${typeof key === "string" ? quoted(key) : String(key)}:`)) return false
        if (!go((v as Record<PropertyKey, unknown>)[key])) return false
      }
      return write("}") && (!wrapped || write(")"))
    }
    return write(String(v))
  }
  go(value)
  return out.length <= limit ? out : clip(out, limit)
}

/** A value whose printed form is `text`: Schema prints an object with its own `toString` by calling it. */
const printedAs = (text: string) => ({ toString: () => text })

const shownValue = (value: unknown): string => {
  try {
    return preview(value)
  } catch {
    return "[a value that cannot be shown]"
  }
}

const boundKey = (key: PropertyKey): PropertyKey => typeof key === "string" ? clip(key) : key

/** A neutral node to hang our own messages on: it carries no message annotation of its own. */
const neutral = SchemaAST.unknownKeyword

/**
 * The same issue, ready to be formatted within bounds: the values its
 * default messages print are previews, its keys and messages are clipped,
 * and a composite lists at most `maxProblems` members, then a count.
 * Message annotations (which word their own messages) are left as they are.
 */
export const boundIssue = (issue: ParseResult.ParseIssue): ParseResult.ParseIssue => {
  switch (issue._tag) {
    case "Type":
      if (issue.message !== undefined) {
        return issue.message.length <= maxMessage
          ? issue
          : new ParseResult.Type(issue.ast, issue.actual, clip(issue.message, maxMessage))
      }
      return Option.isSome(SchemaAST.getMessageAnnotation(issue.ast))
        ? issue
        : new ParseResult.Type(issue.ast, printedAs(shownValue(issue.actual)))
    case "Pointer":
      return new ParseResult.Pointer(
        Array.isArray(issue.path)
          ? issue.path.map(boundKey) as unknown as ParseResult.Path
          : boundKey(issue.path as PropertyKey),
        issue.actual,
        boundIssue(issue.issue)
      )
    case "Refinement":
      return new ParseResult.Refinement(issue.ast, issue.actual, issue.kind, boundIssue(issue.issue))
    case "Transformation":
      return new ParseResult.Transformation(issue.ast, issue.actual, issue.kind, boundIssue(issue.issue))
    case "Composite": {
      if (!Array.isArray(issue.issues)) {
        return new ParseResult.Composite(issue.ast, issue.actual, boundIssue(issue.issues as ParseResult.ParseIssue))
      }
      const members: Array<ParseResult.ParseIssue> = issue.issues.slice(0, maxProblems).map(boundIssue)
      if (issue.issues.length > maxProblems) {
        members.push(new ParseResult.Type(neutral, undefined, `and ${issue.issues.length - maxProblems} more problems`))
      }
      return new ParseResult.Composite(issue.ast, issue.actual, members as [ParseResult.ParseIssue, ...Array<ParseResult.ParseIssue>])
    }
    case "Unexpected":
      return issue.message === undefined ? issue : new ParseResult.Unexpected(issue.actual, clip(issue.message, maxMessage))
    case "Forbidden":
      return issue.message === undefined ? issue : new ParseResult.Forbidden(issue.ast, issue.actual, clip(issue.message, maxMessage))
    case "Missing":
      return issue
  }
}

/** One problem of an input: where (a dotted path; empty for the whole input) and what. */
export interface Problem {
  readonly path: string
  readonly message: string
}

const undescribable = (error: unknown): Problem => ({
  path: "",
  message: clip(`cannot be described: ${error instanceof Error ? error.message : "it cannot be read"}`, maxMessage)
})

/** Every problem of `issue`, as Schema's ArrayFormatter lists them, within bounds. Never throws. */
export const problemsOf = (issue: ParseResult.ParseIssue): ReadonlyArray<Problem> => {
  try {
    const issues = ParseResult.ArrayFormatter.formatIssueSync(boundIssue(issue))
    const problems: Array<Problem> = issues.slice(0, maxProblems).map((problem) => ({
      path: clip(problem.path.map(String).join("."), maxMessage),
      message: clip(problem.message, maxMessage)
    }))
    if (issues.length > maxProblems) {
      problems.push({ path: "", message: `and ${issues.length - maxProblems} more problems` })
    }
    return problems
  } catch (error) {
    return [undescribable(error)]
  }
}

/** `issue` as Schema's TreeFormatter writes it, within bounds. Never throws. */
export const treeOf = (issue: ParseResult.ParseIssue): string => {
  try {
    return ParseResult.TreeFormatter.formatIssueSync(boundIssue(issue))
  } catch (error) {
    return undescribable(error).message
  }
}

/** How many arrays and objects the quick walk looks at before it hands over to the thorough one. */
const quickVisits = 1_000
const gaveUp: unique symbol = Symbol("gaveUp")

/**
 * The quick walk: a recursion, but never more than `limit + 1` calls deep,
 * so it cannot overflow; it allocates nothing for a value that is not too
 * deep, which is what a request on a hot path (an envelope on send) is. It
 * gives up after `quickVisits` values: a value shared at every level of a
 * tree has exponentially many paths, which only the thorough walk avoids.
 * The path comes back reversed.
 */
const quickWalk = (
  value: object,
  depth: number,
  limit: number,
  budget: { left: number }
): Array<PropertyKey> | undefined | typeof gaveUp => {
  if (depth > limit) return []
  if (--budget.left < 0) return gaveUp
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (typeof item !== "object" || item === null) continue
      const found = quickWalk(item, depth + 1, limit, budget)
      if (found === undefined) continue
      if (found !== gaveUp) found.push(i)
      return found
    }
  } else if (!ArrayBuffer.isView(value)) {
    const keys = Object.keys(value)
    for (let i = 0; i < keys.length; i++) {
      const item: unknown = (value as Record<string, unknown>)[keys[i]]
      if (typeof item !== "object" || item === null) continue
      const found = quickWalk(item, depth + 1, limit, budget)
      if (found === undefined) continue
      if (found !== gaveUp) found.push(keys[i])
      return found
    }
  }
  return undefined
}

interface Visit {
  readonly value: object
  readonly depth: number
  readonly key: PropertyKey
  readonly parent: Visit | undefined
}

const pathOf = (visit: Visit): Array<PropertyKey> => {
  const path: Array<PropertyKey> = []
  for (let at: Visit | undefined = visit; at?.parent !== undefined; at = at.parent) path.push(at.key)
  return path.reverse()
}

/**
 * The thorough walk: a loop over its own stack, which revisits a shared
 * value only when it reaches it deeper than before, so a value shared a
 * million times costs one visit and a cyclic one is too deep.
 */
const thoroughWalk = (input: object, limit: number): ReadonlyArray<PropertyKey> | undefined => {
  const stack: Array<Visit> = [{ value: input, depth: 1, key: "", parent: undefined }]
  const deepest = new Map<object, number>()
  const push = (value: unknown, key: PropertyKey, parent: Visit) => {
    if (typeof value === "object" && value !== null) stack.push({ value, depth: parent.depth + 1, key, parent })
  }
  while (stack.length > 0) {
    const visit = stack.pop()!
    if (visit.depth > limit) return pathOf(visit)
    const seen = deepest.get(visit.value)
    if (seen !== undefined && seen >= visit.depth) continue
    deepest.set(visit.value, visit.depth)
    const value = visit.value
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) push(value[i], i, visit)
    } else if (!ArrayBuffer.isView(value)) {
      const keys = Object.keys(value)
      for (let i = keys.length - 1; i >= 0; i--) push((value as Record<string, unknown>)[keys[i]], keys[i], visit)
    }
  }
  return undefined
}

/**
 * The path to the first array or object of `input` nested more than `limit`
 * deep, or undefined. It walks what JSON holds (array items, own enumerable
 * keys; bytes are a leaf), and never recurses more than `limit` calls deep.
 */
export const tooDeep = (input: unknown, limit: number = maxDepth): ReadonlyArray<PropertyKey> | undefined => {
  if (typeof input !== "object" || input === null) return undefined
  const quick = quickWalk(input, 1, limit, { left: quickVisits })
  return quick === gaveUp ? thoroughWalk(input, limit) : quick?.reverse()
}

/**
 * A ParseError for `input` when it nests more than `limit` deep, naming the
 * start of the path to where it does; undefined when it does not.
 */
export const depthError = (input: unknown, limit: number = maxDepth): ParseResult.ParseError | undefined => {
  const path = tooDeep(input, limit)
  if (path === undefined) return undefined
  const shown = path.length > maxPathShown ? [...path.slice(0, maxPathShown), "…"] : path
  const problem = new ParseResult.Type(neutral, undefined, `is nested more than ${limit} levels deep (arrays and objects)`)
  return ParseResult.parseError(
    shown.length === 0 ? problem : new ParseResult.Pointer(shown as unknown as ParseResult.Path, input, problem)
  )
}
