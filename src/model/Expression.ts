/**
 * The condition language of `requires_approval_if` (PROTOCOLS.md §2):
 *
 * ```
 * condition  := or
 * or         := and ("OR" and)*
 * and        := operand ("AND" operand)*          AND binds tighter than OR
 * operand    := "(" or ")" | field operator literal
 * field      := segment ("." segment)*            args.amount, tool, agent.team_id, args.items.0
 * operator   := == | != | > | >= | < | <= | contains | starts_with | in | not_in
 * literal    := number | 'string' | "string" | true | false | null | [scalar, ...] (in, not_in only)
 * ```
 *
 * Keywords (AND, OR, the word operators, true/false/null) are case-insensitive;
 * AND and OR cannot be field names, the others can (`in == 1` reads field `in`).
 * A field is looked up in the evaluation context through own properties only
 * (so `args.constructor` is just a missing field); missing and null are one value.
 *
 * Evaluation never throws, and never guesses. A condition is true, false, or
 * *unknown* when it cannot be evaluated on the values at hand: a comparison
 * whose field is missing or null while its literal is not, or whose field's
 * type does not fit the operator and the literal (there is no coercion:
 * `"5000" > 1000` is unknown, not false). A policy treats an unknown condition
 * as one that does not parse: the call waits for a human's approval. Unknown
 * parts combine by three-valued logic, so a condition is unknown only when
 * they could decide it either way: AND is false as soon as one part is false,
 * OR is true as soon as one part is true.
 *
 * | operator              | decided (true or false) when                                               |
 * |-----------------------|----------------------------------------------------------------------------|
 * | `== null`, `!= null`  | always: `== null` is true exactly when the field is missing or null        |
 * | `==`, `!=`            | the field has the literal's type (number, string or boolean)               |
 * | `> >= < <=`           | both numbers, or both strings (compared by UTF-16 code units)              |
 * | `contains`            | a string field and a string literal; a list field: as `element == literal` for any element |
 * | `starts_with`         | a string field and a string literal                                        |
 * | `in`, `not_in`        | as `field == element` for any element of the list, and its negation (`in []` is false) |
 *
 * Everything else is unknown. A presence test guards an optional field:
 * `args.currency != null AND args.currency == 'USD'` is false, not unknown,
 * when the call has no currency.
 */
import { Either } from "effect"
import { ExpressionError } from "../schema/Policy.js"

export { ExpressionError }

// ---------------------------------------------------------------------------
// Syntax tree

export type Scalar = string | number | boolean | null

export type ScalarOperator = "==" | "!=" | ">" | ">=" | "<" | "<=" | "contains" | "starts_with"
export type ListOperator = "in" | "not_in"
export type Operator = ScalarOperator | ListOperator

export type Expression =
  | { readonly _tag: "Comparison"; readonly path: ReadonlyArray<string>; readonly operator: ScalarOperator; readonly value: Scalar }
  | {
    readonly _tag: "Membership"
    readonly path: ReadonlyArray<string>
    readonly operator: ListOperator
    readonly values: ReadonlyArray<Scalar>
  }
  | { readonly _tag: "And"; readonly operands: ReadonlyArray<Expression> }
  | { readonly _tag: "Or"; readonly operands: ReadonlyArray<Expression> }

export const scalarOperators: ReadonlyArray<ScalarOperator> = ["==", "!=", ">", ">=", "<", "<=", "contains", "starts_with"]
export const listOperators: ReadonlyArray<ListOperator> = ["in", "not_in"]

/** Parentheses deeper than this are refused: the parser recurses, and a condition that deep is not written by a human. */
export const maxNesting = 64

// ---------------------------------------------------------------------------
// Tokens

type Token =
  | { readonly kind: "word"; readonly text: string; readonly start: number }
  | { readonly kind: "number"; readonly value: number; readonly text: string; readonly start: number }
  | { readonly kind: "string"; readonly value: string; readonly text: string; readonly start: number }
  | { readonly kind: "symbol"; readonly text: string; readonly start: number }
  | { readonly kind: "end"; readonly text: ""; readonly start: number }

/**
 * Thrown inside this module only, and caught by `parseExpression`: it lets the
 * recursive descent read like the grammar instead of threading an Either
 * through every step.
 */
