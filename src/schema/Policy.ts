/**
 * Gateway policies (PROTOCOLS.md §2): the YAML document a human writes, its
 * decoded shape, and the errors of the policy language.
 *
 * Decoding is strict on purpose. A policy is a security boundary: a misspelled
 * key (`requires_aproval_if`) or a value of the wrong type must reject the whole
 * document, never silently drop a restriction. So unknown keys are errors,
 * duplicate YAML keys are errors (also `true` beside `'true'`, which become one
 * key once read), YAML warnings are errors, and every problem is reported at
 * once with its dotted path.
 *
 * `requires_approval_if` is only checked to be a non-empty string here: a
 * condition that does not parse is not a decoding error but fails safe to
 * "requires approval" at evaluation (`src/model/Policy.ts`), which also lists
 * such conditions as warnings of the compiled policy.
 */
import { Either, type ParseResult, Schema } from "effect"
import {
  Composer,
  type CST,
  type Document,
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  type Node,
  Parser,
  type YAMLError
} from "yaml"
import { clip, depthError, maxDepth, maxMessage, maxProblems, problemsOf } from "../internal/bounds.js"
import { schemaDecoder } from "../internal/decode.js"
import { compileFast, type Fast, Invalid, isRecord, Unsure } from "../internal/fastSchema.js"
import { deepestNode, deepestToken } from "../internal/yamlDepth.js"
import { atMost, maxIdLength, MessageType } from "./Envelope.js"

// ---------------------------------------------------------------------------
// Errors

export const PolicyProblem = Schema.Struct({
  /** Dotted path of the offending field, e.g. `tools.web.search.limit_per_hour`; empty for the whole document. */
  path: Schema.String,
  message: Schema.String
})
export type PolicyProblem = typeof PolicyProblem.Type

/** A policy document that cannot be used, with every problem found in it. */
export class InvalidPolicy extends Schema.TaggedError<InvalidPolicy>()("InvalidPolicy", {
  code: Schema.tag("VALIDATION_ERROR"),
  retryable: Schema.tag(false),
  problems: Schema.Array(PolicyProblem),
  /** Where the document came from (a file name), when the caller said so. */
  source: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const problems = this.problems.map((problem) => problem.path === "" ? problem.message : `${problem.path}: ${problem.message}`)
    return `invalid policy${this.source === undefined ? "" : ` ${this.source}`}: ${problems.join("; ")}`
  }
}

/** A `requires_approval_if` condition that does not parse; `position` is the 0-based character offset. */
export class ExpressionError extends Schema.TaggedError<ExpressionError>()("ExpressionError", {
  code: Schema.tag("VALIDATION_ERROR"),
  retryable: Schema.tag(false),
  message: Schema.String,
  position: Schema.Number
}) {}

// ---------------------------------------------------------------------------
// Field shapes
//
// Each leaf overrides Schema's generated message ("Expected string, actual 5")
// with one a policy author can act on; containers only replace the message for
// "this is not a mapping", so problems inside them keep their own paths.

const says = (message: string) => ({ message: () => ({ message, override: true }) })
const mustBeAMapping = (what: string) => ({ message: () => `must be a mapping (${what})` })
const mustBeAList = (what: string) => ({ message: () => `must be a list (${what})` })
const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

const NonEmptyString = Schema.String.pipe(Schema.minLength(1)).annotations(says("must be a non-empty string"))
/** As long as any id at most: the id is named in the events that load and remove the policy. */
const PolicyId = NonEmptyString.pipe(atMost(maxIdLength))
const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive()).annotations(says("must be a positive integer"))
const NonNegativeNumber = Schema.Number.pipe(Schema.finite(), Schema.nonNegative()).annotations(
  says("must be a non-negative number")
)
const Flag = Schema.Boolean.annotations(says("must be true or false"))

/** `args.body`, `args.items.0.secret`: dot-separated, no empty segment. */
const FieldPath = Schema.String.pipe(Schema.pattern(/^[^.\s]+(\.[^.\s]+)*$/)).annotations(
  says("must be a dotted field path such as args.body")
)

/**
 * A host name, an IP address, or a wildcard pattern of them. A scheme or a
 * path (`https://api.example.com/v1`) is refused: it could never match a host,
 * so the author meant something else.
 */
