/**
 * Gateway policies: the YAML document and its decoding (every problem, with
 * its path, never a throw), glob patterns, and the decision of a set of
 * policies on an action — each rule, each fallback, and how policies combine.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, ParseResult, Schema } from "effect"
import { stringify } from "yaml"
import {
  type Action,
  applicableBudgets,
  applicablePolicies,
  compileGlob,
  compilePolicy,
  type Decision,
  evaluate,
  type EvaluationContext,
  globMatch,
  restrictiveness
} from "../src/model/Policy.js"
import {
  decodePolicy,
  InvalidPolicy,
  maxPolicyBytes,
  parsePolicy,
  PolicyDocument,
  readPolicy,
  type PolicyDocumentInput,
  type PolicyProblem
} from "../src/schema/Policy.js"

// ---------------------------------------------------------------------------
// Helpers

const exampleYaml = `
id: research-tools            # required, non-empty
scope: { kind: team, id: research }
tools:
  "*": { allow: false }
  web.search: { allow: true, limit_per_hour: 100 }
  payments.send: { allow: true, requires_approval_if: "args.amount > 1000 AND args.currency == 'USD'" }
  email.send: { allow: true, redact: ["args.body"] }
network: { allow: ["*.example.com", "api.openai.com"] }
llm: { allow_models: ["claude-*", "gpt-4o"] }
messages:
  - { from: { team: research }, to: { agent: "*" }, types: ["DATA", "TOOL_CALL"], allow: true }
  - { from: "*", to: { team: finance }, allow: false }
budgets:
  - { currency: USD, limit: 100, per: agent }
approval_timeout_s: 120
`

const valid = (yamlText: string): PolicyDocument => {
  const result = parsePolicy(yamlText)
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

const policy = (input: Omit<PolicyDocumentInput, "scope"> & { readonly scope?: PolicyDocumentInput["scope"] }) => {
  const result = decodePolicy({ scope: { kind: "global" }, ...input })
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

/** Runs `run` and returns its InvalidPolicy; a success or a throw fails the test. */
const problemsOf = (run: () => Either.Either<PolicyDocument, InvalidPolicy>): ReadonlyArray<PolicyProblem> => {
  let result: Either.Either<PolicyDocument, InvalidPolicy>
  try {
    result = run()
  } catch (thrown) {
    throw new Error(`threw instead of failing: ${String(thrown)}`)
  }
  if (Either.isRight(result)) throw new Error(`accepted: ${JSON.stringify(result.right)}`)
  expect(result.left).toBeInstanceOf(InvalidPolicy)
  expect(result.left.problems.length).toBeGreaterThan(0)
  return result.left.problems
}

const lines = (problems: ReadonlyArray<PolicyProblem>) =>
  problems.map((problem) => problem.path === "" ? problem.message : `${problem.path}: ${problem.message}`)

const context = (overrides: Partial<EvaluationContext> = {}): EvaluationContext => ({
  agent: { agent_id: "ada", team_id: "research" },
  callsInLastHour: () => 0,
  ...overrides
})

const toolCall = (tool: string, args: unknown = {}, agent_id = "ada"): Action => ({ kind: "tool_call", agent_id, tool, args })
const message = (to: string, message_type = "DATA", agent_id = "ada"): Action => ({ kind: "message", agent_id, to, message_type })
const network = (host: string): Action => ({ kind: "network", agent_id: "ada", host })
const llm = (model: string): Action => ({ kind: "llm_call", agent_id: "ada", model })

// ---------------------------------------------------------------------------
// The document