class Stop {
  constructor(readonly message: string, readonly position: number) {}
}

// Sticky patterns, each tried at one position: a token is read without copying the rest of the text.
const blanks = /\s+/y
const wordPattern = /[A-Za-z_$][A-Za-z0-9_$.-]*/y
const numberPattern = /-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y
const symbolPattern = /==|!=|>=|<=|[><()[\],]/y
const plainRuns: Record<string, RegExp> = { "'": /[^'\\]*/y, "\"": /[^"\\]*/y }

/** Where `pattern` stops matching at `start`, or -1 when it does not match there. */
const matchEnd = (pattern: RegExp, text: string, start: number): number => {
  pattern.lastIndex = start
  return pattern.test(text) ? pattern.lastIndex : -1
}

const escapes: Record<string, string> = { "\"": "\"", "'": "'", "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }

/** A quoted string starting at `start` (the quote): its value and where it ends. JSON escapes, plus `\'`. */
const readString = (text: string, start: number): { readonly value: string; readonly end: number } => {
  const plainRun = plainRuns[text[start]!]!
  let value = ""
  let index = start + 1
  for (;;) {
    // Whole runs without a quote or a backslash at once: a long string costs one copy, not one per character.
    const runEnd = matchEnd(plainRun, text, index)
    value += text.slice(index, runEnd)
    index = runEnd
    if (index >= text.length) throw new Stop("unterminated string", start)
    if (text[index] !== "\\") return { value, end: index + 1 }
    const escaped = text[index + 1]
    if (escaped === "u") {
      const hex = text.slice(index + 2, index + 6)
      if (!/^[0-9A-Fa-f]{4}$/.test(hex)) throw new Stop("\\u must be followed by four hex digits", index)
      value += String.fromCharCode(parseInt(hex, 16))
      index += 6
    } else if (escaped !== undefined && escapes[escaped] !== undefined) {
      value += escapes[escaped]
      index += 2
    } else {
      throw new Stop(`unknown escape \\${escaped ?? ""} in a string`, index)
    }
  }
}

/**
 * Tokens read one at a time, as the parser asks for them (one of lookahead):
 * a long condition never holds all its tokens at once.
 */
class Lexer {
  private index = 0
  private ahead: Token | undefined = undefined
  constructor(private readonly text: string) {}

  peek(): Token {
    return this.ahead ??= this.read()
  }

  next(): Token {
    const token = this.peek()
    this.ahead = undefined
    return token
  }

  private read(): Token {
    const text = this.text
    const afterBlanks = matchEnd(blanks, text, this.index)
    const start = afterBlanks === -1 ? this.index : afterBlanks
    if (start >= text.length) return this.token({ kind: "end", text: "", start }, start)
    const char = text[start]!
    if (char === "'" || char === "\"") {
      const { end, value } = readString(text, start)
      return this.token({ kind: "string", value, text: text.slice(start, end), start }, end)
    }
    let end = matchEnd(numberPattern, text, start)
    if (end !== -1) {
      const source = text.slice(start, end)
      const value = Number(source)
      if (!Number.isFinite(value)) throw new Stop(`number ${source} is out of range`, start)
      return this.token({ kind: "number", value, text: source, start }, end)
    }
    end = matchEnd(wordPattern, text, start)
    if (end !== -1) return this.token({ kind: "word", text: text.slice(start, end), start }, end)
    end = matchEnd(symbolPattern, text, start)
    if (end !== -1) return this.token({ kind: "symbol", text: text.slice(start, end), start }, end)
    throw new Stop(`unexpected character ${JSON.stringify(char)}${char === "=" ? " (equality is ==)" : ""}`, start)
  }

  private token(token: Token, end: number): Token {
    this.index = end
    return token
  }
}

// ---------------------------------------------------------------------------
// Parsing
//
// Plain functions over one Lexer, not closures made per condition: a policy
// compiles thousands of conditions at once.

const describe = (token: Token) => token.kind === "end" ? "the end" : JSON.stringify(token.text)
const keyword = (token: Token) => token.kind === "word" ? token.text.toLowerCase() : undefined
const isSymbol = (token: Token, text: string) => token.kind === "symbol" && token.text === text

const wordOperators: Record<string, Operator> = { contains: "contains", starts_with: "starts_with", in: "in", not_in: "not_in" }

const isListOperator = (operator: Operator): operator is ListOperator => operator === "in" || operator === "not_in"

/** `part (AND part)*` or `part (OR part)*`, kept flat: `a OR b OR c` is one Or of three. */
const parseChain = (
  lexer: Lexer,
  depth: number,
  tag: "And" | "Or",
  parsePart: (lexer: Lexer, depth: number) => Expression
): Expression => {
  const operands = [parsePart(lexer, depth)]
  const joiner = tag.toLowerCase()
  while (keyword(lexer.peek()) === joiner) {
    lexer.next()
    operands.push(parsePart(lexer, depth))
  }
  return operands.length === 1 ? operands[0]! : { _tag: tag, operands }
}

const parseOr = (lexer: Lexer, depth: number): Expression => parseChain(lexer, depth, "Or", parseAnd)
const parseAnd = (lexer: Lexer, depth: number): Expression => parseChain(lexer, depth, "And", parseOperand)

const parseOperand = (lexer: Lexer, depth: number): Expression => {
  const token = lexer.next()
  if (isSymbol(token, "(")) {
    if (depth >= maxNesting) throw new Stop(`parentheses nest deeper than ${maxNesting}`, token.start)
    const inner = parseOr(lexer, depth + 1)
    const close = lexer.next()
    if (!isSymbol(close, ")")) {
      throw new Stop(`expected ) to close the ( at position ${token.start}, found ${describe(close)}`, close.start)
    }
    return inner
  }
  // AND and OR are reserved: as field names they would turn "a == 1 OR OR b == 1" into a puzzling error.
  if (token.kind !== "word" || keyword(token) === "and" || keyword(token) === "or") {
    throw new Stop(`expected a field name, found ${describe(token)}`, token.start)
  }
  const path = token.text.split(".")
  if (path.some((segment) => segment === "")) {
    throw new Stop(`field ${JSON.stringify(token.text)} has an empty segment`, token.start)
  }
  const operatorToken = lexer.next()
  const operator = operatorToken.kind === "symbol"
    ? scalarOperators.find((candidate) => candidate === operatorToken.text)
    : wordOperators[keyword(operatorToken) ?? ""]
  if (operator === undefined) {
    throw new Stop(
      `expected an operator (${[...scalarOperators, ...listOperators].join(" ")}) after ${token.text}, found ${
        describe(operatorToken)
      }`,
      operatorToken.start
    )
  }
  if (isListOperator(operator)) {
    return { _tag: "Membership", path, operator, values: parseList(lexer, operator) }
  }
  const literal = lexer.peek()
  if (isSymbol(literal, "[")) {
    throw new Stop(`${operator} takes a single value; lists go with in and not_in`, literal.start)
  }
  return { _tag: "Comparison", path, operator, value: parseScalar(lexer) }
}

const parseList = (lexer: Lexer, operator: ListOperator): ReadonlyArray<Scalar> => {
  const open = lexer.next()
  if (!isSymbol(open, "[")) {
    throw new Stop(`${operator} takes a list such as ['a', 'b'], found ${describe(open)}`, open.start)
  }
  const values: Array<Scalar> = []
  if (isSymbol(lexer.peek(), "]")) {
    lexer.next()
    return values
  }
  for (;;) {
    values.push(parseScalar(lexer))
    const separator = lexer.next()
    if (isSymbol(separator, "]")) return values
    if (!isSymbol(separator, ",")) {
      throw new Stop(`expected , or ] in the list, found ${describe(separator)}`, separator.start)
    }
  }
}

const parseScalar = (lexer: Lexer): Scalar => {
  const token = lexer.next()
  switch (token.kind) {
    case "number":
    case "string":
      return token.value
    case "word": {
      const word = token.text.toLowerCase()
      if (word === "true") return true
      if (word === "false") return false
      if (word === "null") return null
      throw new Stop(
        `expected a value (a number, a quoted string, true, false or null), found ${describe(token)} (strings need quotes)`,
        token.start
      )
    }
    default:
      throw new Stop(
        `expected a value (a number, a quoted string, true, false or null), found ${describe(token)}`,
        token.start
      )
  }
}

/** The condition's syntax tree, or where and why it does not parse. Never throws. */
export const parseExpression = (text: string): Either.Either<Expression, ExpressionError> => {
  try {
    const lexer = new Lexer(text)
    const expression = parseOr(lexer, 0)
    const rest = lexer.peek()
    if (rest.kind !== "end") {
      throw new Stop(`expected AND, OR or the end, found ${describe(rest)}`, rest.start)
    }
    return Either.right(expression)
  } catch (thrown) {
    if (thrown instanceof Stop) {
      return Either.left(new ExpressionError({ message: `${thrown.message} at position ${thrown.position}`, position: thrown.position }))
    }
    throw thrown
  }
}

// ---------------------------------------------------------------------------
// Printing

const printedEscapes: Record<string, string> = { "\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t" }

/**
 * Single-quoted, since conditions usually sit inside a double-quoted YAML
 * string. Control characters and lone surrogates are escaped so the text is
 * printable and survives any encoding.
 */
const printString = (value: string): string =>
  `'${
    value.replace(
      /[\\'\u0000-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
      (char) => printedEscapes[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`
    )
  }'`

const printScalar = (value: Scalar): string =>
  typeof value === "string" ? printString(value) : value === null ? "null" : String(value)

/**
 * Canonical text of a condition: parsing it gives back the same tree. A nested
 * AND inside AND (or OR inside OR) keeps its parentheses so the tree's shape
 * survives; AND inside OR needs none.
 */
export const printExpression = (expression: Expression): string => {
  switch (expression._tag) {
    case "Comparison":
      return `${expression.path.join(".")} ${expression.operator} ${printScalar(expression.value)}`
    case "Membership":
      return `${expression.path.join(".")} ${expression.operator} [${expression.values.map(printScalar).join(", ")}]`
    case "And":
      return expression.operands
        .map((operand) => operand._tag === "And" || operand._tag === "Or" ? `(${printExpression(operand)})` : printExpression(operand))
        .join(" AND ")
    case "Or":
      return expression.operands
        .map((operand) => operand._tag === "Or" ? `(${printExpression(operand)})` : printExpression(operand))
        .join(" OR ")
  }
}

// ---------------------------------------------------------------------------
// Evaluation

const hasOwn = Object.prototype.hasOwnProperty

/** The value at `path`, or undefined when any step is missing or not an object. */
export const resolvePath = (context: unknown, path: ReadonlyArray<string>): unknown => {
  let current = context
  for (const segment of path) {
    if (typeof current !== "object" || current === null || !hasOwn.call(current, segment)) return undefined
    current = (current as Record<string, unknown>)[segment]
  }
  return current
}

/**
 * A condition's value on one call: `"unknown"` when it cannot be evaluated
 * there. The string is truthy on purpose: a caller that only asks
 * `if (evaluate(...))` then asks for approval, which is the safe answer.
 */
export type Truth = boolean | "unknown"

const not = (truth: Truth): Truth => truth === "unknown" ? truth : !truth

/**
 * Three-valued OR (`decisive` true) or AND (`decisive` false) of `test` over
 * `items`: the decisive value if any item gives it, else unknown if any item
 * is unknown, else the other value.
 */
const combine = <A>(items: ReadonlyArray<A>, test: (item: A) => Truth, decisive: boolean): Truth => {
  let result: Truth = !decisive
  for (const item of items) {
    const truth = test(item)
    if (truth === decisive) return truth
    if (truth === "unknown") result = truth
  }
  return result
}

const anyOf = <A>(items: ReadonlyArray<A>, test: (item: A) => Truth) => combine(items, test, true)
const allOf = <A>(items: ReadonlyArray<A>, test: (item: A) => Truth) => combine(items, test, false)

const isMissing = (value: unknown) => value === null || value === undefined

/** `field == literal`: a null literal tests presence; any other is decided only on a field of its own type. */
const equals = (field: unknown, literal: Scalar): Truth =>
  literal === null ? isMissing(field) : typeof field === typeof literal ? field === literal : "unknown"

const bothStrings = (field: unknown, literal: Scalar): field is string => typeof field === "string" && typeof literal === "string"

/** NaN has no place in an order, so it cannot be compared either. */
const ordered = (field: unknown, literal: Scalar): field is number | string =>
  (typeof field === "number" && typeof literal === "number" && !Number.isNaN(field)) || bothStrings(field, literal)

const compare = (field: unknown, operator: ScalarOperator, literal: Scalar): Truth => {
  switch (operator) {
    case "==":
      return equals(field, literal)
    case "!=":
      return not(equals(field, literal))
    case ">":
      return ordered(field, literal) ? field > (literal as typeof field) : "unknown"
    case ">=":
      return ordered(field, literal) ? field >= (literal as typeof field) : "unknown"
    case "<":
      return ordered(field, literal) ? field < (literal as typeof field) : "unknown"
    case "<=":
      return ordered(field, literal) ? field <= (literal as typeof field) : "unknown"
    case "contains":
      if (Array.isArray(field)) return anyOf(field, (element) => equals(element, literal))
      return bothStrings(field, literal) ? field.includes(literal as string) : "unknown"
    case "starts_with":
      return bothStrings(field, literal) ? field.startsWith(literal as string) : "unknown"
  }
}

/** Whether the condition holds for `context`, or `"unknown"`. Never throws; see the module comment for the type rules. */
export const evaluate = (expression: Expression, context: unknown): Truth => {
  switch (expression._tag) {
    case "Comparison":
      return compare(resolvePath(context, expression.path), expression.operator, expression.value)
    case "Membership": {
      const field = resolvePath(context, expression.path)
      const found = anyOf(expression.values, (value) => equals(field, value))
      return expression.operator === "in" ? found : not(found)
    }
    case "And":
      return allOf(expression.operands, (operand) => evaluate(operand, context))
    case "Or":
      return anyOf(expression.operands, (operand) => evaluate(operand, context))
  }
}

const kindOf = (value: unknown): string => {
  if (value === undefined) return "missing"
  if (value === null) return "null"
  if (Array.isArray(value)) return "a list"
  return typeof value === "object" ? "a mapping" : `a ${typeof value}`
}

/** Why a comparison known to be unknown is so, for the reason a person reads. */
const undecidedBecause = (
  expression: Extract<Expression, { readonly path: ReadonlyArray<string> }>,
  field: unknown
): string => {
  const name = expression.path.join(".")
  const literals = expression._tag === "Membership" ? expression.values : [expression.value]
  const literal = literals.find((value) => equals(field, value) === "unknown") ?? literals[0] ?? null
  switch (expression.operator) {
    case ">":
    case ">=":
    case "<":
    case "<=":
      if (typeof literal !== "number" && typeof literal !== "string") {
        return `${expression.operator} compares numbers or strings, not ${kindOf(literal)}`
      }
      break
    case "contains":
      if (Array.isArray(field)) {
        const element = field.find((item) => equals(item, literal) === "unknown")
        return `an element of ${name} is ${kindOf(element)}, not ${kindOf(literal)}`
      }
      if (typeof literal !== "string") return `${expression.operator} takes a string, not ${kindOf(literal)}`
      if (!isMissing(field)) return `${name} is ${kindOf(field)}, not a string or a list`
      break
    case "starts_with":
      if (typeof literal !== "string") return `${expression.operator} takes a string, not ${kindOf(literal)}`
      break
  }
  return isMissing(field) ? `${name} is ${kindOf(field)}` : `${name} is ${kindOf(field)}, not ${kindOf(literal)}`
}

/**
 * When the condition is unknown for `context`, the comparison that kept it
 * open and why, e.g. `args.amount > 1000: args.amount is a string, not a
 * number`; otherwise undefined.
 */
export const whyUnknown = (expression: Expression, context: unknown): string | undefined => {
  if (evaluate(expression, context) !== "unknown") return undefined
  switch (expression._tag) {
    case "And":
    case "Or":
      // An unknown AND has no false part and an unknown OR no true one: any unknown part keeps it open.
      for (const operand of expression.operands) {
        const why = whyUnknown(operand, context)
        if (why !== undefined) return why
      }
      return undefined
    default:
      return `${printExpression(expression)}: ${undecidedBecause(expression, resolvePath(context, expression.path))}`
  }
}
