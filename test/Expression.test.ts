/**
 * The `requires_approval_if` language: what parses into which tree, where a
 * bad condition is reported, how each operator treats each type, and that
 * neither parsing nor evaluation ever throws, whatever the input.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import {
  evaluate,
  type Expression,
  ExpressionError,
  listOperators,
  maxNesting,
  parseExpression,
  printExpression,
  resolvePath,
  type Scalar,
  scalarOperators,
  type Truth,
  whyUnknown
} from "../src/model/Expression.js"

// ---------------------------------------------------------------------------
// Helpers

const parsed = (text: string): Expression => {
  const result = parseExpression(text)
  if (Either.isLeft(result)) throw new Error(`${JSON.stringify(text)} did not parse: ${result.left.message}`)
  return result.right
}

const parseError = (text: string): ExpressionError => {
  const result = parseExpression(text)
  if (Either.isRight(result)) throw new Error(`${JSON.stringify(text)} parsed: ${JSON.stringify(result.right)}`)
  return result.left
}

const holds = (text: string, context: unknown) => evaluate(parsed(text), context)

const truths: ReadonlyArray<Truth> = [true, false, "unknown"]

const comparison = (field: string, operator: string, value: Scalar) => ({
  _tag: "Comparison",
  path: field.split("."),
  operator,
  value
})

// ---------------------------------------------------------------------------
// Parsing

describe("parseExpression", () => {
  it("reads field op literal with a dotted path", () => {
    expect(parsed("args.amount > 1000")).toEqual(comparison("args.amount", ">", 1000))
    expect(parsed("agent.team_id == 'ops'")).toEqual(comparison("agent.team_id", "==", "ops"))
    expect(parsed("args.items.0.price <= 9.5")).toEqual(comparison("args.items.0.price", "<=", 9.5))
  })

  it("reads every operator", () => {
    for (const operator of scalarOperators) {
      expect(parsed(`tool ${operator} 'x'`)).toEqual(comparison("tool", operator, "x"))
    }
    for (const operator of listOperators) {
      expect(parsed(`tool ${operator} ['x', 1]`)).toEqual({
        _tag: "Membership",
        path: ["tool"],
        operator,
        values: ["x", 1]
      })
    }
  })

  it("reads operators without spaces around symbols", () => {
    expect(parsed("a>=1 AND b!='x'")).toEqual({
      _tag: "And",
      operands: [comparison("a", ">=", 1), comparison("b", "!=", "x")]
    })
  })

  it("reads every kind of literal", () => {
    const value = (text: string) => (parsed(`f == ${text}`) as { value: Scalar }).value
    expect(value("42")).toBe(42)
    expect(value("-3.5")).toBe(-3.5)
    expect(value("1e3")).toBe(1000)
    expect(value("2.5E-1")).toBe(0.25)
    expect(value(".5")).toBe(0.5)
    expect(value("'single'")).toBe("single")
    expect(value("\"double\"")).toBe("double")
    expect(value("'it\\'s'")).toBe("it's")
    expect(value("\"a\\\"b\\\\c\\n\\t\\u0041\"")).toBe("a\"b\\c\n\tA")
    expect(value("'no \"escape\" needed'")).toBe("no \"escape\" needed")
    expect(value("''")).toBe("")
    expect(value("true")).toBe(true)
    expect(value("false")).toBe(false)
    expect(value("null")).toBe(null)
    expect((parsed("f in []") as { values: ReadonlyArray<Scalar> }).values).toEqual([])
    expect((parsed("f in [1, 'a', true, null]") as { values: ReadonlyArray<Scalar> }).values).toEqual([1, "a", true, null])
  })

  it("reads keywords in any case", () => {
    expect(parsed("a == TRUE and b CONTAINS 'x' Or c NOT_IN [NULL]")).toEqual(
      parsed("a == true AND b contains 'x' OR c not_in [null]")
    )
  })

  it("binds AND tighter than OR", () => {
    expect(parsed("a == 1 OR b == 2 AND c == 3")).toEqual({
      _tag: "Or",
      operands: [comparison("a", "==", 1), { _tag: "And", operands: [comparison("b", "==", 2), comparison("c", "==", 3)] }]
    })
    expect(parsed("a == 1 AND b == 2 OR c == 3")).toEqual({
      _tag: "Or",
      operands: [{ _tag: "And", operands: [comparison("a", "==", 1), comparison("b", "==", 2)] }, comparison("c", "==", 3)]
    })
  })

  it("lets parentheses group, and keeps chains flat", () => {
    expect(parsed("(a == 1 OR b == 2) AND c == 3")).toEqual({
      _tag: "And",
      operands: [{ _tag: "Or", operands: [comparison("a", "==", 1), comparison("b", "==", 2)] }, comparison("c", "==", 3)]
    })
    expect(parsed("((a == 1))")).toEqual(comparison("a", "==", 1))
    expect(parsed("a == 1 AND b == 2 AND c == 3")).toEqual({
      _tag: "And",
      operands: [comparison("a", "==", 1), comparison("b", "==", 2), comparison("c", "==", 3)]
    })
  })

  it("accepts a word operator as a field name where a field is expected, but not AND or OR", () => {
    expect(parsed("in == 1 AND contains == 2")).toEqual({
      _tag: "And",
      operands: [comparison("in", "==", 1), comparison("contains", "==", 2)]
    })
    expect(parseError("and == 1").message).toContain("expected a field name, found \"and\"")
    expect(parsed("or.x == 1")).toEqual(comparison("or.x", "==", 1))
  })

  describe("reports where and why a condition does not parse", () => {
    const cases: ReadonlyArray<readonly [text: string, position: number, message: string]> = [
      ["", 0, "expected a field name, found the end"],
      ["   ", 3, "expected a field name, found the end"],
      ["a = 1", 2, "unexpected character \"=\" (equality is ==)"],
      ["a === 1", 4, "unexpected character \"=\""],
      ["a ==", 4, "expected a value"],
      ["a == b", 5, "strings need quotes"],
      ["a == 'open", 5, "unterminated string"],
      ["a == 'bad \\q'", 10, "unknown escape \\q"],
      ["a == '\\u12'", 6, "\\u must be followed by four hex digits"],
      ["a == 1e999", 5, "out of range"],
      ["a 1", 2, "expected an operator"],
      ["a equals 1", 2, "expected an operator"],
      ["a == 1 b == 2", 7, "expected AND, OR or the end"],
      ["a == 1 AND", 10, "expected a field name, found the end"],
      ["a == 1 OR OR b == 1", 10, "expected a field name, found \"OR\""],
      ["(a == 1", 7, "expected ) to close the ( at position 0"],
      ["a == 1)", 6, "expected AND, OR or the end, found \")\""],
      ["a in 1", 5, "in takes a list"],
      ["a not_in 'x'", 9, "not_in takes a list"],
      ["a in [1, 2", 10, "expected , or ] in the list"],
      ["a in [1 2]", 8, "expected , or ] in the list"],
      ["a in [[1]]", 6, "expected a value"],
      ["a == [1]", 5, "== takes a single value"],
      ["a..b == 1", 0, "has an empty segment"],
      ["a. == 1", 0, "has an empty segment"],
      ["== 1", 0, "expected a field name"],
      ["1 == a", 0, "expected a field name"],
      ["a == 1 & b == 2", 7, "unexpected character \"&\""],
      ["a == 1 && b == 2", 7, "unexpected character \"&\""]
    ]
    for (const [text, position, message] of cases) {
      it(JSON.stringify(text), () => {
        const error = parseError(text)
        expect(error).toBeInstanceOf(ExpressionError)
        expect(error._tag).toBe("ExpressionError")
        expect(error.code).toBe("VALIDATION_ERROR")
        expect(error.retryable).toBe(false)
        expect(error.position).toBe(position)
        expect(error.message).toContain(message)
        expect(error.message).toContain(`at position ${position}`)
      })
    }
  })

  it(`refuses parentheses nested deeper than ${maxNesting}, without overflowing the stack`, () => {
    const nested = (depth: number) => `${"(".repeat(depth)}a == 1${")".repeat(depth)}`
    expect(parsed(nested(maxNesting))).toEqual(comparison("a", "==", 1))
    expect(parseError(nested(maxNesting + 1)).message).toContain(`deeper than ${maxNesting}`)
    expect(parseError(nested(100_000)).position).toBe(maxNesting)
  })

  it("reads a very long chain without recursion trouble", () => {
    const text = Array.from({ length: 20_000 }, (_, i) => `f${i} == ${i}`).join(" OR ")
    const expression = parsed(text)
    expect(expression._tag).toBe("Or")
    expect(evaluate(expression, { f19999: 19999 })).toBe(true)
  })
})

// ---------------------------------------------------------------------------
// Evaluation

describe("evaluate", () => {
  const context = {
    tool: "payments.send",
    agent: { agent_id: "a1", team_id: "finance" },
    args: {
      amount: 5000,
      currency: "USD",
      note: null,
      urgent: true,
      tags: ["a", "b", 3, null],
      nested: { deep: { value: "x" } },
      text: "hello world",
      numeric_text: "5000",
      strings: ["a", "b"],
      empty: []
    }
  }

  it("compares numbers", () => {
    expect(holds("args.amount > 1000", context)).toBe(true)
    expect(holds("args.amount > 5000", context)).toBe(false)
    expect(holds("args.amount >= 5000", context)).toBe(true)
    expect(holds("args.amount < 5000", context)).toBe(false)
    expect(holds("args.amount <= 5000", context)).toBe(true)
    expect(holds("args.amount == 5000.0", context)).toBe(true)
    expect(holds("args.amount != 5000", context)).toBe(false)
    expect(holds("args.amount != 1", context)).toBe(true)
  })

  it("compares strings, ordering by code units", () => {
    expect(holds("args.currency == 'USD'", context)).toBe(true)
    expect(holds("args.currency != 'EUR'", context)).toBe(true)
    expect(holds("args.currency > 'EUR'", context)).toBe(true)
    expect(holds("args.currency < 'EUR'", context)).toBe(false)
    expect(holds("args.currency == 'usd'", context)).toBe(false)
  })

  it("compares booleans", () => {
    expect(holds("args.urgent == true", context)).toBe(true)
    expect(holds("args.urgent != false", context)).toBe(true)
  })

  it("cannot evaluate a comparison whose field does not have the literal's type: no coercion, and the call asks for approval", () => {
    for (const text of [
      "args.numeric_text > 1000",
      "args.numeric_text >= 1000",
      "args.numeric_text < 1000",
      "args.numeric_text <= 1000",
      "args.numeric_text == 5000",
      "args.numeric_text != 5000",
      "args.amount == '5000'",
      "args.amount != '5000'",
      "args.amount > '1000'",
      "args.amount contains 5",
      "args.amount contains '5'",
      "args.amount starts_with '5'",
      "args.urgent == 'true'",
      "args.urgent == 1",
      "args.urgent > false",
      "args.amount > true",
      "args.amount < null",
      "args.nested == 'x'",
      "args.nested != 'x'",
      "args.nested > 1",
      "args.nested contains 'x'",
      "args.tags == 'a'",
      "args.tags > 1",
      "args.tags starts_with 'a'",
      "args.tags contains '3'",
      "args.nested in ['x']",
      "args.nested not_in ['x']",
      "args.amount in ['5000']",
      "args.amount not_in ['5000']",
      "args.text contains 1",
      "args.text contains null",
      "args.note > 0",
      "args.note < 0"
    ]) {
      expect([text, holds(text, context)]).toEqual([text, "unknown"])
    }
  })

  it("cannot evaluate a comparison on a missing or null field, unless the literal is null: `!= null` tests presence", () => {
    expect(holds("args.missing == null", context)).toBe(true)
    expect(holds("args.note == null", context)).toBe(true)
    expect(holds("args.amount == null", context)).toBe(false)
    expect(holds("args.nested == null", context)).toBe(false)
    expect(holds("args.amount != null", context)).toBe(true)
    expect(holds("args.nested != null", context)).toBe(true)
    expect(holds("args.missing != null", context)).toBe(false)
    expect(holds("args.missing.deeper == null", context)).toBe(true)
    expect(holds("args.amount.deeper == null", context)).toBe(true)
    expect(holds("args.missing in [null]", context)).toBe(true)
    expect(holds("args.missing not_in [null, 'USD']", context)).toBe(false)
    for (const text of [
      "args.missing == 5",
      "args.missing != 5",
      "args.missing > 5",
      "args.missing <= 'a'",
      "args.missing contains 'a'",
      "args.missing starts_with 'a'",
      "args.missing in ['USD']",
      "args.missing not_in ['USD']",
      "args.note == 'x'",
      "args.note != 'x'",
      "args.amount.deeper > 1"
    ]) {
      expect([text, holds(text, context)]).toEqual([text, "unknown"])
    }
  })

  it("combines what cannot be evaluated by three-valued logic: AND is false if any part is, OR true if any part is", () => {
    expect(holds("args.numeric_text > 1000 AND args.currency == 'EUR'", context)).toBe(false)
    expect(holds("args.numeric_text > 1000 AND args.currency == 'USD'", context)).toBe("unknown")
    expect(holds("args.numeric_text > 1000 OR args.currency == 'USD'", context)).toBe(true)
    expect(holds("args.numeric_text > 1000 OR args.currency == 'EUR'", context)).toBe("unknown")
    // A presence test guards an optional field.
    expect(holds("args.missing != null AND args.missing == 'USD'", context)).toBe(false)
    expect(holds("args.missing == null OR args.missing == 'USD'", context)).toBe(true)
  })

  it("says which comparison could not be evaluated, and why", () => {
    const why = (text: string, on: unknown = context) => whyUnknown(parsed(text), on)
    expect(why("args.numeric_text > 1000")).toBe("args.numeric_text > 1000: args.numeric_text is a string, not a number")
    expect(why("args.missing == 'USD'")).toBe("args.missing == 'USD': args.missing is missing")
    expect(why("args.note contains 'x'")).toBe("args.note contains 'x': args.note is null")
    expect(why("args.nested in ['x', 1]")).toBe("args.nested in ['x', 1]: args.nested is a mapping, not a string")
    expect(why("args.amount > true")).toBe("args.amount > true: > compares numbers or strings, not a boolean")
    expect(why("args.tags contains '3'")).toBe("args.tags contains '3': an element of args.tags is a number, not a string")
    // The part that decided, not the first one that cannot be evaluated.
    expect(why("(args.numeric_text > 1 AND args.currency == 'EUR') OR args.urgent == 'yes'")).toBe(
      "args.urgent == 'yes': args.urgent is a boolean, not a string"
    )
    expect(why("args.amount > 1000")).toBeUndefined()
  })

  it("sees own properties only", () => {
    expect(holds("args.constructor == null", context)).toBe(true)
    expect(holds("args.__proto__ == null", context)).toBe(true)
    expect(holds("args.text.length == null", context)).toBe(true)
    expect(holds("args.tags.length == 4", context)).toBe(true)
    expect(holds("args.tags.1 == 'b'", context)).toBe(true)
    expect(resolvePath(Object.create({ inherited: 1 }), ["inherited"])).toBeUndefined()
  })

  it("evaluates contains on strings and arrays, and starts_with on strings", () => {
    expect(holds("args.text contains 'lo wo'", context)).toBe(true)
    expect(holds("args.text contains 'bye'", context)).toBe(false)
    expect(holds("args.tags contains 'b'", context)).toBe(true)
    expect(holds("args.tags contains 3", context)).toBe(true)
    expect(holds("args.tags contains null", context)).toBe(true)
    expect(holds("args.strings contains 'z'", context)).toBe(false)
    expect(holds("args.strings contains 'b'", context)).toBe(true)
    expect(holds("args.empty contains 'a'", context)).toBe(false)
    expect(holds("tool starts_with 'payments.'", context)).toBe(true)
    expect(holds("tool starts_with 'email.'", context)).toBe(false)
  })

  it("evaluates in and not_in by same-type equality", () => {
    expect(holds("args.currency in ['USD', 'EUR']", context)).toBe(true)
    expect(holds("args.currency in ['GBP', 'EUR']", context)).toBe(false)
    expect(holds("args.currency in ['GBP', 1]", context)).toBe("unknown")
    expect(holds("args.amount in [5000, 'x']", context)).toBe(true)
    expect(holds("args.currency not_in ['GBP']", context)).toBe(true)
    expect(holds("args.currency not_in ['USD']", context)).toBe(false)
    expect(holds("args.currency in []", context)).toBe(false)
    expect(holds("args.currency not_in []", context)).toBe(true)
  })

  it("joins with AND and OR", () => {
    expect(holds("args.amount > 1000 AND args.currency == 'USD'", context)).toBe(true)
    expect(holds("args.amount > 1000 AND args.currency == 'EUR'", context)).toBe(false)
    expect(holds("args.amount > 9000 OR agent.team_id == 'finance'", context)).toBe(true)
    expect(holds("args.amount > 9000 OR agent.team_id == 'ops'", context)).toBe(false)
    expect(holds("agent.team_id == 'ops' AND args.amount > 1 OR tool == 'payments.send'", context)).toBe(true)
    expect(holds("agent.team_id == 'ops' AND (args.amount > 1 OR tool == 'payments.send')", context)).toBe(false)
  })

  it("never throws on odd contexts, and cannot evaluate what is neither JSON nor missing", () => {
    const expression = parsed("a.b == 1 OR a contains 'x' OR a in [1] OR a > 0 OR a starts_with 'q'")
    for (const odd of [undefined, null, 0, "text", [], Object.create(null), { a: Symbol("s") }, { a: 10n }, { a: () => 1 }]) {
      expect(truths).toContain(evaluate(expression, odd))
      expect(typeof whyUnknown(expression, odd)).toMatch(/string|undefined/)
    }
    for (const odd of [Symbol("s"), 10n, () => 1]) {
      expect(evaluate(parsed("a == 1"), { a: odd })).toBe("unknown")
      expect(evaluate(parsed("a == null"), { a: odd })).toBe(false)
    }
    expect(evaluate(parsed("a == 1"), { a: Number.NaN })).toBe(false)
    expect(evaluate(parsed("a != 1"), { a: Number.NaN })).toBe(true)
    expect(evaluate(parsed("a > 1"), { a: Number.NaN })).toBe("unknown")
  })
})

// ---------------------------------------------------------------------------
// Properties

const scalar: fc.Arbitrary<Scalar> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
  fc.integer(),
  fc.string({ unit: fc.oneof(fc.char16bits(), fc.constantFrom("'", "\"", "\\", "\n")) }),
  fc.boolean(),
  fc.constant(null)
)

const segment = fc.oneof(fc.stringMatching(/^[A-Za-z_$][A-Za-z0-9_$-]{0,8}$/), fc.nat({ max: 20 }).map(String))
const path = fc.tuple(fc.stringMatching(/^[A-Za-z_$][A-Za-z0-9_$-]{0,8}$/), fc.array(segment, { maxLength: 3 }))
  .map(([first, rest]) => [first, ...rest])
  .filter((segments) => !/^(and|or)$/i.test(segments.join(".")))

const expression: fc.Arbitrary<Expression> = fc.letrec<{ expression: Expression }>((tie) => ({
  expression: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({
      _tag: fc.constant("Comparison" as const),
      path,
      operator: fc.constantFrom(...scalarOperators),
      value: scalar
    }),
    fc.record({
      _tag: fc.constant("Membership" as const),
      path,
      operator: fc.constantFrom(...listOperators),
      values: fc.array(scalar, { maxLength: 4 })
    }),
    fc.record({ _tag: fc.constant("And" as const), operands: fc.array(tie("expression"), { minLength: 2, maxLength: 3 }) }),
    fc.record({ _tag: fc.constant("Or" as const), operands: fc.array(tie("expression"), { minLength: 2, maxLength: 3 }) })
  )
})).expression

/** Text that is mostly made of the language's own tokens, so it gets deep into the parser before failing. */
const tokenSoup = fc.array(
  fc.oneof(
    fc.constantFrom("(", ")", "[", "]", ",", "==", "!=", ">", ">=", "<", "<=", "=", "!", "AND", "OR", "and", "in", "not_in"),
    fc.constantFrom("contains", "starts_with", "true", "null", "'", "\"", "\\", "'a'", "\"b\"", "-", ".", "1.5e3", "-2"),
    fc.constantFrom("args.amount", "tool", "a..b", "x.", "\\u00", "\u0000", " ", "\n", "1e999"),
    fc.string({ maxLength: 3 })
  ),
  { maxLength: 30 }
).map((parts) => parts.join(" "))

