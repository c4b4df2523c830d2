/**
 * Gateway policies (PROTOCOLS.md §2): the YAML document a human writes, its
 * decoded shape, and the errors of the policy language.
 *
 * Decoding is strict on purpose. A policy is a security boundary: a misspelled
 * key (`requires_aproval_if`) or a value of the wrong type must reject the whole
 * document, never silently drop a restriction. So unknown keys are errors,
 * duplicate YAML keys are errors, YAML warnings are errors, and every problem
 * is reported at once with its dotted path.
 *
 * `requires_approval_if` is only checked to be a non-empty string here: a
 * condition that does not parse is not a decoding error but fails safe to
 * "requires approval" at evaluation (`src/model/Policy.ts`), which also lists
 * such conditions as warnings of the compiled policy.
 */
import { Either, Schema } from "effect"
import { Composer, isCollection, LineCounter, Parser, visit, type YAMLError } from "yaml"
import { atMost, maxIdLength, MessageType } from "./Envelope.js"
import { clip, maxDepth, maxMessage, maxProblems, problemsOf } from "../internal/bounds.js"
import { schemaDecoder } from "../internal/decode.js"
import { deepestNode, deepestToken } from "../internal/yamlDepth.js"

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
  /** A condition in the expression language (`src/model/Expression.ts`); true means a human must approve. */
  requires_approval_if: optional(NonEmptyString),
  /** Paths into the action to redact; a non-empty list turns "allow" into "redact". */
  redact: optional(Schema.Array(FieldPath).annotations(mustBeAList("field paths")))
}).annotations(mustBeAMapping("allow, and optionally limit_per_hour, requires_approval_if, redact"))
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

export const PolicyDocument = Schema.Struct({
  id: PolicyId,
  scope: Scope,
  tools: optional(
    Schema.Record({ key: ToolName, value: ToolRule }).annotations(mustBeAMapping("tool name or pattern → rule"))
  ),
  network: optional(NetworkRules),
  llm: optional(LlmRules),
  /** Present (even empty) means this policy governs messages: the first matching rule decides, no match denies. */
  messages: optional(Schema.Array(MessageRule).annotations(mustBeAList("message rules"))),
  budgets: optional(Schema.Array(Budget).annotations(mustBeAList("budgets"))),
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

const decodeDocument = schemaDecoder(PolicyDocument, { onExcessProperty: "error" })

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
    : Either.mapLeft(decodeDocument(input), (error) => invalid(problemsOf(error.issue), options))

/**
 * The longest policy text taken: the YAML parser's check for duplicate keys
 * grows with the square of a mapping's keys (a megabyte of rules blocks the
 * process for most of a minute), and no real policy comes near it.
 */
export const maxPolicyBytes = 256 * 1024
const utf8 = new TextEncoder()

/**
 * The YAML text of one policy. Syntax errors, duplicate keys and YAML warnings
 * (an unresolved tag, a collection used as a key) are problems too, with their
 * line and column, and so is nesting more than `maxDepth` collections deep
 * (aliases counted where they stand). Never throws.
 */
export const parsePolicy = (yamlText: string, options?: PolicySourceOptions): Either.Either<PolicyDocument, InvalidPolicy> => {
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
    // What `parseAllDocuments` does, with the depth checked where the `yaml`
    // package starts to recurse (src/internal/yamlDepth.ts says why).
    const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(yamlText))
    const deepToken = deepestToken(tokens, maxDepth)
    if (deepToken !== undefined) return Either.left(invalid([nestedTooDeeply(deepToken.offset)], options))
    // Problems come back in the result; a pure function writes nothing to the console.
    const documents = Array.from(new Composer({ uniqueKeys: true, logLevel: "silent" }).compose(tokens))
    const problems: Array<PolicyProblem> = documents.flatMap((document) => {
      const found = [...document.errors, ...document.warnings].map(located)
      // JavaScript objects only have string keys: `? [a, b]` would become the key "[ a, b ]".
      visit(document, {
        Pair: (_, pair) => {
          if (isCollection(pair.key)) {
            const { line, col } = lineCounter.linePos(pair.key.range?.[0] ?? 0)
            found.push({ path: "", message: `YAML line ${line}, column ${col}: a key must be a scalar, not a collection` })
          }
        }
      })
      return found
    })
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
  return decodePolicy(value, options)
}