const HostPattern = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9*._:[\]-]+$/)).annotations(
  says("must be a host name or wildcard pattern such as *.example.com (no scheme, path or spaces)")
)

// ---------------------------------------------------------------------------
// Scope

const scopeKinds = ["global", "team", "agent", "tool"] as const
export const ScopeKind = Schema.Literal(...scopeKinds).annotations(says(`must be one of: ${scopeKinds.join(", ")}`))
export type ScopeKind = typeof ScopeKind.Type

const ScopeMembers = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("global") }),
  Schema.Struct({ kind: Schema.Literal("team", "agent", "tool"), id: NonEmptyString })
)
export type Scope = typeof ScopeMembers.Type

/**
 * Decoded from one flat mapping and checked by hand rather than as a
 * `Schema.Union`: a union reports a bad `kind` with its own generated message
 * and a misplaced `id` as "unexpected", neither of which says what to do.
 */
export const Scope: Schema.Schema<Scope, { readonly kind: ScopeKind; readonly id?: string }> = Schema.transform(
  Schema.Struct({ kind: ScopeKind, id: optional(NonEmptyString) }).annotations(
    mustBeAMapping("kind: global | team | agent | tool, and an id unless global")
  ).pipe(
    Schema.filter((scope) =>
      scope.kind === "global"
        ? scope.id === undefined ? undefined : { path: ["id"], message: "a global scope has no id" }
        : scope.id !== undefined
        ? undefined
        : { path: ["id"], message: `is required for a ${scope.kind} scope (the ${scope.kind} name)` }
    )
  ),
  Schema.typeSchema(ScopeMembers),
  { strict: false, decode: (scope) => scope, encode: (scope) => scope }
)

// ---------------------------------------------------------------------------
// Rules

export const ToolRule = Schema.Struct({
  allow: Flag,
  /** Calls of this tool per agent in any hour; reaching it denies. Under `*`, it counts each tool separately. */
  limit_per_hour: optional(PositiveInt),
  /** A condition in the expression language (`src/model/Expression.ts`); true, or not evaluable on the call, means a human must approve. */
  requires_approval_if: optional(NonEmptyString),
  /** Paths into the action to redact; a non-empty list turns "allow" into "redact". */
  redact: optional(Schema.Array(FieldPath).annotations(mustBeAList("field paths"))),
  /** The tool works in the agent's worktree: a call by an agent bound to none is denied (`worktree_not_bound`). */
  requires_worktree: optional(Flag)
}).annotations(mustBeAMapping("allow, and optionally limit_per_hour, requires_approval_if, redact, requires_worktree"))
export type ToolRule = typeof ToolRule.Type

/**
 * A tool name or a glob over tool names (`payments.*`); `*` is the fallback.
 * `__proto__` is refused because a decoded record cannot hold it as a key: its
 * rule would silently vanish.
 */
const ToolName = Schema.String.pipe(Schema.minLength(1), Schema.filter((name) => name !== "__proto__")).annotations({
  identifier: "a non-empty tool name other than __proto__"
})

export const NetworkRules = Schema.Struct({
  allow: Schema.Array(HostPattern).annotations(mustBeAList("host patterns"))
}).annotations(mustBeAMapping("allow: a list of host patterns"))
export type NetworkRules = typeof NetworkRules.Type

export const LlmRules = Schema.Struct({
  allow_models: Schema.Array(NonEmptyString).annotations(mustBeAList("model name patterns"))
}).annotations(mustBeAMapping("allow_models: a list of model name patterns"))
export type LlmRules = typeof LlmRules.Type

/**
 * One side of a message rule: `"*"` (anyone), or a team and/or an agent (globs;
 * both given means both must match). One message for every way of getting it
 * wrong: a union would report each member's complaint, which reads as noise.
 */
export const Party = Schema.Union(
  Schema.Literal("*"),
  Schema.Struct({ team: optional(Schema.String.pipe(Schema.minLength(1))), agent: optional(Schema.String.pipe(Schema.minLength(1))) })
    .pipe(Schema.filter((party) => party.team !== undefined || party.agent !== undefined))
).annotations(says(`must be "*", or a mapping with a non-empty team and/or agent`))
export type Party = typeof Party.Type