const json = fc.jsonValue() as fc.Arbitrary<unknown>

const not = (truth: Truth): Truth => truth === "unknown" ? truth : !truth

describe("properties", () => {
  it.prop("parsing arbitrary text never throws", [fc.oneof(fc.string(), fc.fullUnicodeString(), tokenSoup)], ([text]) => {
    const result = parseExpression(text)
    if (Either.isLeft(result)) {
      expect(result.left).toBeInstanceOf(ExpressionError)
      expect(result.left.position).toBeGreaterThanOrEqual(0)
      expect(result.left.position).toBeLessThanOrEqual(text.length)
    }
  }, { fastCheck: { numRuns: 2000 } })

  it.prop("evaluating any parsed condition on any JSON context gives true, false or unknown, and unknown says why", [
    tokenSoup,
    expression,
    json
  ], ([text, generated, context]) => {
    const result = parseExpression(text)
    if (Either.isRight(result)) expect(truths).toContain(evaluate(result.right, context))
    for (const on of [context, { args: context }]) {
      const truth = evaluate(generated, on)
      expect(truths).toContain(truth)
      expect(whyUnknown(generated, on) !== undefined).toBe(truth === "unknown")
    }
  }, { fastCheck: { numRuns: 500 } })

  it.prop("unknown only where the comparisons that cannot be evaluated would decide it either way", [expression, json], ([generated, context]) => {
    // Those comparisons replaced by true, then by false, must give both answers: otherwise the
    // condition was decided whatever they say, and asking for approval would be needless.
    const on = { args: context, f: 0 }
    fc.pre(evaluate(generated, on) === "unknown")
    const forced = (value: boolean) => {
      const force = (node: Expression): Expression =>
        node._tag === "And" || node._tag === "Or"
          ? { _tag: node._tag, operands: node.operands.map(force) }
          : evaluate(node, on) === "unknown"
          ? { _tag: "Membership", path: ["f"], operator: value ? "not_in" : "in", values: [] }
          : node
      return force(generated)
    }
    expect(evaluate(forced(true), on)).toBe(true)
    expect(evaluate(forced(false), on)).toBe(false)
  }, { fastCheck: { numRuns: 300 } })

  it.prop("print then parse gives back the same tree", [expression], ([generated]) => {
    expect(parsed(printExpression(generated))).toEqual(generated)
  }, { fastCheck: { numRuns: 1000 } })

  it.prop("printing is canonical: print(parse(print(e))) = print(e)", [expression], ([generated]) => {
    const printed = printExpression(generated)
    expect(printExpression(parsed(printed))).toBe(printed)
  })

  it.prop("in is an OR of ==, and not_in its negation", [
    fc.oneof(scalar, fc.constant(undefined), json),
    fc.array(scalar, { minLength: 1, maxLength: 4 })
  ], ([field, values]) => {
    const context = field === undefined ? {} : { f: field }
    const membership = (operator: "in" | "not_in"): Expression => ({ _tag: "Membership", path: ["f"], operator, values })
    const anyEqual: Expression = values.length === 1
      ? { _tag: "Comparison", path: ["f"], operator: "==", value: values[0]! }
      : { _tag: "Or", operands: values.map((value) => ({ _tag: "Comparison", path: ["f"], operator: "==", value })) }
    expect(evaluate(membership("in"), context)).toBe(evaluate(anyEqual, context))
    expect(evaluate(membership("not_in"), context)).toBe(not(evaluate(anyEqual, context)))
  })

  it.prop("== and != are complementary, and decided for a field of the literal's type or a null literal", [
    fc.oneof(scalar, json),
    scalar
  ], ([left, right]) => {
    const context = { f: left }
    const equal = evaluate({ _tag: "Comparison", path: ["f"], operator: "==", value: right }, context)
    const different = evaluate({ _tag: "Comparison", path: ["f"], operator: "!=", value: right }, context)
    expect(different).toBe(not(equal))
    expect(equal === "unknown").toBe(right !== null && typeof left !== typeof right)
  })
})