describe("parsePolicy", () => {
  it("reads the documented example", () => {
    const document = valid(exampleYaml)
    expect(document).toEqual({
      id: "research-tools",
      scope: { kind: "team", id: "research" },
      tools: {
        "*": { allow: false },
        "web.search": { allow: true, limit_per_hour: 100 },
        "payments.send": { allow: true, requires_approval_if: "args.amount > 1000 AND args.currency == 'USD'" },
        "email.send": { allow: true, redact: ["args.body"] }
      },
      network: { allow: ["*.example.com", "api.openai.com"] },
      llm: { allow_models: ["claude-*", "gpt-4o"] },
      messages: [
        { from: { team: "research" }, to: { agent: "*" }, types: ["DATA", "TOOL_CALL"], allow: true },
        { from: "*", to: { team: "finance" }, allow: false }
      ],
      budgets: [{ currency: "USD", limit: 100, per: "agent" }],
      approval_timeout_s: 120
    })
  })

  it("needs only an id and a scope, and defaults the approval timeout to 300 s", () => {
    expect(valid("id: minimal\nscope: { kind: global }")).toEqual({
      id: "minimal",
      scope: { kind: "global" },
      approval_timeout_s: 300
    })
  })

  it("reads every scope kind", () => {
    expect(valid("id: p\nscope: { kind: agent, id: ada }").scope).toEqual({ kind: "agent", id: "ada" })
    expect(valid("id: p\nscope: { kind: tool, id: payments.send }").scope).toEqual({ kind: "tool", id: "payments.send" })
  })

  describe("reports every problem with its path", () => {
    const cases: ReadonlyArray<readonly [what: string, yamlText: string, expected: ReadonlyArray<string>]> = [
      ["a missing id and scope", "tools: {}", ["id: is missing", "scope: is missing"]],
      ["an empty id", "id: ''\nscope: { kind: global }", ["id: must be a non-empty string"]],
      ["an id that is not a string", "id: [x]\nscope: { kind: global }", ["id: must be a non-empty string"]],
      ["an unknown scope kind", "id: p\nscope: { kind: planet, id: x }", ["scope.kind: must be one of: global, team, agent, tool"]],
      ["a team scope without id", "id: p\nscope: { kind: team }", ["scope.id: is required for a team scope (the team name)"]],
      ["a global scope with an id", "id: p\nscope: { kind: global, id: x }", ["scope.id: a global scope has no id"]],
      ["a scope that is not a mapping", "id: p\nscope: global", [
        "scope: must be a mapping (kind: global | team | agent | tool, and an id unless global)"
      ]],
      ["a misspelled key at the top", "id: p\nscope: { kind: global }\ntool: {}", [
        "tool: is unexpected, expected: \"id\" | \"scope\" | \"tools\" | \"network\" | \"llm\" | \"messages\" | \"budgets\" | \"approval_timeout_s\""
      ]],
      [
        "a misspelled key in a tool rule",
        "id: p\nscope: { kind: global }\ntools:\n  pay: { allow: true, requires_aproval_if: x }",
        [
          "tools.pay.requires_aproval_if: is unexpected, expected: \"allow\" | \"limit_per_hour\" | \"requires_approval_if\" | \"redact\" | \"requires_worktree\""
        ]
      ],
      ["a limit that is not a positive integer", "id: p\nscope: { kind: global }\ntools:\n  web.search: { allow: true, limit_per_hour: 0 }", [
        "tools.web.search.limit_per_hour: must be a positive integer"
      ]],
      ["a fractional limit", "id: p\nscope: { kind: global }\ntools:\n  web.search: { allow: true, limit_per_hour: 1.5 }", [
        "tools.web.search.limit_per_hour: must be a positive integer"
      ]],
      ["a tool rule without allow", "id: p\nscope: { kind: global }\ntools:\n  web.search: { limit_per_hour: 5 }", [
        "tools.web.search.allow: is missing"
      ]],
      ["allow that is not a boolean", "id: p\nscope: { kind: global }\ntools:\n  web.search: { allow: 'yes' }", [
        "tools.web.search.allow: must be true or false"
      ]],
      ["a tool rule that is not a mapping", "id: p\nscope: { kind: global }\ntools:\n  web.search: true", [
        "tools.web.search: must be a mapping (allow, and optionally limit_per_hour, requires_approval_if, redact, requires_worktree)"
      ]],
      ["an empty condition", "id: p\nscope: { kind: global }\ntools:\n  pay: { allow: true, requires_approval_if: '' }", [
        "tools.pay.requires_approval_if: must be a non-empty string"
      ]],
      ["a bad redact path", "id: p\nscope: { kind: global }\ntools:\n  mail: { allow: true, redact: ['args..body', 'ok'] }", [
        "tools.mail.redact.0: must be a dotted field path such as args.body"
      ]],
      ["tools that is a list", "id: p\nscope: { kind: global }\ntools: [a]", ["tools: must be a mapping (tool name or pattern → rule)"]],
      ["an empty tool name", "id: p\nscope: { kind: global }\ntools:\n  '': { allow: true }", [
        "tools.: is unexpected, expected: a non-empty tool name other than __proto__"
      ]],
      ["a tool named __proto__", "id: p\nscope: { kind: global }\ntools:\n  __proto__: { allow: false }", [
        "tools.__proto__: is unexpected, expected: a non-empty tool name other than __proto__"
      ]],
      ["a URL in the network allowlist", "id: p\nscope: { kind: global }\nnetwork: { allow: ['https://api.example.com/v1', ok.com] }", [
        "network.allow.0: must be a host name or wildcard pattern such as *.example.com (no scheme, path or spaces)"
      ]],
      ["a network section without allow", "id: p\nscope: { kind: global }\nnetwork: {}", ["network.allow: is missing"]],
      ["an empty model pattern", "id: p\nscope: { kind: global }\nllm: { allow_models: [''] }", ["llm.allow_models.0: must be a non-empty string"]],
      ["a bad message party", "id: p\nscope: { kind: global }\nmessages:\n  - { from: {}, to: { team: '' }, allow: true }", [
        "messages.0.from: must be \"*\", or a mapping with a non-empty team and/or agent",
        "messages.0.to: must be \"*\", or a mapping with a non-empty team and/or agent"
      ]],
      ["an unknown message type", "id: p\nscope: { kind: global }\nmessages:\n  - { from: '*', to: '*', types: [DATA, CHAT], allow: true }", [
        "messages.0.types.1: must be a message type (CONTROL, DATA, HEARTBEAT, NOTIFICATION, ACKNOWLEDGEMENT, HITL_INVOCATION, WORKTREE_CONTROL, NEGOTIATION, TOOL_CALL, TOOL_RESULT, TOOL_ERROR)"
      ]],
      ["a message rule without allow", "id: p\nscope: { kind: global }\nmessages:\n  - { from: '*', to: '*' }", ["messages.0.allow: is missing"]],
      ["a bad budget", "id: p\nscope: { kind: global }\nbudgets:\n  - { currency: '', limit: -1, per: org }", [
        "budgets.0.currency: must be a non-empty string",
        "budgets.0.limit: must be a non-negative number",
        "budgets.0.per: must be agent or team"
      ]],
      ["an infinite budget", "id: p\nscope: { kind: global }\nbudgets:\n  - { currency: USD, limit: .inf, per: agent }", [
        "budgets.0.limit: must be a non-negative number"
      ]],
      ["a bad approval timeout", "id: p\nscope: { kind: global }\napproval_timeout_s: -5", ["approval_timeout_s: must be a positive integer"]],
      ["an empty text", "", ["must be a mapping (a policy document with id and scope)"]],
      ["a comment only", "# nothing here\n", ["must be a mapping (a policy document with id and scope)"]],
      ["a list", "- id: p", ["must be a mapping (a policy document with id and scope)"]],
      ["a scalar", "just text", ["must be a mapping (a policy document with id and scope)"]]
    ]
    for (const [what, yamlText, expected] of cases) {
      it(what, () => {
        expect(lines(problemsOf(() => parsePolicy(yamlText)))).toEqual(expected)
      })
    }
  })

  it("lists all problems of a document at once", () => {
    const problems = lines(problemsOf(() =>
      parsePolicy(`
id: ''
scope: { kind: team }
tools:
  web.search: { allow: 1, limit_per_hour: -1 }
network: { allow: [5] }
approval_timeout_s: soon
`)
    ))
    expect(problems).toEqual([
      "id: must be a non-empty string",
      "scope.id: is required for a team scope (the team name)",
      "tools.web.search.allow: must be true or false",
      "tools.web.search.limit_per_hour: must be a positive integer",
      "network.allow.0: must be a host name or wildcard pattern such as *.example.com (no scheme, path or spaces)",
      "approval_timeout_s: must be a positive integer"
    ])
  })

  describe("reports YAML problems with their line and column", () => {
    it("a syntax error", () => {
      const problems = problemsOf(() => parsePolicy("id: p\nscope: { kind: global\ntools: x"))
      expect(problems.every((problem) => problem.path === "")).toBe(true)
      expect(problems[0]!.message).toMatch(/^YAML line \d+, column \d+: /)
    })

    it("a bad indentation", () => {
      const problems = lines(problemsOf(() => parsePolicy("id: p\n  scope: x\n")))
      expect(problems[0]).toMatch(/^YAML line 1, column 5: Nested mappings are not allowed/)
    })

    it("a duplicate key, which would otherwise silently replace a rule", () => {
      const problems = lines(problemsOf(() =>
        parsePolicy("id: p\nscope: { kind: global }\ntools:\n  pay: { allow: false }\n  pay: { allow: true }\n")
      ))
      expect(problems).toEqual(["YAML line 5, column 3: duplicate key pay in tools, first at line 4, column 3"])
    })

    it("several documents in one text", () => {
      expect(lines(problemsOf(() => parsePolicy("id: a\nscope: { kind: global }\n---\nid: b\n")))).toEqual([
        "expected one YAML document, found 2"
      ])
    })

    it("an unresolved tag", () => {
      expect(lines(problemsOf(() => parsePolicy("id: !secret p\nscope: { kind: global }")))).toEqual([
        "YAML line 1, column 5: Unresolved tag: !secret"
      ])
    })

    it("a collection used as a key", () => {
      expect(lines(problemsOf(() => parsePolicy("id: p\nscope: { kind: global }\n? [a, b]\n: c\n")))).toEqual([
        "YAML line 3, column 3: a key must be a scalar, not a collection"
      ])
    })

    it("an alias bomb", () => {
      const bomb = [
        "a: &a [x, x, x, x, x, x, x, x, x]",
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
        "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]"
      ].join("\n")
      expect(lines(problemsOf(() => parsePolicy(bomb)))[0]).toContain("resource exhaustion")
    })
  })

  describe("refuses two keys that become one property once read, whatever their YAML type or node", () => {
    /** A `tools:` mapping with a denying rule under `first` and an allowing one under `second`. */
    const twoRules = (first: string, second: string, header = "") =>
      `${header}id: p\nscope: { kind: global }\ntools:\n  ${first}: { allow: false }\n  ${second}: { allow: true }\n`

    // Each pair is two distinct YAML keys that `toJS` turns into the same object key.
    const spellings: ReadonlyArray<readonly [string, string, string]> = [
      ["true", "'true'", "true"],
      ["True", "\"true\"", "true"],
      ["false", "'false'", "false"],
      ["1", "'1'", "1"],
      ["1.0", "'1'", "1"],
      ["0x1", "'1'", "1"],
      ["0o10", "'8'", "8"],
      ["1e3", "'1000'", "1000"],
      ["1e21", "'1e+21'", "1e+21"],
      ["-0", "'0'", "0"],
      [".inf", "Infinity", "Infinity"],
      [".nan", "NaN", "NaN"],
      ["!!str 1", "1", "1"],
      ["\"\\x41\"", "A", "A"]
    ]
    for (const [first, second, key] of spellings) {
      it(`${first} and ${second}`, () => {
        expect(lines(problemsOf(() => parsePolicy(twoRules(first, second))))).toEqual([
          `YAML line 5, column 3: duplicate key ${second} in tools: it reads as ${JSON.stringify(key)}, as ${first} at line 4, column 3 does`
        ])
      })
    }

    it("null, ~, an empty key and '', which all read as the empty key", () => {
      for (const [first, second] of [["null", "''"], ["~", "\"\""], ["null", "~"], ["? ", "''"]] as const) {
        const text = first === "? "
          ? "id: p\nscope: { kind: global }\ntools:\n  ?\n  : { allow: false }\n  '': { allow: true }\n"
          : twoRules(first, second)
        const problems = lines(problemsOf(() => parsePolicy(text)))
        expect(problems.length).toBe(1)
        expect(problems[0]).toMatch(/^YAML line \d+, column 3: duplicate key .* in tools: it reads as "", as .* does$/)
      }
    })

    it("null and 'null', which do not collapse: the first reads as the empty key", () => {
      // Not a duplicate, but the empty key is no tool name: refused all the same.
      expect(lines(problemsOf(() => parsePolicy(twoRules("null", "'null'"))))).toEqual([
        "tools.: is unexpected, expected: a non-empty tool name other than __proto__"
      ])
    })

    it("an alias of an anchored key, in the same mapping or another", () => {
      // An alias key needs a blank before its colon: `*k:` would be the alias of an anchor named "k:".
      expect(lines(problemsOf(() => parsePolicy(twoRules("&k pay", "*k "))))).toEqual([
        "YAML line 5, column 3: duplicate key *k in tools: it reads as \"pay\", as &k pay at line 4, column 3 does"
      ])
      const text = "id: &name pay\nscope: { kind: global }\ntools:\n  pay: { allow: false }\n  *name : { allow: true }\n"
      expect(lines(problemsOf(() => parsePolicy(text)))).toEqual([
        "YAML line 5, column 3: duplicate key *name in tools: it reads as \"pay\", as pay at line 4, column 3 does"
      ])
    })

    it("an alias key that names no anchor", () => {
      expect(lines(problemsOf(() => parsePolicy("id: p\nscope: { kind: global }\ntools:\n  *nowhere : { allow: true }\n")))).toEqual([
        "YAML line 4, column 3: the alias *nowhere names no anchor before it"
      ])
    })

    it("keys deeper down, naming the mapping by its path", () => {
      const text = "id: p\nscope: { kind: global }\nmessages:\n  - { from: { team: a, 'team': b }, to: '*', allow: true }\n"
      expect(lines(problemsOf(() => parsePolicy(text)))).toEqual([
        "YAML line 4, column 24: duplicate key 'team' in messages.0.from: it reads as \"team\", as team at line 4, column 15 does"
      ])
      expect(lines(problemsOf(() => parsePolicy("id: p\nscope: { kind: global }\n'id': q\n")))).toEqual([
        "YAML line 3, column 1: duplicate key 'id' at the top level: it reads as \"id\", as id at line 1, column 1 does"
      ])
    })

    it("YAML 1.1 spellings, where on and yes are true", () => {
      expect(lines(problemsOf(() => parsePolicy(twoRules("on", "'true'", "%YAML 1.1\n---\n"))))).toEqual([
        "YAML line 7, column 3: duplicate key 'true' in tools: it reads as \"true\", as on at line 6, column 3 does"
      ])
    })

    it("merge keys, whose keys would silently give way to the ones written beside them", () => {
      const merged = "id: p\nscope: { kind: global }\nbase: &base { pay: { allow: false } }\ntools:\n  <<: *base\n  pay: { allow: true }\n"
      for (const text of [`%YAML 1.1\n---\n${merged}`, merged.replace("<<", "!!merge <<")]) {
        expect(lines(problemsOf(() => parsePolicy(text)))[0]).toMatch(/^YAML line \d+, column 3: a merge key \(<<\) is not supported/)
      }
    })

    it("keys that are not strings, numbers, booleans or null: timestamps, binary, aliased collections", () => {
      const header = "%YAML 1.1\n---\nid: p\nscope: { kind: global }\ntools:\n"
      for (const [key, column] of [["2001-01-01", 3], ["? !!binary aGVsbG8=\n  ", 5]] as const) {
        expect(lines(problemsOf(() => parsePolicy(`${header}  ${key}: { allow: true }\n`)))).toEqual([
          `YAML line 6, column ${column}: a key must be a string, a number, true, false or null`
        ])
      }
      const aliased = "id: p\nscope: { kind: global }\nlist: &list [a, b]\ntools:\n  ? *list\n  : { allow: true }\n"
      expect(lines(problemsOf(() => parsePolicy(aliased)))).toContain("YAML line 5, column 5: a key must be a scalar, not a collection")
    })

    it("still reads a key of another type alone, as the string it becomes", () => {
      expect(valid(twoRules("true", "1")).tools).toEqual({ true: { allow: false }, 1: { allow: true } })
      expect(valid("id: p\nscope: { kind: global }\ntools:\n  <<: { allow: true }\n").tools).toEqual({ "<<": { allow: true } })
    })

    it.prop("accepts a tools mapping exactly when its keys read as distinct names, and then keeps every rule", [
      fc.uniqueArray(fc.constantFrom(...spellings.flatMap(([first, second]) => [first, second]), "web", "'web'", "\"web\""), {
        minLength: 1,
        maxLength: 6
      })
    ], ([keys]) => {
      const names = keys.map((written) => spellings.find(([a, b]) => a === written || b === written)?.[2] ?? "web")
      const text = `id: p\nscope: { kind: global }\ntools:\n${keys.map((key) => `  ${key}: { allow: true }`).join("\n")}\n`
      const result = parsePolicy(text)
      expect(Either.isRight(result)).toBe(new Set(names).size === names.length)
      if (Either.isRight(result)) expect(Object.keys(result.right.tools ?? {}).length).toBe(keys.length)
    })
  })

  it("is an InvalidPolicy: VALIDATION_ERROR, not retryable, with a readable message naming the source", () => {
    const result = parsePolicy("id: ''\nscope: { kind: global }", { source: "policies/research.yaml" })
    if (Either.isRight(result)) throw new Error("accepted")
    const error = result.left
    expect(error._tag).toBe("InvalidPolicy")
    expect(error.code).toBe("VALIDATION_ERROR")
    expect(error.retryable).toBe(false)
    expect(error.source).toBe("policies/research.yaml")
    expect(error.message).toBe("invalid policy policies/research.yaml: id: must be a non-empty string")
  })

  it("accepts a condition that does not parse: it fails safe at evaluation, and compiling warns about it", () => {
    const document = valid("id: p\nscope: { kind: global }\ntools:\n  pay: { allow: true, requires_approval_if: 'amount >' }")
    expect(compilePolicy(document).warnings).toEqual([{
      path: "tools.pay.requires_approval_if",
      message: "does not parse, so every call asks for approval: expected a value (a number, a quoted string, true, false or null), found the end at position 8"
    }])
  })
})