export const MessageRule = Schema.Struct({
  from: Party,
  to: Party,
  /** Message types the rule covers; absent means every type. */
  types: optional(
    Schema.Array(MessageType.annotations(says(`must be a message type (${MessageType.literals.join(", ")})`)))
      .annotations(mustBeAList("message types"))
  ),
  allow: Flag
}).annotations(mustBeAMapping("from, to, allow, and optionally types"))
export type MessageRule = typeof MessageRule.Type

export const BudgetPer = Schema.Literal("agent", "team").annotations(says("must be agent or team"))

export const Budget = Schema.Struct({
  currency: NonEmptyString,
  limit: NonNegativeNumber,
  per: BudgetPer
}).annotations(mustBeAMapping("currency, limit, per"))
export type Budget = typeof Budget.Type

export const defaultApprovalTimeoutSeconds = 300

// ---------------------------------------------------------------------------
// The document

const ToolRules = Schema.Record({ key: ToolName, value: ToolRule }).annotations(mustBeAMapping("tool name or pattern → rule"))
const MessageRules = Schema.Array(MessageRule).annotations(mustBeAList("message rules"))
const Budgets = Schema.Array(Budget).annotations(mustBeAList("budgets"))

export const PolicyDocument = Schema.Struct({
  id: PolicyId,
  scope: Scope,
  tools: optional(ToolRules),
  network: optional(NetworkRules),
  llm: optional(LlmRules),
  /** Present (even empty) means this policy governs messages: the first matching rule decides, no match denies. */
  messages: optional(MessageRules),
  budgets: optional(Budgets),
  /** How long a pending decision waits for a human before it becomes a deny. */
  approval_timeout_s: Schema.optionalWith(PositiveInt, { exact: true, default: () => defaultApprovalTimeoutSeconds })
}).annotations(mustBeAMapping("a policy document"))
export type PolicyDocument = typeof PolicyDocument.Type
/** The document as written: `approval_timeout_s` may be left out. */
export type PolicyDocumentInput = typeof PolicyDocument.Encoded

// ---------------------------------------------------------------------------
// Decoding

export interface PolicySourceOptions {
  /** Names the document in error messages, e.g. its file name. */
  readonly source?: string | undefined
}

const strict = { onExcessProperty: "error" } as const

const decodeBySchema = schemaDecoder(PolicyDocument, strict)

/** A record's decoder on the fast path, for keys that decode to themselves; Schema's own record parser only runs as a fallback. */
const fastRecord = (key: Schema.Schema<string>, value: Schema.Schema.Any): Fast => {
  const decodeKey = compileFast(key.ast, true, strict)
  const decodeValue = compileFast(value.ast, true, strict)
  return (input) => {
    if (!isRecord(input)) return Invalid
    const keys = Object.keys(input)
    // Schema decodes the enumerable keys and refuses the others: let it.
    if (keys.length !== Reflect.ownKeys(input).length) return Unsure
    const output: Record<string, unknown> = {}
    for (const name of keys) {
      if (decodeKey(name) !== name) return Invalid
      const decoded = decodeValue(input[name])
      if (decoded === Invalid || decoded === Unsure) return decoded
      output[name] = decoded
    }
    return output
  }
}

/**
 * The parts a large policy is made of, each on the fast path (`internal/fastSchema`):
 * Schema's interpreter spends tens of milliseconds on thousands of rules.
 * The few other fields, and any document a fast part cannot vouch for, go
 * through Schema, which gives every error.
 */
const fastParts: ReadonlyArray<readonly [field: string, decode: Fast]> = [
  ["tools", fastRecord(ToolName, ToolRule)],
  ["network", compileFast(NetworkRules.ast, true, strict)],
  ["llm", compileFast(LlmRules.ast, true, strict)],
  ["messages", compileFast(MessageRules.ast, true, strict)],
  ["budgets", compileFast(Budgets.ast, true, strict)]
]
const documentFields = Object.keys(PolicyDocument.fields)

