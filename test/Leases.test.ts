/**
 * Leases: glob matching in both syntaxes, checkLease (expiry first, then the
 * namespace's patterns, fs paths normalised), and checkDelegation, whose glob
 * subset test must be sound: a child it accepts never reaches a resource, at
 * any time, that its parent could not.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Option } from "effect"
import {
  checkDelegation,
  checkLease,
  type GlobSyntax,
  globSyntaxOf,
  leaseGlobCovers,
  leaseGlobMatch
} from "../src/model/Leases.js"
import { LeaseExpired, LeaseSubsetViolation, PermissionDenied } from "../src/schema/Errors.js"
import type { Lease, LeaseNamespace } from "../src/schema/Lease.js"

const lease = (grants: Lease["grants"], expires_at?: number, lease_id = "L"): Lease => ({
  lease_id,
  agent_id: "agent-1",
  grants,
  ...(expires_at === undefined ? {} : { expires_at })
})

const leftOf = <E>(either: Either.Either<unknown, E>): E => Option.getOrThrow(Either.getLeft(either))

/** The failure, checked to be an instance of `type`. */
const failureAs = <E, T extends E>(either: Either.Either<unknown, E>, type: new(...args: any) => T): T => {
  const error = leftOf(either)
  expect(error).toBeInstanceOf(type)
  return error as T
}

// ---------------------------------------------------------------------------
// Globs

describe("leaseGlobMatch", () => {
  const cases: ReadonlyArray<readonly [GlobSyntax, string, string, boolean]> = [
    ["path", "/data/*", "/data/a", true],
    ["path", "/data/*", "/data/", true],
    ["path", "/data/*", "/data/a/b", false],
    ["path", "/data/*", "/data", false],
    ["path", "/data/**", "/data/a/b/c", true],
    ["path", "/data/**", "/data/", true],
    ["path", "/data/**", "/data", false],
    ["path", "/data/***", "/data/a/b", true],
    ["path", "/data/*.csv", "/data/x.csv", true],
    ["path", "/data/*.csv", "/data/x/y.csv", false],
    ["path", "/data/**.csv", "/data/x/y.csv", true],
    ["path", "/a/**/b", "/a/x/y/b", true],
    ["path", "/a/**/b", "/a/b", false],
    ["path", "/a/*/c/*", "/a/b/c/d", true],
    ["path", "/a/?", "/a/x", false],
    ["path", "/a/?", "/a/?", true],
    ["path", "/exact", "/exact", true],
    ["path", "/exact", "/exact/", false],
    ["path", "*", "", true],
    ["flat", "*.example.com", "api.example.com", true],
    ["flat", "*.example.com", "a.b.example.com", true],
    ["flat", "*.example.com", "example.com", false],
    ["flat", "*.example.com", "evil.com/.example.com", true],
    ["flat", "api.example.com", "API.example.com", false],
    ["flat", "gpt-4*", "gpt-4o-mini", true],
    ["flat", "gpt-4*", "gpt-3.5", false],
    ["flat", "*", "a/b/c", true],
    ["flat", "a*b*c", "abc", true],
    ["flat", "a*b*c", "aXbYcZ", false],
    ["flat", "[ab]", "a", false],
    ["flat", "a*", "a*", true]
  ]
  for (const [syntax, pattern, resource, expected] of cases) {
    it(`${syntax}: ${pattern} ${expected ? "matches" : "does not match"} ${JSON.stringify(resource)}`, () => {
      expect(leaseGlobMatch(pattern, resource, syntax)).toBe(expected)
    })
  }

  it("chooses the syntax by namespace", () => {
    expect(globSyntaxOf("fs.read")).toBe("path")
    expect(globSyntaxOf("fs.write")).toBe("path")
    for (const ns of ["net.fetch", "tool.call", "agent.delegate", "cost.budget", "model.use"] as const) {
      expect(globSyntaxOf(ns)).toBe("flat")
    }
  })

  it("stays linear on patterns that make backtracking matchers explode", () => {
    const pattern = "a*".repeat(30) + "b"
    const resource = "a".repeat(5_000)
    expect(leaseGlobMatch(pattern, resource, "flat")).toBe(false)
    expect(leaseGlobMatch(pattern, resource, "path")).toBe(false)
    expect(leaseGlobMatch(pattern, resource + "b", "path")).toBe(true)
  })
})