describe("decodePolicy", () => {
  it("decodes an already-parsed document", () => {
    expect(decodePolicy({ id: "p", scope: { kind: "global" } })).toEqual(
      Either.right({ id: "p", scope: { kind: "global" }, approval_timeout_s: 300 })
    )
  })

  it("refuses anything that is not a mapping", () => {
    for (const junk of [undefined, null, 0, "p", true, [], [{ id: "p" }]]) {
      expect(lines(problemsOf(() => decodePolicy(junk)))).toEqual(["must be a mapping (a policy document with id and scope)"])
    }
  })
})

// ---------------------------------------------------------------------------
// Properties of decoding

const notAPolicy = fc.anything().filter((value) =>
  typeof value !== "object" || value === null || !("id" in value) || !("scope" in value)
)

const encodedDocument = Arbitrary.make(PolicyDocument).map((document) => Schema.encodeSync(PolicyDocument)(document))

const bySchema = Schema.decodeUnknownEither(PolicyDocument, { errors: "all", onExcessProperty: "error" })

/** A valid document's encoded form with junk deep in one of its lists or rules, where the fast path decodes. */
const corruptedPart = fc.tuple(encodedDocument, fc.constantFrom("tools", "network", "llm", "messages", "budgets"), fc.nat(), fc.anything())
  .map(([document, field, at, junk]) => {
    const part: unknown = (document as Record<string, unknown>)[field]
    const copy: Record<string, unknown> = { ...document }
    if (Array.isArray(part)) {
      copy[field] = part.length === 0 ? [junk] : part.map((item, index) => index === at % part.length ? junk : item)
    } else if (field === "tools" && typeof part === "object" && part !== null) {
      const keys = Object.keys(part)
      const tools: Record<string, unknown> = { ...part, [keys.length === 0 ? "" : keys[at % keys.length]!]: junk }
      // A key only Reflect.ownKeys sees, which Schema refuses.
      if (at % 7 === 0) Object.defineProperty(tools, "hidden", { value: { allow: true }, enumerable: false })
      copy[field] = tools
    } else if (typeof part === "object" && part !== null) {
      copy[field] = { ...part, [at % 2 === 0 ? "allow" : "allow_models"]: [junk] }
    } else {
      copy[field] = junk
    }
    return copy
  })