/** The document with its large parts on the fast path; undefined when only Schema can tell. */
const decodeFast = (input: { readonly [key: PropertyKey]: unknown }): Either.Either<PolicyDocument, ParseResult.ParseError> | undefined => {
  // A copy keeps only enumerable keys, and Schema would refuse the others: it sees the input itself then.
  if (Object.keys(input).length !== Reflect.ownKeys(input).length) return undefined
  const rest: Record<PropertyKey, unknown> = { ...input }
  const parts: Record<string, unknown> = {}
  for (const [field, decode] of fastParts) {
    if (!Object.hasOwn(rest, field)) continue
    const decoded = decode(rest[field])
    if (decoded === Invalid || decoded === Unsure) return undefined
    parts[field] = decoded
    delete rest[field]
  }
  return Either.map(decodeBySchema(rest), (decoded) => {
    // In the schema's field order, as Schema itself gives it.
    const whole: Record<string, unknown> = { ...decoded, ...parts }
    const document: Record<string, unknown> = {}
    for (const field of documentFields) if (Object.hasOwn(whole, field)) document[field] = whole[field]
    return document as PolicyDocument
  })
}

const decodeDocument = (input: { readonly [key: PropertyKey]: unknown }): Either.Either<PolicyDocument, ParseResult.ParseError> => {
  // The fast parts recurse: a document nested past the bound goes to Schema's decoder, which refuses it first.
  if (depthError(input) !== undefined) return decodeBySchema(input)
  let fast: Either.Either<PolicyDocument, ParseResult.ParseError> | undefined
  try {
    fast = decodeFast(input)
  } catch {
    // A getter that throws: Schema reports it (`guarded`).
  }
  return fast ?? decodeBySchema(input)
}

const invalid = (problems: ReadonlyArray<PolicyProblem>, options?: PolicySourceOptions) => {
  const seen = new Set<string>()
  const unique = problems.filter((problem) => {
    const key = `${problem.path}\u0000${problem.message}`
    return seen.has(key) ? false : (seen.add(key), true)
  })
  // A text of a quarter of a megabyte can hold thousands of YAML errors: the first ones say what to fix.
  const listed = unique.length <= maxProblems
    ? unique
    : [...unique.slice(0, maxProblems), { path: "", message: `and ${unique.length - maxProblems} more problems` }]
  return new InvalidPolicy({
    problems: listed.length === 0 ? [{ path: "", message: "the policy is invalid" }] : listed,
    ...(options?.source === undefined ? {} : { source: options.source })
  })
}

/** An already-parsed document (from JSON, a test, another loader) checked against the schema. */
export const decodePolicy = (input: unknown, options?: PolicySourceOptions): Either.Either<PolicyDocument, InvalidPolicy> =>
  // Checked here because the document's schema is a transformation (it fills in
  // defaults), whose "not an object" message Schema does not let us word.
  typeof input !== "object" || input === null || Array.isArray(input)
    ? Either.left(invalid([{ path: "", message: "must be a mapping (a policy document with id and scope)" }], options))
    : Either.mapLeft(decodeDocument(input as { readonly [key: PropertyKey]: unknown }), (error) =>
      invalid(problemsOf(error.issue), options))

/**
 * The longest policy text taken; no real policy comes near it. Reading a text
 * this long costs in the order of 100 ms, nearly all of it inside the YAML
 * parser: every check of ours is linear and takes a few milliseconds.
 */
export const maxPolicyBytes = 256 * 1024
const utf8 = new TextEncoder()

/** The object key `toJS` gives a mapping key, or why the key is refused. */
const propertyName = (node: unknown): string | { readonly refused: string } => {
  if (isScalar(node)) {
    const value = node.value
    if (typeof value === "string") return value
    if (typeof value === "number" || typeof value === "boolean") return String(value)
    // `~`, `null` and a key left empty all become "" (what `toJS` makes of a null key).
    if (value === null) return ""
    return typeof value === "symbol"
      ? { refused: "a merge key (<<) is not supported: the keys it brings in would silently give way to keys written beside them" }
      : { refused: "a key must be a string, a number, true, false or null" }
  }
  // JavaScript objects only have string keys: `? [a, b]` would become the key "[ a, b ]".
  return { refused: "a key must be a scalar, not a collection" }
}

