/**
 * Budgets: how much each scope (an agent, a team) has spent, per currency,
 * against a limit (PROTOCOLS.md §2 and §3).
 *
 * A charge that would take the spent amount past the limit is refused whole
 * (nothing is charged) and reported as exhausted; one landing exactly on the
 * limit is allowed. The arithmetic is plain IEEE doubles, so "exactly" is
 * exact only for amounts that add up exactly: keep amounts in integer minor
 * units (micro-dollars, tokens) where that matters (in dollars, 0.1 + 0.2 is
 * more than a 0.3 limit). A limit of `Infinity` means unlimited.
 */
import { Either } from "effect"
import { ValidationError } from "../schema/Errors.js"

export type BudgetScope = "agent" | "team"

/** Identifies one budget: (scope kind, scope id, currency). */
export type BudgetKey = string

/** Spent amount per budget; an absent key has spent nothing. */
export type BudgetState = ReadonlyMap<BudgetKey, number>

/** A refused charge: it would have crossed the limit. `spent` is unchanged. */
export interface Exhaustion {
  readonly exhausted: true
  readonly spent: number
}

export const isExhaustion = (refusal: Exhaustion | ValidationError): refusal is Exhaustion =>
  !(refusal instanceof ValidationError)

/** A JSON array under the hood, so no id or currency can make two budgets collide. */
export const budgetKey = (scope: BudgetScope, id: string, currency: string): BudgetKey =>
  JSON.stringify([scope, id, currency])

/** The parts of a key made by `budgetKey`. */
export const parseBudgetKey = (
  key: BudgetKey
): { readonly scope: BudgetScope; readonly id: string; readonly currency: string } => {
  const [scope, id, currency] = JSON.parse(key) as [BudgetScope, string, string]
  return { scope, id, currency }
}

const invalid = (path: string, message: string) => Either.left(ValidationError.single("charge", path, message))

/**
 * The spent amount after charging `amount` against `limit`, or `Exhaustion`
 * when it would cross the limit. `ValidationError` when `amount` or `spent` is
 * negative or not finite, or `limit` is negative or NaN.
 */
export const charge = (
  spent: number,
  amount: number,
  limit: number
): Either.Either<number, Exhaustion | ValidationError> => {
  if (!Number.isFinite(amount) || amount < 0) return invalid("amount", `must be a finite, non-negative number, got ${amount}`)
  if (!Number.isFinite(spent) || spent < 0) return invalid("spent", `must be a finite, non-negative number, got ${spent}`)
  if (Number.isNaN(limit) || limit < 0) return invalid("limit", `must be a non-negative number, got ${limit}`)
  const next = spent + amount
  // A sum past what a number holds is no spending any counter can record, limit or not.
  if (!Number.isFinite(next)) return invalid("amount", `would overflow the counter (${spent} spent)`)
  return next <= limit ? Either.right(next) : Either.left({ exhausted: true, spent })
}

export const spentOf = (state: BudgetState, key: BudgetKey): number => state.get(key) ?? 0

export interface Charge {
  readonly key: BudgetKey
  readonly amount: number
  readonly limit: number
}

/**
 * Applies several charges all or nothing (say the agent's budget and its
 * team's for one call): a new state with every charge applied, or the first
 * refusal with the key it concerns, and then nothing is charged. Charges to
 * the same key add up in order. `state` is never modified.
 */
export const chargeAll = (
  state: BudgetState,
  charges: Iterable<Charge>
): Either.Either<BudgetState, (Exhaustion & { readonly key: BudgetKey }) | ValidationError> => {
  const next = new Map(state)
  for (const { amount, key, limit } of charges) {
    const result = charge(spentOf(next, key), amount, limit)
    if (Either.isLeft(result)) {
      const refusal = result.left
      return Either.left(isExhaustion(refusal) ? { ...refusal, key } : refusal)
    }
    next.set(key, result.right)
  }
  return Either.right(next)
}