/** A valid document's encoded form with one top-level field replaced by arbitrary junk. */
const corrupted = fc.tuple(
  encodedDocument,
  fc.constantFrom("id", "scope", "tools", "network", "llm", "messages", "budgets", "approval_timeout_s"),
  fc.anything()
).map(([document, field, junk]) => ({ field, input: { ...document, [field]: junk } }))

describe("decoding properties", () => {
  it.prop("any junk YAML text is a document or an InvalidPolicy listing problems, never a throw", [
    fc.oneof(
      fc.string(),
      fc.fullUnicodeString(),
      fc.array(fc.constantFrom("id:", "scope:", "{", "}", "[", "]", "- ", "  ", "\n", ":", "&a", "*a", "!!", "?", "'", "\"", "#", "---", "tools:", "kind: team"))
        .map((parts) => parts.join(""))
    )
  ], ([text]) => {
    let result: Either.Either<PolicyDocument, InvalidPolicy>
    try {
      result = parsePolicy(text)
    } catch (thrown) {
      throw new Error(`threw: ${String(thrown)}`)
    }
    if (Either.isLeft(result)) {
      expect(result.left).toBeInstanceOf(InvalidPolicy)
      expect(result.left.problems.length).toBeGreaterThan(0)
    }
  }, { fastCheck: { numRuns: 1000 } })

  it.prop("any junk value is an InvalidPolicy listing problems", [notAPolicy], ([junk]) => {
    problemsOf(() => decodePolicy(junk))
  }, { fastCheck: { numRuns: 500 } })

  it.prop("junk YAML made from junk values is an InvalidPolicy too", [notAPolicy], ([junk]) => {
    let text: string
    try {
      text = stringify(junk)
    } catch {
      return // not representable in YAML (a symbol, a function): nothing to parse
    }
    problemsOf(() => parsePolicy(text))
  }, { fastCheck: { numRuns: 300 } })

  it.prop("junk in one field is reported under that field only", [corrupted], ([{ field, input }]) => {
    const result = decodePolicy(input)
    if (Either.isLeft(result)) {
      for (const problem of result.left.problems) {
        expect(problem.path === field || problem.path.startsWith(`${field}.`)).toBe(true)
      }
    }
  }, { fastCheck: { numRuns: 300 } })

  it.prop("a valid document round-trips through its encoded form and through YAML text", [Arbitrary.make(PolicyDocument)], ([document]) => {
    const encoded = Schema.encodeSync(PolicyDocument)(document)
    expect(decodePolicy(encoded)).toEqual(Either.right(document))
    expect(parsePolicy(stringify(encoded))).toEqual(Either.right(document))
  }, { fastCheck: { numRuns: 100 } })

  it.prop("decodes as Schema alone does, field order and every problem included, whatever the document", [
    fc.oneof(encodedDocument, corrupted.map(({ input }) => input), corruptedPart, notAPolicy)
  ], ([input]) => {
    // What is not a mapping decodePolicy words itself (tested above).
    fc.pre(typeof input === "object" && input !== null && !Array.isArray(input))
    const reference = bySchema(input)
    const decoded = decodePolicy(input)
    if (Either.isRight(reference)) {
      expect(Either.isRight(decoded) && JSON.stringify(decoded.right)).toBe(JSON.stringify(reference.right))
    } else if (Either.isLeft(decoded)) {
      const problems = ParseResult.ArrayFormatter.formatErrorSync(reference.left).map((issue) =>
        `${issue.path.map(String).join(".")}: ${issue.message}`
      )
      expect(new Set(decoded.left.problems.map(({ message, path }) => `${path}: ${message}`))).toEqual(new Set(problems))
    } else {
      throw new Error(`accepted what Schema refuses: ${JSON.stringify(decoded.right)}`)
    }
  }, { fastCheck: { numRuns: 500 } })
})

// ---------------------------------------------------------------------------
// Globs