const shortened = (text: string) => text.length <= 40 ? text : `${text.slice(0, 39)}…`

/**
 * Where a node's text starts, its tag and anchor included: the parser's range
 * starts after them, and `!!str 1` must be shown as written, not as `1`. Props
 * sit before the content, separated by blanks.
 */
const propsStart = (text: string, node: Node, start: number) => {
  let props = (node.anchor === undefined ? 0 : 1) + (node.tag === undefined ? 0 : 1)
  let at = start
  while (props > 0) {
    let end = at
    while (end > 0 && (text[end - 1] === " " || text[end - 1] === "\t")) end -= 1
    let from = end
    while (from > 0 && !/\s/.test(text[from - 1]!)) from -= 1
    if (from === end || (text[from] !== "!" && text[from] !== "&")) break
    at = from
    props -= 1
  }
  return at
}

/**
 * The keys of every mapping, compared as the object keys `toJS` will make of
 * them. YAML tells `true` from `'true'`, `1` from `'1'`, `~` from `''`, and an
 * alias `*k` is a node of its own, yet each pair becomes one object key: the
 * later would silently replace the earlier. Comparing the keys as they will
 * be read closes that for every type at once, with one hash lookup per key
 * (the parser's own `uniqueKeys` compares parsed values pair by pair: it takes
 * the square of a mapping's size, and passes `true` beside `'true'`). Keys that
 * have no such string (a collection, a merge key, a YAML 1.1 timestamp or
 * binary) are refused outright.
 */
const keyProblems = (document: Document.Parsed, text: string, lineCounter: LineCounter): Array<PolicyProblem> => {
  const problems: Array<PolicyProblem> = []
  // An alias names the latest node with its anchor before it, so anchors are recorded in document order.
  const anchors = new Map<string, unknown>()
  // Positions are worked out only for a problem: most keys have none.
  const at = (node: unknown) => {
    if (!isNode(node) || node.range == null) return { where: "", written: "" }
    const start = propsStart(text, node, node.range[0])
    const { line, col } = lineCounter.linePos(start)
    return { where: `line ${line}, column ${col}`, written: shortened(text.slice(start, node.range[1]).trimEnd()) }
  }
  const problem = (node: unknown, message: string) => {
    const { where } = at(node)
    problems.push({ path: "", message: `YAML${where === "" ? "" : ` ${where}`}: ${message}` })
  }
  const walk = (node: unknown, path: string): void => {
    if (!isNode(node) || isAlias(node)) return // an alias's node is checked where it stands
    if (node.anchor !== undefined) anchors.set(node.anchor, node)
    if (isMap(node)) {
      const seen = new Map<string, unknown>()
      for (const { key, value } of node.items) {
        walk(key, path)
        const target = isAlias(key) ? anchors.get(key.source) : key
        const name = target === undefined && isAlias(key)
          ? { refused: `the alias *${key.source} names no anchor before it` }
          : propertyName(target)
        if (typeof name !== "string") {
          problem(key, name.refused)
        } else if (seen.has(name)) {
          const here = at(key)
          const first = at(seen.get(name))
          problem(
            key,
            `duplicate key ${here.written} ${path === "" ? "at the top level" : `in ${path}`}${
              here.written === first.written
                ? `, first at ${first.where}`
                : `: it reads as ${JSON.stringify(name)}, as ${first.written} at ${first.where} does`
            }`
          )
        } else {
          seen.set(name, key)
        }
        walk(value, typeof name === "string" ? (path === "" ? name : `${path}.${name}`) : path)
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => {
        const itemPath = path === "" ? String(index) : `${path}.${index}`
        // A YAML 1.1 `!!omap` or `!!pairs` holds pairs; `toJS` then makes a Map, which decoding refuses.
        if (isPair(item)) {
          walk(item.key, itemPath)
          walk(item.value, itemPath)
        } else {
          walk(item, itemPath)
        }
      })
    }
  }
  walk(document.contents, "")
  return problems
}

/** Lexemes read between two pauses of `readPolicy`: a few milliseconds of work. */
const tokensPerSlice = 4_096

