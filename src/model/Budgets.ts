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
import { BudgetExhausted, ValidationError } from "../schema/Errors.js"
import { BudgetCharged, BudgetExhaustedRecorded } from "../schema/GatewayEvents.js"
import { teamOf } from "./Checks.js"
import { auditor } from "./Governance.js"
import { coversAgent } from "./Policy.js"
import { accept, type Decision, refuse, type RuntimeState } from "./State.js"

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

// ---------------------------------------------------------------------------
// Decisions

/** A budget counter of an agent (its own, its team's) in a currency, with its limit. */
export interface BudgetStatus {
  readonly scope: BudgetScope
  readonly scope_id: string
  readonly currency: string
  readonly spent: number
  /** The smallest limit the policies in force set; undefined when none does. */
  readonly limit: number | undefined
}

/** The limits on an agent's spending in a currency: the smallest each applicable policy sets, per counter. */
const budgetCounters = (state: RuntimeState, agentId: string, currency: string) => {
  const team = teamOf(state, agentId)
  let agentLimit: number | undefined
  let teamLimit: number | undefined
  for (const policy of state.policyList) {
    if (!coversAgent(policy, { agent_id: agentId, team_id: team })) continue
    for (const budget of policy.document.budgets ?? []) {
      if (budget.currency !== currency) continue
      if (budget.per === "agent") agentLimit = Math.min(agentLimit ?? Infinity, budget.limit)
      else if (team !== undefined) teamLimit = Math.min(teamLimit ?? Infinity, budget.limit)
    }
  }
  return [
    { scope: "agent" as const, scope_id: agentId, limit: agentLimit },
    ...(team === undefined ? [] : [{ scope: "team" as const, scope_id: team, limit: teamLimit }])
  ].map((counter) => ({ ...counter, key: budgetKey(counter.scope, counter.scope_id, currency) }))
}

/** Each counter of the agent (its own, its team's) in a currency, with its limit. */
export const budgetStatus = (state: RuntimeState, agentId: string, currency: string): ReadonlyArray<BudgetStatus> =>
  budgetCounters(state, agentId, currency).map(({ limit, scope, scope_id, key }) => ({
    scope,
    scope_id,
    currency,
    limit,
    spent: state.spent.get(key) ?? 0
  }))

/** The currencies the agent has a counter or a limit in. */
export const currenciesOf = (state: RuntimeState, agentId: string): ReadonlyArray<string> => {
  const team = teamOf(state, agentId)
  const currencies = new Set<string>()
  for (const key of state.spent.keys()) {
    const { currency, id, scope } = parseBudgetKey(key)
    if ((scope === "agent" && id === agentId) || (scope === "team" && id === team)) currencies.add(currency)
  }
  for (const { document } of state.policyList) {
    for (const budget of document.budgets ?? []) currencies.add(budget.currency)
  }
  return [...currencies].sort()
}

/**
 * Charges the agent's counter, and its team's, in one go: a charge that would
 * take either past its limit is refused whole (nothing is charged), recorded,
 * and fails with BudgetExhausted. Landing exactly on a limit is allowed. Its
 * value: the counters after the charge.
 */
export const decideCharge = (
  state: RuntimeState,
  request: { readonly agent_id: string; readonly currency: string; readonly amount: number },
  now: number
): Decision<ReadonlyArray<BudgetStatus>, ValidationError | BudgetExhausted> => {
  const { agent_id, amount, currency } = request
  const counters = budgetCounters(state, agent_id, currency)
  const charged = chargeAll(state.spent, counters.map(({ key, limit }) => ({ key, amount, limit: limit ?? Infinity })))
  const audit = auditor(state, now)
  if (Either.isLeft(charged)) {
    const refusal = charged.left
    if (!isExhaustion(refusal)) return refuse(refusal)
    const crossing = counters.find((counter) => counter.key === refusal.key)!
    const limit = crossing.limit!
    const scope = `${crossing.scope} ${crossing.scope_id}`
    return refuse(new BudgetExhausted({ scope, currency, limit, spent: refusal.spent }), [
      BudgetExhaustedRecorded.make({
        scope: crossing.scope,
        scope_id: crossing.scope_id,
        currency,
        amount,
        spent: refusal.spent,
        limit,
        at: now
      }, true),
      audit({
        agent_id,
        action: `budget.charge:${currency}`,
        decision: "budget_exhausted",
        reason: `charging ${amount} ${currency} would take ${scope} past its limit: ${refusal.spent} of ${limit} spent`
      })
    ])
  }
  const after = counters.map(({ key, limit, scope, scope_id }) => ({
    scope,
    scope_id,
    currency,
    limit,
    spent: charged.right.get(key) ?? 0
  }))
  return accept([
    ...after.map(({ scope, scope_id, spent }) =>
      BudgetCharged.make({ scope, scope_id, currency, amount, spent, at: now }, true)
    ),
    audit({ agent_id, action: `budget.charge:${currency}`, decision: "charged", reason: `charged ${amount} ${currency}` })
  ], after)
}