/** The reference: a regular expression with every other character escaped. */
const globByRegExp = (pattern: string, value: string) =>
  new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("[\\s\\S]*")}$`).test(value)

describe("globMatch", () => {
  it("matches * against any run of characters, also an empty one", () => {
    expect(globMatch("*", "")).toBe(true)
    expect(globMatch("*", "anything")).toBe(true)
    expect(globMatch("claude-*", "claude-3-opus")).toBe(true)
    expect(globMatch("claude-*", "claude-")).toBe(true)
    expect(globMatch("claude-*", "gpt-4o")).toBe(false)
    expect(globMatch("gpt-4o", "gpt-4o")).toBe(true)
    expect(globMatch("gpt-4o", "gpt-4o-mini")).toBe(false)
    expect(globMatch("payments.*", "payments.send")).toBe(true)
    expect(globMatch("*.send", "payments.send")).toBe(true)
    expect(globMatch("a*b*c", "abc")).toBe(true)
    expect(globMatch("a*b*c", "aXbYbZc")).toBe(true)
    expect(globMatch("a*b*c", "acb")).toBe(false)
    expect(globMatch("a*a", "a")).toBe(false)
    expect(globMatch("ab*ba", "aba")).toBe(false)
    expect(globMatch("**", "x")).toBe(true)
  })

  it("treats host wildcards as documented: *.example.com covers subdomains, not the domain itself", () => {
    expect(globMatch("*.example.com", "a.example.com")).toBe(true)
    expect(globMatch("*.example.com", "a.b.example.com")).toBe(true)
    expect(globMatch("*.example.com", "example.com")).toBe(false)
    expect(globMatch("*.example.com", "evilexample.com")).toBe(false)
    expect(globMatch("*.example.com", "a.example.com.evil.org")).toBe(false)
  })

  it("takes regular expression characters literally", () => {
    expect(globMatch("a.c", "abc")).toBe(false)
    expect(globMatch("a+(b)", "a+(b)")).toBe(true)
    expect(globMatch("[x]*", "[x]y")).toBe(true)
  })

  it("stays fast on patterns that make backtracking regular expressions explode", () => {
    const matches = compileGlob(`${"a*".repeat(30)}b`)
    expect(matches("a".repeat(5000))).toBe(false)
  })

  it.prop("agrees with a regular expression reference", [
    fc.stringOf(fc.constantFrom("a", "b", ".", "*", "-")),
    fc.stringOf(fc.constantFrom("a", "b", ".", "-"))
  ], ([pattern, value]) => {
    expect(globMatch(pattern, value)).toBe(globByRegExp(pattern, value))
  }, { fastCheck: { numRuns: 3000 } })
})

// ---------------------------------------------------------------------------
// Evaluation

const expectDecision = (decision: Decision, expected: Partial<Decision>) => expect(decision).toMatchObject(expected)

describe("evaluate: tool calls", () => {
  const research = valid(exampleYaml)

  it("allows a tool its rule allows", () => {
    expect(evaluate([research], toolCall("web.search"), context())).toEqual({
      decision: "allow",
      reason: "tool web.search is allowed",
      rule: "policy research-tools: tools.web.search",
      policy_id: "research-tools"
    })
  })

  it("denies a tool that only the * fallback covers", () => {
    expect(evaluate([research], toolCall("shell.exec"), context())).toEqual({
      decision: "deny",
      reason: "tool shell.exec is not allowed (by the rule for *)",
      rule: "policy research-tools: tools.*.allow",
      policy_id: "research-tools"
    })
  })

  it("denies a tool whose rule says allow: false", () => {
    const document = policy({ id: "p", tools: { "*": { allow: true }, "shell.exec": { allow: false } } })
    expectDecision(evaluate([document], toolCall("shell.exec"), context()), {
      decision: "deny",
      reason: "tool shell.exec is not allowed",
      rule: "policy p: tools.shell.exec.allow"
    })
  })

  it("denies once the hourly limit is reached, asking for that tool's count", () => {
    const asked: Array<string> = []
    const counting = (calls: number) =>
      context({
        callsInLastHour: (tool) => {
          asked.push(tool)
          return calls
        }
      })
    expectDecision(evaluate([research], toolCall("web.search"), counting(99)), { decision: "allow" })
    expect(evaluate([research], toolCall("web.search"), counting(100))).toEqual({
      decision: "deny",
      reason: "tool web.search reached its limit of 100 calls per hour (100 in the last hour)",
      rule: "policy research-tools: tools.web.search.limit_per_hour",
      policy_id: "research-tools"
    })
    expectDecision(evaluate([research], toolCall("web.search"), counting(250)), { decision: "deny" })
    expect(asked).toEqual(["web.search", "web.search", "web.search"])
  })

  it("does not count calls for a rule without a limit", () => {
    const counted = context({
      callsInLastHour: () => {
        throw new Error("should not be asked")
      }
    })
    expectDecision(evaluate([research], toolCall("email.send"), counted), { decision: "redact" })
  })

  it("denies when the call count is unusable, since the limit cannot be checked", () => {
    expectDecision(evaluate([research], toolCall("web.search"), context({ callsInLastHour: () => Number.NaN })), {
      decision: "deny",
      reason: "tool web.search has an hourly limit and its call count is unavailable"
    })
  })

  it("applies a limit under * to each tool separately", () => {
    const document = policy({ id: "p", tools: { "*": { allow: true, limit_per_hour: 2 } } })
    const calls = context({ callsInLastHour: (tool) => tool === "busy" ? 2 : 1 })
    expectDecision(evaluate([document], toolCall("busy"), calls), { decision: "deny", rule: "policy p: tools.*.limit_per_hour" })
    expectDecision(evaluate([document], toolCall("quiet"), calls), { decision: "allow" })
  })

  it("asks for approval when the condition holds, with the deciding policy's timeout", () => {
    expect(evaluate([research], toolCall("payments.send", { amount: 5000, currency: "USD" }), context())).toEqual({
      decision: "pending",
      reason: "approval required for tool payments.send: args.amount > 1000 AND args.currency == 'USD'",
      rule: "policy research-tools: tools.payments.send.requires_approval_if",
      policy_id: "research-tools",
      approval_timeout_s: 120
    })
  })

  it("uses the default approval timeout of 300 s", () => {
    const document = policy({ id: "p", tools: { pay: { allow: true, requires_approval_if: "args.amount > 0" } } })
    expectDecision(evaluate([document], toolCall("pay", { amount: 1 }), context()), {
      decision: "pending",
      approval_timeout_s: 300
    })
  })

  it("allows when the condition does not hold", () => {
    for (const args of [{ amount: 500, currency: "USD" }, { amount: 5000, currency: "EUR" }, { amount: "5000", currency: "EUR" }]) {
      expectDecision(evaluate([research], toolCall("payments.send", args), context()), { decision: "allow" })
    }
  })

  it("fails safe to pending when the condition cannot be evaluated on the call: a field of the wrong type, or missing", () => {
    const document = policy({ id: "p", tools: { pay: { allow: true, requires_approval_if: "args.amount > 1000" } } })
    expect(evaluate([document], toolCall("pay", { amount: "5000" }), context())).toEqual({
      decision: "pending",
      reason:
        "approval required for tool pay: the condition \"args.amount > 1000\" cannot be evaluated on this call (args.amount > 1000: args.amount is a string, not a number), so it fails safe",
      rule: "policy p: tools.pay.requires_approval_if",
      policy_id: "p",
      approval_timeout_s: 300
    })
    for (const args of [{}, { amount: null }, { amount: [5000] }, { amount: { value: 5000 } }, { amount: true }, null, "text", 5000]) {
      expectDecision(evaluate([document], toolCall("pay", args), context()), { decision: "pending" })
    }
    // Undecided only where it matters: a part that is false makes an AND false whatever the rest.
    for (const args of [{ amount: "5000", currency: "USD" }, { amount: 5000 }, {}]) {
      expectDecision(evaluate([research], toolCall("payments.send", args), context()), { decision: "pending" })
    }
  })

  it("lets the condition see the tool and the acting agent", () => {
    const document = policy({
      id: "p",
      tools: { "*": { allow: true, requires_approval_if: "agent.team_id == 'research' AND tool starts_with 'pay'" } }
    })
    expectDecision(evaluate([document], toolCall("payments.send"), context()), { decision: "pending" })
    expectDecision(evaluate([document], toolCall("web.search"), context()), { decision: "allow" })
    expectDecision(
      evaluate([document], toolCall("payments.send"), context({ agent: { agent_id: "ada", team_id: "ops" } })),
      { decision: "allow" }
    )
  })

  it("fails safe to pending when the condition does not parse, with the parse error in the reason", () => {
    const document = policy({ id: "p", tools: { pay: { allow: true, requires_approval_if: "args.amount >> 5" } } })
    expect(evaluate([document], toolCall("pay", { amount: 1 }), context())).toEqual({
      decision: "pending",
      reason:
        "approval required for tool pay: the condition \"args.amount >> 5\" does not parse (expected a value (a number, a quoted string, true, false or null), found \">\" at position 13), so it fails safe",
      rule: "policy p: tools.pay.requires_approval_if",
      policy_id: "p",
      approval_timeout_s: 300
    })
  })

  it("redacts the listed paths of an allowed call", () => {
    expect(evaluate([research], toolCall("email.send"), context())).toEqual({
      decision: "redact",
      reason: "tool email.send is allowed with args.body redacted",
      rule: "policy research-tools: tools.email.send.redact",
      policy_id: "research-tools",
      redact: ["args.body"]
    })
  })

  it("orders a rule's checks: allow, then limit, then condition, then redaction", () => {
    const rule = { limit_per_hour: 1, requires_approval_if: "args.big == true", redact: ["args.secret"] }
    const allowed = policy({ id: "p", tools: { t: { allow: true, ...rule } } })
    const denied = policy({ id: "p", tools: { t: { allow: false, ...rule } } })
    const full = context({ callsInLastHour: () => 1 })
    expectDecision(evaluate([denied], toolCall("t", { big: true }), full), { decision: "deny", rule: "policy p: tools.t.allow" })
    expectDecision(evaluate([allowed], toolCall("t", { big: true }), full), { decision: "deny", rule: "policy p: tools.t.limit_per_hour" })
    expectDecision(evaluate([allowed], toolCall("t", { big: true }), context()), {
      decision: "pending",
      redact: ["args.secret"]
    })
    expectDecision(evaluate([allowed], toolCall("t", { big: false }), context()), { decision: "redact", redact: ["args.secret"] })
  })

  it("picks the exact rule, then the most specific pattern, then *", () => {
    const document = policy({
      id: "p",
      tools: {
        "*": { allow: false },
        "pay*": { allow: true, redact: ["args.a"] },
        "payments.*": { allow: true, redact: ["args.b"] },
        "payments.send": { allow: true }
      }
    })
    expectDecision(evaluate([document], toolCall("payments.send"), context()), { decision: "allow", rule: "policy p: tools.payments.send" })
    expectDecision(evaluate([document], toolCall("payments.refund"), context()), {
      decision: "redact",
      rule: "policy p: tools.payments.*.redact"
    })
    expectDecision(evaluate([document], toolCall("payroll"), context()), { decision: "redact", rule: "policy p: tools.pay*.redact" })
    expectDecision(evaluate([document], toolCall("email.send"), context()), { decision: "deny", rule: "policy p: tools.*.allow" })
  })

  it("breaks a tie between equally specific patterns by document order", () => {
    const document = policy({ id: "p", tools: { "a*": { allow: false }, "*b": { allow: true } } })
    expectDecision(evaluate([document], toolCall("ab"), context()), { decision: "deny", rule: "policy p: tools.a*.allow" })
  })

  it("denies a tool no applicable policy covers (closed world)", () => {
    expect(evaluate([], toolCall("web.search"), context())).toEqual({
      decision: "deny",
      reason: "no applicable policy has a rule for tool web.search",
      rule: "default: no rule covers this tool"
    })
    const unrelated = policy({ id: "p", tools: { "email.send": { allow: true } }, network: { allow: ["*"] } })
    expectDecision(evaluate([unrelated], toolCall("web.search"), context()), { rule: "default: no rule covers this tool" })
  })
})

describe("evaluate: network and LLM calls", () => {
  const research = valid(exampleYaml)

  it("allows a host on the allowlist, wildcards included", () => {
    expect(evaluate([research], network("a.b.example.com"), context())).toEqual({
      decision: "allow",
      reason: "host a.b.example.com matches *.example.com",
      rule: "policy research-tools: network.allow.0",
      policy_id: "research-tools"
    })
    expectDecision(evaluate([research], network("api.openai.com"), context()), { decision: "allow", rule: "policy research-tools: network.allow.1" })
  })

  it("compares hosts without case and without the root's trailing dot", () => {
    expectDecision(evaluate([research], network("API.Example.COM."), context()), { decision: "allow" })
    const upper = policy({ id: "p", network: { allow: ["*.EXAMPLE.com"] } })
    expectDecision(evaluate([upper], network("a.example.com"), context()), { decision: "allow" })
  })

  it("denies a host off the allowlist", () => {
    expect(evaluate([research], network("example.com"), context())).toEqual({
      decision: "deny",
      reason: "host example.com matches no entry of network.allow",
      rule: "policy research-tools: network.allow",
      policy_id: "research-tools"
    })
    expectDecision(evaluate([research], network("api.openai.com:443"), context()), { decision: "deny" })
    expectDecision(evaluate([policy({ id: "p", network: { allow: [] } })], network("a.example.com"), context()), { decision: "deny" })
  })

  it("denies network and LLM calls no applicable policy covers", () => {
    const toolsOnly = policy({ id: "p", tools: { "*": { allow: true } } })
    expect(evaluate([toolsOnly], network("a.example.com"), context())).toEqual({
      decision: "deny",
      reason: "no applicable policy allows host a.example.com",
      rule: "default: no rule covers this host"
    })
    expect(evaluate([toolsOnly], llm("gpt-4o"), context())).toEqual({
      decision: "deny",
      reason: "no applicable policy allows model gpt-4o",
      rule: "default: no rule covers this model"
    })
  })

  it("allows the models on the list, and no other", () => {
    expectDecision(evaluate([research], llm("claude-3-5-sonnet"), context()), {
      decision: "allow",
      rule: "policy research-tools: llm.allow_models.0"
    })
    expectDecision(evaluate([research], llm("gpt-4o"), context()), { decision: "allow", rule: "policy research-tools: llm.allow_models.1" })
    expect(evaluate([research], llm("gpt-4o-mini"), context())).toEqual({
      decision: "deny",
      reason: "model gpt-4o-mini matches no entry of llm.allow_models",
      rule: "policy research-tools: llm.allow_models",
      policy_id: "research-tools"
    })
  })

  it("intersects the allowlists of several applicable policies", () => {
    const global = policy({ id: "global", network: { allow: ["*.example.com", "api.openai.com"] } })
    const team = policy({ id: "team", scope: { kind: "team", id: "research" }, network: { allow: ["*.example.com"] } })
    expectDecision(evaluate([global, team], network("a.example.com"), context()), { decision: "allow", policy_id: "team" })
    expectDecision(evaluate([global, team], network("api.openai.com"), context()), { decision: "deny", policy_id: "team" })
  })
})

describe("evaluate: messages", () => {
  const research = valid(exampleYaml)
  const to = (team_id: string | undefined, agent_id = "bob") => context({ recipient: { agent_id, team_id } })

  it("allows every message when no applicable policy has message rules", () => {
    expect(evaluate([policy({ id: "p", tools: {} })], message("bob"), context())).toEqual({
      decision: "allow",
      reason: "no applicable policy restricts messages",
      rule: "default: no policy governs messages"
    })
    expectDecision(evaluate([], message("bob"), context()), { decision: "allow" })
  })

  it("lets the first matching rule decide, in document order", () => {
    expect(evaluate([research], message("bob", "DATA"), to("finance"))).toEqual({
      decision: "allow",
      reason: "DATA message from ada to bob is allowed",
      rule: "policy research-tools: messages.0",
      policy_id: "research-tools"
    })
    expect(evaluate([research], message("bob", "CONTROL"), to("finance"))).toEqual({
      decision: "deny",
      reason: "CONTROL message from ada to bob is not allowed",
      rule: "policy research-tools: messages.1",
      policy_id: "research-tools"
    })
  })

  it("denies a message no rule matches", () => {
    expect(evaluate([research], message("bob", "CONTROL"), to("ops"))).toEqual({
      decision: "deny",
      reason: "CONTROL message from ada to bob is not allowed: no message rule matches",
      rule: "policy research-tools: messages",
      policy_id: "research-tools"
    })
    expectDecision(evaluate([policy({ id: "p", messages: [] })], message("bob"), to("ops")), { decision: "deny" })
  })

  it("matches the sender's team, and an agent-less team never matches a team rule", () => {
    const document = policy({ id: "p", messages: [{ from: { team: "research" }, to: "*", allow: true }] })
    expectDecision(evaluate([document], message("bob"), to("ops")), { decision: "allow" })
    const teamless = context({ agent: { agent_id: "ada" }, recipient: { agent_id: "bob", team_id: "ops" } })
    expectDecision(evaluate([document], message("bob"), teamless), { decision: "deny", rule: "policy p: messages" })
  })

  it("matches agents by glob, and needs both team and agent when a party names both", () => {
    const document = policy({
      id: "p",
      messages: [{ from: "*", to: { team: "ops", agent: "bot-*" }, allow: true }]
    })
    expectDecision(evaluate([document], message("bot-7"), to("ops", "bot-7")), { decision: "allow" })
    expectDecision(evaluate([document], message("bot-7"), to("finance", "bot-7")), { decision: "deny" })
    expectDecision(evaluate([document], message("human"), to("ops", "human")), { decision: "deny" })
  })

  it("fails closed when the recipient's team is unknown: deny rules that need it match, allow rules do not", () => {
    const unknownTeam = context()
    expectDecision(evaluate([research], message("bob", "CONTROL"), unknownTeam), {
      decision: "deny",
      reason: "CONTROL message from ada to bob is not allowed: the recipient's team is unknown and this rule denies",
      rule: "policy research-tools: messages.1"
    })
    const allowToOps = policy({ id: "p", messages: [{ from: "*", to: { team: "ops" }, allow: true }] })
    expectDecision(evaluate([allowToOps], message("bob"), unknownTeam), { decision: "deny", rule: "policy p: messages" })
    const knownTeamless = to(undefined)
    expectDecision(evaluate([research], message("bob", "CONTROL"), knownTeamless), { decision: "deny", rule: "policy research-tools: messages" })
  })
})

describe("evaluate: several policies", () => {
  const global = policy({ id: "global", tools: { "*": { allow: false }, "web.search": { allow: true }, "email.send": { allow: true } } })
  const team = policy({
    id: "team",
    scope: { kind: "team", id: "research" },
    tools: { "web.search": { allow: true, limit_per_hour: 10 }, "payments.send": { allow: true } }
  })
  const agent = policy({ id: "agent", scope: { kind: "agent", id: "ada" }, tools: { "web.search": { allow: true } } })
  const tool = policy({
    id: "tool",
    scope: { kind: "tool", id: "web.*" },
    tools: { "*": { allow: true, requires_approval_if: "args.q contains 'secret'" } }
  })

  it("finds the applicable policies, least specific scope first", () => {
    const all = [tool, agent, team, global]
    expect(applicablePolicies(all, toolCall("web.search"), context()).map((p) => p.id)).toEqual(["global", "team", "agent", "tool"])
    expect(applicablePolicies(all, toolCall("email.send"), context()).map((p) => p.id)).toEqual(["global", "team", "agent"])
    expect(applicablePolicies(all, toolCall("web.search", {}, "bob"), context({ agent: { agent_id: "bob" } })).map((p) => p.id))
      .toEqual(["global", "tool"])
    const eve = context({ agent: { agent_id: "eve", team_id: "ops" } })
    expect(applicablePolicies(all, { kind: "network", agent_id: "eve", host: "x.com" }, eve).map((p) => p.id)).toEqual(["global"])
    expect(applicablePolicies(all.map(compilePolicy), network("x.com"), context()).map((p) => p.id)).toEqual(["global", "team", "agent"])
  })

  it("matches scope ids as globs", () => {
    const bots = policy({ id: "bots", scope: { kind: "agent", id: "bot-*" }, tools: { "*": { allow: false } } })
    expect(applicablePolicies([bots], toolCall("x", {}, "bot-1"), context({ agent: { agent_id: "bot-1" } }))).toEqual([bots])
    expect(applicablePolicies([bots], toolCall("x"), context())).toEqual([])
  })

  it("lets the most restrictive decision win, whatever the scope", () => {
    // The global * denies payments.send although the team allows it: a global fallback is a ceiling.
    expectDecision(evaluate([global, team], toolCall("payments.send"), context()), { decision: "deny", policy_id: "global" })
    // The team's hourly limit denies although global and agent allow.
    expectDecision(evaluate([global, team, agent], toolCall("web.search"), context({ callsInLastHour: () => 10 })), {
      decision: "deny",
      policy_id: "team"
    })
    // The tool policy's condition makes it pending.
    expectDecision(evaluate([global, team, agent, tool], toolCall("web.search", { q: "the secret plan" }), context()), {
      decision: "pending",
      policy_id: "tool"
    })
  })

  it("gives the reason and rule of the most specific scope on a tie", () => {
    expect(evaluate([tool, agent, team, global], toolCall("web.search", { q: "weather" }), context())).toEqual({
      decision: "allow",
      reason: "tool web.search is allowed (by the rule for *)",
      rule: "policy tool: tools.*",
      policy_id: "tool"
    })
    expectDecision(evaluate([global, team, agent], toolCall("web.search"), context()), { decision: "allow", policy_id: "agent" })
    const second = policy({ id: "second", tools: { "web.search": { allow: true } } })
    expectDecision(evaluate([global, second], toolCall("web.search"), context()), { policy_id: "global" })
  })

  it("lets a policy without an opinion abstain", () => {
    // Only the team covers payments.send once the global has no fallback.
    const globalWithoutFallback = policy({ id: "global", tools: { "web.search": { allow: true } } })
    expectDecision(evaluate([globalWithoutFallback, team], toolCall("payments.send"), context()), {
      decision: "allow",
      policy_id: "team"
    })
  })

  it("redacts the union of every applicable policy's paths", () => {
    const a = policy({ id: "a", tools: { mail: { allow: true, redact: ["args.body", "args.cc"] } } })
    const b = policy({ id: "b", scope: { kind: "team", id: "research" }, tools: { mail: { allow: true, redact: ["args.cc", "args.to"] } } })
    const c = policy({ id: "c", scope: { kind: "agent", id: "ada" }, tools: { mail: { allow: true, requires_approval_if: "args.big == true" } } })
    expectDecision(evaluate([a, b], toolCall("mail"), context()), {
      decision: "redact",
      policy_id: "b",
      redact: ["args.body", "args.cc", "args.to"]
    })
    expect(evaluate([a, b, c], toolCall("mail", { big: true }), context())).toEqual({
      decision: "pending",
      reason: "approval required for tool mail: args.big == true",
      rule: "policy c: tools.mail.requires_approval_if",
      policy_id: "c",
      redact: ["args.body", "args.cc", "args.to"],
      approval_timeout_s: 300
    })
    const deny = policy({ id: "d", tools: { mail: { allow: false } } })
    expect(evaluate([a, deny], toolCall("mail"), context()).redact).toBeUndefined()
  })

  it("denies when the action and the context name different agents", () => {
    expect(evaluate([global], toolCall("web.search", {}, "mallory"), context())).toEqual({
      decision: "deny",
      reason: "the action is by mallory but the context describes ada",
      rule: "default: inconsistent context"
    })
    expectDecision(evaluate([], message("bob"), context({ recipient: { agent_id: "carol" } })), {
      decision: "deny",
      rule: "default: inconsistent context"
    })
  })

  it("gives the same decision for documents and their compiled forms", () => {
    const policies = [global, team, agent, tool]
    const compiled = policies.map(compilePolicy)
    for (const action of [toolCall("web.search", { q: "secret" }), toolCall("payments.send"), toolCall("nope"), network("a.com")]) {
      expect(evaluate(compiled, action, context())).toEqual(evaluate(policies, action, context()))
    }
    expect(compilePolicy(global)).toBe(compilePolicy(global))
  })

  it("lists the budgets of the applicable policies", () => {
    const withBudget = policy({
      id: "team",
      scope: { kind: "team", id: "research" },
      budgets: [{ currency: "USD", limit: 100, per: "agent" }]
    })
    const otherTeam = policy({ id: "ops", scope: { kind: "team", id: "ops" }, budgets: [{ currency: "USD", limit: 5, per: "team" }] })
    expect(applicableBudgets([withBudget, otherTeam], toolCall("x"), context())).toEqual([
      { policy_id: "team", scope: { kind: "team", id: "research" }, budget: { currency: "USD", limit: 100, per: "agent" } }
    ])
  })
})

// ---------------------------------------------------------------------------
// Properties of evaluation

const names = fc.constantFrom("web.search", "payments.send", "email.send", "shell.exec", "a.example.com", "ada", "bob", "research", "ops")

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant("tool_call" as const), agent_id: fc.constant("ada"), tool: fc.oneof(names, fc.string()), args: fc.jsonValue() }),
  fc.record({
    kind: fc.constant("message" as const),
    agent_id: fc.constant("ada"),
    to: fc.oneof(names, fc.string()),
    message_type: fc.constantFrom("DATA", "CONTROL", "TOOL_CALL")
  }),
  fc.record({ kind: fc.constant("network" as const), agent_id: fc.constant("ada"), host: fc.oneof(names, fc.domain(), fc.string()) }),
  fc.record({ kind: fc.constant("llm_call" as const), agent_id: fc.constant("ada"), model: fc.oneof(fc.constantFrom("gpt-4o", "claude-3"), fc.string()) })
)

/** Documents whose names often meet the actions above, with conditions both valid and broken. */
const documents = fc.array(
  fc.record({
    id: fc.constantFrom("p1", "p2", "p3"),
    scope: fc.oneof(
      fc.constant({ kind: "global" as const }),
      fc.record({ kind: fc.constantFrom("team" as const, "agent" as const, "tool" as const), id: fc.oneof(names, fc.constant("*")) })
    ),
    tools: fc.dictionary(
      fc.oneof(names, fc.constantFrom("*", "web.*", "*.send")),
      fc.record({
        allow: fc.boolean(),
        limit_per_hour: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
        requires_approval_if: fc.option(fc.constantFrom("args.amount > 10", "args ==", "tool contains 'pay'"), { nil: undefined }),
        redact: fc.option(fc.constantFrom(["args.body"], ["args.to"]), { nil: undefined })
      }, { requiredKeys: ["allow"] })
    ),
    network: fc.option(fc.record({ allow: fc.array(fc.constantFrom("*.example.com", "a.example.com", "*")) }), { nil: undefined }),
    messages: fc.option(
      fc.array(fc.record({
        from: fc.constantFrom("*" as const, { team: "research" }),
        to: fc.constantFrom("*" as const, { team: "ops" }, { agent: "bob" }),
        allow: fc.boolean()
      })),
      { nil: undefined }
    )
  }, { requiredKeys: ["id", "scope"] }).map((input) => {
    const result = decodePolicy(JSON.parse(JSON.stringify(input)))
    if (Either.isLeft(result)) throw new Error(result.left.message)
    return result.right
  }),
  { maxLength: 4 }
)

const someContext = fc.record({
  team: fc.option(fc.constantFrom("research", "ops"), { nil: undefined }),
  recipientTeam: fc.option(fc.option(fc.constantFrom("research", "ops"), { nil: undefined }), { nil: null }),
  calls: fc.nat({ max: 6 })
})

const contextFor = (given: { team: string | undefined; recipientTeam: string | undefined | null; calls: number }, act: Action) =>
  context({
    agent: { agent_id: "ada", team_id: given.team },
    ...(act.kind === "message" && given.recipientTeam !== null ? { recipient: { agent_id: act.to, team_id: given.recipientTeam } } : {}),
    callsInLastHour: () => given.calls
  })

describe("evaluation properties", () => {
  it.prop("always decides, with a reason and a rule, without throwing", [documents, action, someContext], ([policies, act, given]) => {
    const decision = evaluate(policies, act, contextFor(given, act))
    expect(Object.keys(restrictiveness)).toContain(decision.decision)
    expect(decision.reason.length).toBeGreaterThan(0)
    expect(decision.rule).toMatch(/^(policy |default: )/)
    if (decision.decision === "pending") expect(decision.approval_timeout_s).toBeGreaterThan(0)
    if (decision.decision === "redact") expect(decision.redact?.length).toBeGreaterThan(0)
  }, { fastCheck: { numRuns: 1000 } })

  it.prop("the verdict does not depend on the order of the policies", [documents, action, someContext], ([policies, act, given]) => {
    const reversed = [...policies].reverse()
    expect(evaluate(reversed, act, contextFor(given, act)).decision).toBe(evaluate(policies, act, contextFor(given, act)).decision)
  }, { fastCheck: { numRuns: 500 } })

  it.prop("a policy that alone denies makes the whole set deny", [documents, action, someContext], ([policies, act, given]) => {
    const ctx = contextFor(given, act)
    const denies = applicablePolicies(policies, act, ctx).some((one) => {
      const alone = evaluate([one], act, ctx)
      return alone.decision === "deny" && alone.rule.startsWith("policy ")
    })
    if (denies) expect(evaluate(policies, act, ctx).decision).toBe("deny")
  }, { fastCheck: { numRuns: 500 } })

  it.prop("the combined verdict is the most restrictive of the single policies' verdicts, when any has an opinion", [
    documents,
    action,
    someContext
  ], ([policies, act, given]) => {
    const ctx = contextFor(given, act)
    const opinions = applicablePolicies(policies, act, ctx)
      .map((one) => evaluate([one], act, ctx))
      .filter((alone) => alone.rule.startsWith("policy "))
    fc.pre(opinions.length > 0)
    const strictest = Math.max(...opinions.map((alone) => restrictiveness[alone.decision]))
    expect(restrictiveness[evaluate(policies, act, ctx).decision]).toBe(strictest)
  }, { fastCheck: { numRuns: 500 } })
})

describe("policy size", () => {
  it("refuses a text longer than maxPolicyBytes before parsing it", () => {
    const rules = Array.from({ length: 20_000 }, (_, i) => `  tool.${i}: { allow: true }`).join("\n")
    const text = `id: big\nscope: { kind: global }\ntools:\n${rules}\n`
    expect(text.length).toBeGreaterThan(maxPolicyBytes)
    const parsed = parsePolicy(text)
    expect(Either.isLeft(parsed) && parsed.left.problems).toEqual([{ path: "", message: `a policy is at most ${maxPolicyBytes} bytes of UTF-8, got ${text.length}` }])
    // Counted in bytes: 100,000 three-byte characters are too many, though fewer than the limit.
    const wide = `id: wide\nscope: { kind: global }\nnetwork: { allow: ["${"界".repeat(100_000)}"] }\n`
    expect(wide.length).toBeLessThan(maxPolicyBytes)
    expect(Either.isLeft(parsePolicy(wide))).toBe(true)
  })

  it("reads a policy at the size limit in slices, pausing between them", () => {
    const rules = Array.from({ length: 8_000 }, (_, i) => `  t${i}: { allow: true }`).join("\n")
    const text = `id: big\nscope: { kind: global }\ntools:\n${rules}\n`
    expect(text.length).toBeLessThan(maxPolicyBytes)
    const reading = readPolicy(text)
    let pauses = 0
    let step = reading.next()
    for (; step.done !== true; step = reading.next()) pauses++
    expect(pauses).toBeGreaterThan(10)
    expect(Either.isRight(step.value) && Object.keys(step.value.right.tools ?? {}).length).toBe(8_000)
  })
})