/**
 * The YAML text of one policy, read in slices: the generator pauses (yields)
 * every few thousand tokens, so that a caller in a busy process can let
 * others run between them (a policy at the size limit is about a tenth of a
 * second of parsing). Syntax errors, duplicate keys (also those only equal
 * once read, such as `true` and `'true'`), keys that are not scalars, and
 * YAML warnings (an unresolved tag) are problems too, with their line and
 * column. Never throws.
 */
export function* readPolicy(
  yamlText: string,
  options?: PolicySourceOptions
): Generator<void, Either.Either<PolicyDocument, InvalidPolicy>> {
  const bytes = typeof yamlText === "string" ? utf8.encode(yamlText).length : 0
  if (bytes > maxPolicyBytes) {
    return Either.left(invalid([{ path: "", message: `a policy is at most ${maxPolicyBytes} bytes of UTF-8, got ${bytes}` }], options))
  }
  const lineCounter = new LineCounter()
  const located = (error: YAMLError): PolicyProblem => {
    const { line, col } = lineCounter.linePos(error.pos[0])
    return { path: "", message: clip(`YAML line ${line}, column ${col}: ${error.message.split("\n")[0]}`, maxMessage) }
  }
  const nestedTooDeeply = (offset: number): PolicyProblem => {
    const { line, col } = lineCounter.linePos(offset)
    return { path: "", message: `YAML line ${line}, column ${col}: nested more than ${maxDepth} levels deep` }
  }
  let value: unknown
  try {
    const parser = new Parser(lineCounter.addNewLine)
    const composer = new Composer({
      // `keyProblems` checks keys, in linear time and as they will be read.
      uniqueKeys: false,
      prettyErrors: false,
      // Problems come back in the result; a pure function writes nothing to the console.
      logLevel: "silent"
    })
    const documents: Array<Document.Parsed> = []
    let deepToken: { readonly offset: number } | undefined
    const compose = (tokens: Iterable<CST.Token>) => {
      for (const token of tokens) {
        // The depth is checked where the `yaml` package starts to recurse (src/internal/yamlDepth.ts says why).
        deepToken ??= deepestToken([token], maxDepth)
        if (deepToken === undefined) for (const document of composer.next(token)) documents.push(document)
      }
    }
    // Lexeme by lexeme, as `Parser.parse` does, with a pause every few thousand.
    lineCounter.addNewLine(0)
    let lexemes = 0
    for (const lexeme of new Lexer().lex(yamlText)) {
      compose(parser.next(lexeme))
      if (++lexemes % tokensPerSlice === 0) yield
    }
    compose(parser.end())
    if (deepToken !== undefined) return Either.left(invalid([nestedTooDeeply(deepToken.offset)], options))
    for (const document of composer.end()) documents.push(document)
    const problems: Array<PolicyProblem> = documents.flatMap((document) => [
      ...[...document.errors, ...document.warnings].map(located),
      ...keyProblems(document, yamlText, lineCounter)
    ])
    if (documents.length > 1) {
      problems.push({ path: "", message: `expected one YAML document, found ${documents.length}` })
    }
    if (problems.length > 0) return Either.left(invalid(problems, options))
    const deepNode = documents.length === 0 ? undefined : deepestNode(documents[0]!, maxDepth)
    if (deepNode !== undefined) return Either.left(invalid([nestedTooDeeply(deepNode.range?.[0] ?? 0)], options))
    // An empty text holds no document; decoding `null` then reports "must be a mapping".
    // `toJS` throws on alias bombs (more aliases than `maxAliasCount`).
    value = documents.length === 0 ? null : documents[0]!.toJS({ maxAliasCount: 100 })
  } catch (thrown) {
    const reason = thrown instanceof Error ? thrown.message : "it cannot be read"
    return Either.left(invalid([{ path: "", message: clip(`YAML: ${reason}`, maxMessage) }], options))
  }
  yield
  return decodePolicy(value, options)
}

/** The YAML text of one policy, read at once (`readPolicy` without its pauses). Never throws. */
export const parsePolicy = (yamlText: string, options?: PolicySourceOptions): Either.Either<PolicyDocument, InvalidPolicy> => {
  const reading = readPolicy(yamlText, options)
  for (;;) {
    const step = reading.next()
    if (step.done === true) return step.value
  }
}