describe("leaseGlobCovers", () => {
  const cases: ReadonlyArray<readonly [GlobSyntax, string, string, boolean]> = [
    ["path", "/data/**", "/data/reports/*.csv", true],
    ["path", "/data/**", "/data/**", true],
    ["path", "/data/**", "/data/a/**/b", true],
    ["path", "/data/*", "/data/*.csv", true],
    ["path", "/data/*", "/data/x", true],
    ["path", "/data/*", "/data/**", false],
    ["path", "/data/*", "/data/*/x", false],
    ["path", "/data/*.csv", "/data/*", false],
    ["path", "/data/**", "/data", false],
    ["path", "/data/**", "/etc/**", false],
    ["path", "/data/**", "/data/../etc/**", true], // harmless: checkLease refuses any path with ..
    ["path", "**", "*", true],
    ["path", "*", "**", false],
    // a true subset that the token-by-token test refuses (documented, conservative)
    ["path", "**/*", "**/**", false],
    ["flat", "*.example.com", "api.example.com", true],
    ["flat", "*.example.com", "*.api.example.com", true],
    ["flat", "*.example.com", "*example.com", false],
    ["flat", "*.example.com", "*", false],
    ["flat", "*", "**", true],
    ["flat", "*", "anything/at*all", true],
    ["flat", "a*", "*a", false],
    ["flat", "search", "search", true],
    ["flat", "search", "search*", false],
    ["flat", "search", "*", false]
  ]
  for (const [syntax, parent, child, expected] of cases) {
    it(`${syntax}: ${parent} ${expected ? "covers" : "does not cover"} ${child}`, () => {
      expect(leaseGlobCovers(parent, child, syntax)).toBe(expected)
    })
  }
})

// ---------------------------------------------------------------------------
// checkLease

describe("checkLease", () => {
  const l = lease({ "fs.read": ["/data/**", "/etc/hosts"], "net.fetch": ["*.example.com"], "tool.call": ["search"] }, 1_000)

  it("grants what a pattern of the namespace matches", () => {
    expect(checkLease(l, "fs.read", "/data/a/b.txt", 0)).toEqual(Either.void)
    expect(checkLease(l, "fs.read", "/etc/hosts", 999)).toEqual(Either.void)
    expect(checkLease(l, "net.fetch", "api.example.com", 0)).toEqual(Either.void)
    expect(checkLease(l, "tool.call", "search", 0)).toEqual(Either.void)
  })

  it("denies what no pattern of the namespace matches, with a non-retryable PermissionDenied", () => {
    const denied = failureAs(checkLease(l, "fs.read", "/etc/passwd", 0), PermissionDenied)
    expect(denied.code).toBe("PERMISSION_DENIED")
    expect(denied.retryable).toBe(false)
    expect(denied.reason).toContain("/etc/passwd")
    // a pattern of another namespace does not count
    expect(leftOf(checkLease(l, "fs.write", "/data/a", 0))).toBeInstanceOf(PermissionDenied)
    expect(leftOf(checkLease(l, "model.use", "search", 0))).toBeInstanceOf(PermissionDenied)
    expect(leftOf(checkLease(l, "net.fetch", "example.com", 0))).toBeInstanceOf(PermissionDenied)
  })

  it("denies fs paths with . or .. segments whatever the patterns", () => {
    for (const path of ["/data/../etc/passwd", "/data/./a", "/data/a/..", "../data/a"]) {
      expect(leftOf(checkLease(l, "fs.read", path, 0))).toBeInstanceOf(PermissionDenied)
    }
    expect(checkLease(l, "fs.read", "/data/..a/.b/c..", 0)).toEqual(Either.void)
    // not a path namespace: dots are ordinary characters
    expect(checkLease(lease({ "net.fetch": ["*"] }), "net.fetch", "../x", 0)).toEqual(Either.void)
  })

  it("is expired at expires_at and after, before looking at patterns", () => {
    expect(checkLease(l, "fs.read", "/data/a", 999)).toEqual(Either.void)
    for (const now of [1_000, 1_001, 5_000]) {
      const expired = leftOf(checkLease(l, "fs.read", "/data/a", now))
      expect(expired).toBeInstanceOf(LeaseExpired)
      expect(expired).toMatchObject({ lease_id: "L", code: "LEASE_EXPIRED", retryable: false })
      expect(leftOf(checkLease(l, "fs.read", "/etc/passwd", now))).toBeInstanceOf(LeaseExpired)
    }
  })

  it("never expires without expires_at, and treats a NaN expiry as expired", () => {
    expect(checkLease(lease({ "tool.call": ["*"] }), "tool.call", "x", Number.MAX_SAFE_INTEGER)).toEqual(Either.void)
    expect(leftOf(checkLease(lease({ "tool.call": ["*"] }, Number.NaN), "tool.call", "x", 0))).toBeInstanceOf(LeaseExpired)
  })

  it("grants nothing for an empty or absent namespace", () => {
    expect(leftOf(checkLease(lease({ "tool.call": [] }), "tool.call", "", 0))).toBeInstanceOf(PermissionDenied)
    expect(leftOf(checkLease(lease({}), "tool.call", "x", 0))).toBeInstanceOf(PermissionDenied)
  })
})

