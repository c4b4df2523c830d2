/**
 * Budgets: a charge crossing the limit is refused whole, one landing on it is
 * allowed, bad numbers are a ValidationError, keys never collide, and several
 * charges apply all or nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Option } from "effect"
import {
  budgetKey,
  type BudgetState,
  charge,
  chargeAll,
  isExhaustion,
  parseBudgetKey,
  spentOf
} from "../src/model/Budgets.js"
import { ValidationError } from "../src/schema/Errors.js"

const leftOf = <E>(either: Either.Either<unknown, E>): E => Option.getOrThrow(Either.getLeft(either))

describe("charge", () => {
  it("adds the amount when the result stays within the limit", () => {
    expect(charge(0, 3, 10)).toEqual(Either.right(3))
    expect(charge(3, 4, 10)).toEqual(Either.right(7))
    expect(charge(5, 0, 10)).toEqual(Either.right(5))
  })

  it("allows a charge landing exactly on the limit", () => {
    expect(charge(7, 3, 10)).toEqual(Either.right(10))
    expect(charge(10, 0, 10)).toEqual(Either.right(10))
    expect(charge(0, 0, 0)).toEqual(Either.right(0))
  })

  it("refuses a charge crossing the limit, charging nothing", () => {
    expect(charge(8, 3, 10)).toEqual(Either.left({ exhausted: true, spent: 8 }))
    expect(charge(10, 1, 10)).toEqual(Either.left({ exhausted: true, spent: 10 }))
    expect(charge(0, 1, 0)).toEqual(Either.left({ exhausted: true, spent: 0 }))
    expect(isExhaustion(leftOf(charge(8, 3, 10)))).toBe(true)
  })

  it("treats an infinite limit as unlimited, but never lets the spent amount overflow", () => {
    expect(charge(1e300, 1e300, Number.POSITIVE_INFINITY)).toEqual(Either.right(2e300))
    const overflow = charge(Number.MAX_VALUE, Number.MAX_VALUE, Number.POSITIVE_INFINITY)
    expect(Either.isLeft(overflow) && overflow.left).toMatchObject({ _tag: "ValidationError" })
  })

  it("uses plain doubles: fractional amounts may not land exactly (use minor units)", () => {
    expect(Either.isLeft(charge(0.1, 0.2, 0.3))).toBe(true)
    expect(charge(100_000, 200_000, 300_000)).toEqual(Either.right(300_000))
  })

  it("rejects negative or non-finite amounts with a ValidationError", () => {
    for (const amount of [-1, -0.001, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const error = leftOf(charge(0, amount, 10))
      expect(error).toBeInstanceOf(ValidationError)
      expect(isExhaustion(error)).toBe(false)
      if (error instanceof ValidationError) {
        expect(error.code).toBe("VALIDATION_ERROR")
        expect(error.retryable).toBe(false)
        expect(error.issues.map((issue) => issue.path)).toEqual(["amount"])
      }
    }
  })

  it("rejects a bad spent amount or limit with a ValidationError", () => {
    const pathOf = (either: ReturnType<typeof charge>) => {
      const error = leftOf(either)
      return error instanceof ValidationError ? error.issues[0].path : "not a ValidationError"
    }
    expect(pathOf(charge(-1, 1, 10))).toBe("spent")
    expect(pathOf(charge(Number.NaN, 1, 10))).toBe("spent")
    expect(pathOf(charge(Number.POSITIVE_INFINITY, 1, 10))).toBe("spent")
    expect(pathOf(charge(0, 1, -1))).toBe("limit")
    expect(pathOf(charge(0, 1, Number.NaN))).toBe("limit")
  })

  it("agrees with exact integer arithmetic (property)", () => {
    fc.assert(
      fc.property(fc.nat(1_000_000), fc.nat(1_000_000), fc.nat(2_000_000), (spent, amount, limit) => {
        const result = charge(spent, amount, limit)
        if (spent + amount <= limit) expect(result).toEqual(Either.right(spent + amount))
        else expect(result).toEqual(Either.left({ exhausted: true, spent }))
      }),
      { numRuns: 1_000 }
    )
  })

  it("never lets a run of charges exceed the limit, and charges exactly what it accepted (property)", () => {
    fc.assert(
      fc.property(fc.nat(1_000), fc.array(fc.nat(300), { maxLength: 30 }), (limit, amounts) => {
        let spent = 0
        let accepted = 0
        for (const amount of amounts) {
          const result = charge(spent, amount, limit)
          if (Either.isRight(result)) {
            spent = result.right
            accepted += amount
          } else {
            expect(result.left).toEqual({ exhausted: true, spent })
            expect(spent + amount).toBeGreaterThan(limit)
          }
          expect(spent).toBeLessThanOrEqual(limit)
        }
        expect(spent).toBe(accepted)
      })
    )
  })
})

describe("budgetKey", () => {
  it("tells every (scope, id, currency) apart, whatever the ids hold", () => {
    const keys = [
      budgetKey("agent", "a", "USD"),
      budgetKey("team", "a", "USD"),
      budgetKey("agent", "a:b", "USD"),
      budgetKey("agent", "a", "b:USD"),
      budgetKey("agent", "a\",\"b", "USD"),
      budgetKey("agent", "a", "tokens")
    ]
    expect(new Set(keys).size).toBe(keys.length)
    expect(budgetKey("agent", "a", "USD")).toBe(budgetKey("agent", "a", "USD"))
  })

  it("parses back to its parts (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom("agent" as const, "team" as const), fc.string(), fc.string(), (scope, id, currency) => {
        expect(parseBudgetKey(budgetKey(scope, id, currency))).toEqual({ scope, id, currency })
      })
    )
  })
})

describe("chargeAll", () => {
  const agent = budgetKey("agent", "a-1", "USD")
  const team = budgetKey("team", "t-1", "USD")

  it("applies every charge to a new state", () => {
    const state: BudgetState = new Map([[team, 50]])
    const next = Either.getOrThrow(chargeAll(state, [{ key: agent, amount: 10, limit: 20 }, { key: team, amount: 10, limit: 60 }]))
    expect(spentOf(next, agent)).toBe(10)
    expect(spentOf(next, team)).toBe(60)
    expect(spentOf(state, team)).toBe(50)
    expect(state.has(agent)).toBe(false)
  })

  it("charges nothing when any charge would cross its limit, naming that budget", () => {
    const state: BudgetState = new Map([[team, 55]])
    const refusal = leftOf(chargeAll(state, [{ key: agent, amount: 10, limit: 20 }, { key: team, amount: 10, limit: 60 }]))
    expect(refusal).toEqual({ exhausted: true, spent: 55, key: team })
    expect(spentOf(state, agent)).toBe(0)
  })

  it("adds up charges to the same budget in order", () => {
    expect(leftOf(chargeAll(new Map(), [{ key: agent, amount: 6, limit: 10 }, { key: agent, amount: 6, limit: 10 }])))
      .toEqual({ exhausted: true, spent: 6, key: agent })
    const next = Either.getOrThrow(chargeAll(new Map(), [{ key: agent, amount: 4, limit: 10 }, { key: agent, amount: 6, limit: 10 }]))
    expect(spentOf(next, agent)).toBe(10)
  })

  it("passes a ValidationError through", () => {
    expect(leftOf(chargeAll(new Map(), [{ key: agent, amount: -1, limit: 10 }]))).toBeInstanceOf(ValidationError)
  })

  it("is all or nothing (property)", () => {
    const keys = [agent, team, budgetKey("agent", "a-2", "USD")]
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...keys), fc.nat(100)), { maxLength: 3 }),
        fc.array(fc.record({ key: fc.constantFrom(...keys), amount: fc.nat(100), limit: fc.nat(200) }), { maxLength: 5 }),
        (initial, charges) => {
          const state: BudgetState = new Map(initial)
          const snapshot = new Map(state)
          const result = chargeAll(state, charges)
          expect(state).toEqual(snapshot)
          if (Either.isRight(result)) {
            for (const key of keys) {
              const added = charges.filter((c) => c.key === key).reduce((sum, c) => sum + c.amount, 0)
              expect(spentOf(result.right, key)).toBe(spentOf(state, key) + added)
            }
          } else {
            // replaying the charges one by one must meet a refusal
            let working = new Map(state)
            let refused = false
            for (const c of charges) {
              const r = charge(working.get(c.key) ?? 0, c.amount, c.limit)
              if (Either.isLeft(r)) {
                refused = true
                break
              }
              working = new Map(working).set(c.key, r.right)
            }
            expect(refused).toBe(true)
          }
        }
      ),
      { numRuns: 500 }
    )
  })
})