// ---------------------------------------------------------------------------
// checkDelegation

describe("checkDelegation", () => {
  const parent = lease(
    { "fs.read": ["/data/**"], "fs.write": ["/data/out/*"], "net.fetch": ["*.example.com"], "model.use": ["gpt-4*"] },
    10_000,
    "P"
  )

  it("accepts a narrower child that expires no later", () => {
    const child = lease(
      { "fs.read": ["/data/reports/*.csv", "/data/x"], "net.fetch": ["api.example.com"], "model.use": ["gpt-4o"], "tool.call": [] },
      10_000,
      "C"
    )
    expect(checkDelegation(parent, child, 0)).toEqual(Either.void)
    expect(checkDelegation(parent, lease({}, 5, "C"), 0)).toEqual(Either.void)
  })

  it("refuses a pattern no parent pattern covers, naming it", () => {
    const child = lease({ "fs.read": ["/data/a"], "fs.write": ["/data/out/**"] }, 5_000, "C")
    const violation = failureAs(checkDelegation(parent, child, 0), LeaseSubsetViolation)
    expect(violation).toMatchObject({
      code: "LEASE_SUBSET_VIOLATION",
      retryable: false,
      lease_id: "C",
      parent_lease_id: "P",
      namespace: "fs.write",
      pattern: "/data/out/**"
    })
    expect(violation.message).toContain("/data/out/**")
  })

  it("refuses a namespace the parent does not grant", () => {
    const violation = leftOf(checkDelegation(parent, lease({ "tool.call": ["search"] }, 1, "C"), 0))
    expect(violation).toMatchObject({ _tag: "LeaseSubsetViolation", namespace: "tool.call", pattern: "search" })
  })

  it("refuses a pattern covered only by several parent patterns together", () => {
    const twoHalves = lease({ "tool.call": ["a*", "*"] }, undefined, "P2")
    expect(checkDelegation(twoHalves, lease({ "tool.call": ["b"] }), 0)).toEqual(Either.void)
    const split = lease({ "fs.read": ["/d/*", "/d/*/**"] }, undefined, "P3")
    // /d/** is the union of the two, but neither alone covers it
    expect(leftOf(checkDelegation(split, lease({ "fs.read": ["/d/**"] }), 0))).toBeInstanceOf(LeaseSubsetViolation)
  })

  it("refuses an unknown namespace holding patterns", () => {
    const child = lease({ "fs.delete": ["/data/x"] } as unknown as Lease["grants"], 1, "C")
    expect(leftOf(checkDelegation(parent, child, 0))).toMatchObject({ namespace: "fs.delete", pattern: "/data/x" })
  })

  it("refuses a child that outlives its parent", () => {
    const later = failureAs(checkDelegation(parent, lease({}, 10_001, "C"), 0), LeaseSubsetViolation)
    expect(later.namespace).toBeUndefined()
    expect(later.reason).toContain("10001")
    const never = failureAs(checkDelegation(parent, lease({}, undefined, "C"), 0), LeaseSubsetViolation)
    expect(never.reason).toContain("never expires")
    expect(leftOf(checkDelegation(parent, lease({}, Number.NaN, "C"), 0))).toBeInstanceOf(LeaseSubsetViolation)
  })

  it("lets a parent without expiry delegate with or without one", () => {
    const forever = lease({ "tool.call": ["*"] }, undefined, "P")
    expect(checkDelegation(forever, lease({ "tool.call": ["x"] }), 0)).toEqual(Either.void)
    expect(checkDelegation(forever, lease({ "tool.call": ["x"] }, 5), 0)).toEqual(Either.void)
  })

  it("refuses any delegation from an expired parent with LeaseExpired naming the parent", () => {
    expect(checkDelegation(parent, lease({}, 10_000, "C"), 9_999)).toEqual(Either.void)
    for (const now of [10_000, 20_000]) {
      const expired = leftOf(checkDelegation(parent, lease({}, 10_000, "C"), now))
      expect(expired).toBeInstanceOf(LeaseExpired)
      expect(expired).toMatchObject({ lease_id: "P", retryable: false })
    }
  })
})

// ---------------------------------------------------------------------------
// Properties

/** Pattern tokens as the tests see them: a literal string, `*` or `**`. */
type Piece = string

const render = (pieces: ReadonlyArray<Piece>) => pieces.join("")

/** Splits a pattern into literal characters and star runs. */
const piecesOf = (pattern: string): Array<Piece> => pattern.match(/\*+|[^*]/g) ?? []

/** A random pattern over a tiny alphabet, so that patterns and resources collide often. */
const patternArb = (syntax: GlobSyntax) =>
  fc.array(fc.constantFrom(...(syntax === "path" ? ["a", "b", "/", ".", "*", "**"] : ["a", "b", ".", "*"])), {
    maxLength: 7
  }).map(render)

const text = (alphabet: ReadonlyArray<string>, maxLength = 4) =>
  fc.array(fc.constantFrom(...alphabet), { maxLength }).map((chars) => chars.join(""))

/** A resource `pattern` matches, made by filling each star run with suitable characters. */
const instanceOf = (pattern: string, syntax: GlobSyntax) =>
  fc.tuple(...piecesOf(pattern).map((piece) =>
    piece === "*" && syntax === "path"
      ? text(["a", "b", "."])
      : piece.startsWith("*")
      ? text(["a", "b", "/", "."])
      : fc.constant(piece)
  )).map((parts) => parts.join(""))

/** A pattern `pattern` covers by construction: each star run replaced by a narrower pattern. */
const narrowed = (pattern: string, syntax: GlobSyntax) =>
  fc.tuple(...piecesOf(pattern).map((piece) => {
    if (!piece.startsWith("*")) return fc.constant(piece)
    if (piece === "*" && syntax === "path") {
      // within one segment: no `/`, and never two stars in a row (that would be `**`)
      return fc.array(fc.constantFrom("a", "b", "*"), { maxLength: 4 }).map((parts) =>
        parts.filter((part, i) => !(part === "*" && parts[i - 1] === "*")).join("")
      )
    }
    return text(["a", "b", "/", "*", "**"])
  })).map((parts) => parts.join(""))

const syntaxArb = fc.constantFrom<GlobSyntax>("path", "flat")

describe("glob properties", () => {
  it("a covered child's every instance matches the parent (soundness)", () => {
    fc.assert(
      fc.property(
        syntaxArb.chain((syntax) =>
          fc.tuple(fc.constant(syntax), patternArb(syntax), patternArb(syntax)).chain(([syntax, parent, child]) =>
            fc.tuple(
              fc.constant(syntax),
              fc.constant(parent),
              fc.constant(child),
              fc.array(instanceOf(child, syntax), { maxLength: 8 })
            )
          )
        ),
        ([syntax, parent, child, resources]) => {
          if (!leaseGlobCovers(parent, child, syntax)) return
          for (const resource of resources) {
            expect(leaseGlobMatch(child, resource, syntax)).toBe(true)
            expect(leaseGlobMatch(parent, resource, syntax)).toBe(true)
          }
        }
      ),
      { numRuns: 2_000 }
    )
  })

  it("soundness, checked exhaustively over every short resource", () => {
    const all: Array<string> = [""]
    for (let length = 1; length <= 6; length++) {
      for (const prefix of all.filter((s) => s.length === length - 1)) all.push(prefix + "a", prefix + "/")
    }
    fc.assert(
      fc.property(syntaxArb, fc.array(fc.constantFrom("a", "/", "*", "**"), { maxLength: 5 }), fc.array(fc.constantFrom("a", "/", "*", "**"), { maxLength: 5 }), (syntax, p, c) => {
        const parent = render(p)
        const child = render(c)
        if (!leaseGlobCovers(parent, child, syntax)) return
        for (const resource of all) {
          if (leaseGlobMatch(child, resource, syntax)) expect(leaseGlobMatch(parent, resource, syntax)).toBe(true)
        }
      }),
      { numRuns: 2_000 }
    )
  })

  it("covers every narrowing of a pattern, and the pattern itself", () => {
    fc.assert(
      fc.property(
        syntaxArb.chain((syntax) =>
          patternArb(syntax).chain((parent) => fc.tuple(fc.constant(syntax), fc.constant(parent), narrowed(parent, syntax)))
        ),
        ([syntax, parent, child]) => {
          expect(leaseGlobCovers(parent, parent, syntax)).toBe(true)
          expect(leaseGlobCovers(parent, child, syntax)).toBe(true)
        }
      ),
      { numRuns: 1_000 }
    )
  })

  it("covers a literal child exactly when it matches it", () => {
    fc.assert(
      fc.property(syntaxArb, patternArb("path"), text(["a", "b", "/", "."], 7), (syntax, parent, resource) => {
        expect(leaseGlobCovers(parent, resource, syntax)).toBe(leaseGlobMatch(parent, resource, syntax))
      }),
      { numRuns: 1_000 }
    )
  })
})

describe("delegation property", () => {
  const namespaces: ReadonlyArray<LeaseNamespace> = ["fs.read", "net.fetch"]
  const grantsArb = fc.record(
    { "fs.read": fc.array(patternArb("path"), { maxLength: 3 }), "net.fetch": fc.array(patternArb("flat"), { maxLength: 3 }) },
    { requiredKeys: [] }
  )
  const expiryArb = fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined })

  /** A child that is often, not always, acceptable: some patterns narrowed from the parent's, some random. */
  const childGrantsArb = (parent: Lease["grants"]) =>
    fc.record({
      "fs.read": fc.array(
        fc.oneof(patternArb("path"), ...(parent["fs.read"] ?? []).map((p) => narrowed(p, "path"))),
        { maxLength: 2 }
      ),
      "net.fetch": fc.array(
        fc.oneof(patternArb("flat"), ...(parent["net.fetch"] ?? []).map((p) => narrowed(p, "flat"))),
        { maxLength: 2 }
      )
    }, { requiredKeys: [] })

  it("a child accepted by checkDelegation never gets what checkLease would deny its parent", () => {
    let accepted = 0
    fc.assert(
      fc.property(
        fc.tuple(grantsArb, expiryArb, fc.integer({ min: 0, max: 100 })).chain(([parentGrants, parentExpiry, now]) =>
          fc.tuple(
            fc.constant(lease(parentGrants, parentExpiry, "P")),
            fc.tuple(childGrantsArb(parentGrants), expiryArb).map(([grants, expiry]) => lease(grants, expiry, "C")),
            fc.constant(now)
          )
        ).chain(([parent, child, now]) => {
          const resources = namespaces.flatMap((ns) =>
            (child.grants[ns] ?? []).map((p) => instanceOf(p, globSyntaxOf(ns)).map((r) => [ns, r] as const))
          )
          const random = fc.tuple(fc.constantFrom(...namespaces), text(["a", "b", "/", "."], 6))
          return fc.tuple(
            fc.constant(parent),
            fc.constant(child),
            fc.constant(now),
            fc.array(fc.oneof(random, ...resources), { maxLength: 10 }),
            fc.array(fc.integer({ min: -10, max: 120 }), { minLength: 1, maxLength: 4 })
          )
        }),
        ([parent, child, now, requests, times]) => {
          if (Either.isLeft(checkDelegation(parent, child, now))) return
          accepted++
          for (const [namespace, resource] of requests) {
            for (const t of [now, ...times]) {
              if (Either.isRight(checkLease(child, namespace, resource, t))) {
                expect(checkLease(parent, namespace, resource, t)).toEqual(Either.void)
              }
            }
          }
        }
      ),
      { numRuns: 2_000 }
    )
    // the property must not hold vacuously
    expect(accepted).toBeGreaterThan(200)
  })
})
