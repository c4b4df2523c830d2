/**
 * Policy evaluation (PROTOCOLS.md §2): given the policies in force, an action
 * and who takes it, the decision — allow, deny, pending (a human must approve)
 * or redact — with its reason and the rule that decided. Pure: no clock, no
 * I/O; the call count for hourly limits comes in through the context.
 *
 * How policies combine:
 * - A policy applies by scope: global always; team when the acting agent is in
 *   that team; agent for that agent; tool for calls of that tool. Scope ids
 *   may be globs (`bot-*`).
 * - Each applicable policy gives its own decision, or none when it has no
 *   section for the action (no `network:` for a network action, no rule and no
 *   `*` for a tool). The most restrictive decision wins, deny > pending >
 *   redact > allow; on a tie the more specific scope (global < team < agent <
 *   tool) gives the reason and rule, then the earlier policy in the list.
 * - So a section is a ceiling: `"*": { allow: false }` in a global policy
 *   denies every tool it does not list, whatever a team policy allows, and two
 *   network allowlists intersect.
 * - Closed world: a tool call, network access or LLM call on which no
 *   applicable policy has an opinion is denied.
 * - Messages are open by default: if no applicable policy has `messages:`, a
 *   message is allowed. A policy with `messages:` (even an empty list) decides
 *   by its first matching rule in document order, and denies when none
 *   matches. When the recipient's team is unknown (no `recipient` in the
 *   context), a rule that needs it does not match if it allows and does match
 *   if it denies: what cannot be checked fails closed.
 *
 * Within one policy, a tool's rule is found by exact name first, then among
 * patterns the one with the most literal characters (document order on ties),
 * `*` last. A rule then decides in this order: `allow: false` → deny; hourly
 * limit reached → deny; `requires_approval_if` true, not parseable, or not
 * evaluable on the call (a field missing or of the wrong type: fail safe) →
 * pending; `redact` non-empty → redact; otherwise allow. A pending
 * decision also lists the paths to redact, when any applicable rule asks for
 * redaction, so they still apply once a human approves.
 *
 * Speed: a document is compiled once (conditions parsed, globs split, exact
 * tool names in a Map) and the compiled form is cached in a WeakMap keyed by
 * the document object, so `evaluate(documents, ...)` pays for compilation on
 * first use only. Documents are therefore treated as immutable values: build
 * a new one instead of mutating it. `compilePolicy` gives the compiled form
 * explicitly (with its warnings), and `evaluate` accepts it too.
 */
import { Either } from "effect"
import type { Budget, Party, PolicyDocument, PolicyProblem, Scope, ToolRule } from "../schema/Policy.js"
import { evaluate as evaluateCondition, type Expression, type ExpressionError, parseExpression, whyUnknown } from "./Expression.js"
import { compileGlob, type GlobMatcher, globSpecificity, normalizeHost } from "./Glob.js"

export { compileGlob, compileHostGlob, globMatch, type GlobMatcher, normalizeHost } from "./Glob.js"

// ---------------------------------------------------------------------------
// Inputs and outputs

export type Action =
  | { readonly kind: "tool_call"; readonly agent_id: string; readonly tool: string; readonly args: unknown }
  | { readonly kind: "message"; readonly agent_id: string; readonly to: string; readonly message_type: string }
  | { readonly kind: "network"; readonly agent_id: string; readonly host: string }
  | { readonly kind: "llm_call"; readonly agent_id: string; readonly model: string }

/** Who acts, or who receives a message. A missing `team_id` means the agent is in no team. */
export interface Subject {
  readonly agent_id: string
  readonly team_id?: string | undefined
}

export interface EvaluationContext {
  /** The acting agent; its `agent_id` must be the action's. */
  readonly agent: Subject
  /** For messages: the recipient (its `agent_id` must be the action's `to`). Absent means its team is unknown. */
  readonly recipient?: Subject | undefined
  /** Calls of this tool by this agent in the last hour, for limit_per_hour. */
  readonly callsInLastHour: (tool: string) => number
  /**
   * Whether the acting agent has a worktree to work in now, for tools that
   * say `requires_worktree`. Not given: not known, and such a tool is denied.
   */
  readonly worktreeBound?: boolean | undefined
}

export type Verdict = "allow" | "deny" | "pending" | "redact"

export interface Decision {
  readonly decision: Verdict
  readonly reason: string
  /** The rule that decided, e.g. "policy research-tools: tools.payments.send.requires_approval_if" or "default: no rule covers this tool". */
  readonly rule: string
  readonly policy_id?: string
  /** Paths to redact when decision is "redact"; on "pending", the paths to redact once approved. */
  readonly redact?: ReadonlyArray<string>
  /** When decision is "pending": how long to wait for a human before denying. */
  readonly approval_timeout_s?: number
}

/** How restrictive each verdict is; the highest wins. */
export const restrictiveness: Readonly<Record<Verdict, number>> = { allow: 0, redact: 1, pending: 2, deny: 3 }

/** How specific each scope is; on equal restrictiveness the highest gives the reason. */
export const scopeSpecificity: Readonly<Record<Scope["kind"], number>> = { global: 0, team: 1, agent: 2, tool: 3 }

// ---------------------------------------------------------------------------
// Compiled form

interface CompiledToolRule {
  /** The key as written: a tool name, a pattern, or `*`. */
  readonly key: string
  readonly rule: ToolRule
  readonly matches: GlobMatcher
  readonly specificity: number
  readonly condition: Either.Either<Expression, ExpressionError> | undefined
  readonly redact: ReadonlyArray<string>
}

interface CompiledAllowlist {
  /** `network.allow` or `llm.allow_models`: where the list sits in the document. */
  readonly path: string
  readonly entries: ReadonlyArray<{ readonly pattern: string; readonly matches: GlobMatcher }>
}

interface CompiledParty {
  readonly any: boolean
  readonly team: GlobMatcher | undefined
  readonly agent: GlobMatcher | undefined
}

interface CompiledMessageRule {
  readonly from: CompiledParty
  readonly to: CompiledParty
  readonly types: ReadonlySet<string> | undefined
  readonly allow: boolean
}

export interface CompiledPolicy {
  readonly _tag: "CompiledPolicy"
  readonly document: PolicyDocument
  readonly id: string
  readonly specificity: number
  /** Problems that do not stop the policy from working but deserve a look: conditions that do not parse (they always ask for approval). */
  readonly warnings: ReadonlyArray<PolicyProblem>
  readonly scopeMatches: GlobMatcher
  readonly exactTools: ReadonlyMap<string, CompiledToolRule>
  /** Pattern rules, most specific first; `*` last. */
  readonly patternTools: ReadonlyArray<CompiledToolRule>
  readonly network: CompiledAllowlist | undefined
  readonly llm: CompiledAllowlist | undefined
  readonly messages: ReadonlyArray<CompiledMessageRule> | undefined
}

const compileParty = (party: Party): CompiledParty =>
  party === "*"
    ? { any: true, team: undefined, agent: undefined }
    : {
      any: false,
      team: party.team === undefined ? undefined : compileGlob(party.team),
      agent: party.agent === undefined ? undefined : compileGlob(party.agent)
    }

const compileAllowlist = (path: string, patterns: ReadonlyArray<string>, normalize: (text: string) => string): CompiledAllowlist => ({
  path,
  entries: patterns.map((pattern) => ({ pattern, matches: compileGlob(normalize(pattern)) }))
})

const identity = (text: string) => text

const compileDocument = (document: PolicyDocument): CompiledPolicy => {
  const warnings: Array<PolicyProblem> = []
  const exactTools = new Map<string, CompiledToolRule>()
  const patternTools: Array<CompiledToolRule> = []
  for (const [key, rule] of Object.entries(document.tools ?? {})) {
    const condition = rule.requires_approval_if === undefined ? undefined : parseExpression(rule.requires_approval_if)
    if (condition !== undefined && Either.isLeft(condition)) {
      warnings.push({
        path: `tools.${key}.requires_approval_if`,
        message: `does not parse, so every call asks for approval: ${condition.left.message}`
      })
    }
    const compiled: CompiledToolRule = {
      key,
      rule,
      matches: compileGlob(key),
      specificity: globSpecificity(key),
      condition,
      redact: rule.redact ?? []
    }
    if (key.includes("*")) patternTools.push(compiled)
    else exactTools.set(key, compiled)
  }
  // Array.prototype.sort is stable: equally specific patterns keep document order.
  patternTools.sort((a, b) => b.specificity - a.specificity)
  const scope = document.scope
  return {
    _tag: "CompiledPolicy",
    document,
    id: document.id,
    specificity: scopeSpecificity[scope.kind],
    warnings,
    scopeMatches: scope.kind === "global" ? () => true : compileGlob(scope.id),
    exactTools,
    patternTools,
    network: document.network === undefined ? undefined : compileAllowlist("network.allow", document.network.allow, normalizeHost),
    llm: document.llm === undefined ? undefined : compileAllowlist("llm.allow_models", document.llm.allow_models, identity),
    messages: document.messages?.map((rule) => ({
      from: compileParty(rule.from),
      to: compileParty(rule.to),
      types: rule.types === undefined ? undefined : new Set(rule.types),
      allow: rule.allow
    }))
  }
}

const compiledDocuments = new WeakMap<PolicyDocument, CompiledPolicy>()

/** The compiled form of a document, built once per document object. */
export const compilePolicy = (document: PolicyDocument): CompiledPolicy => {
  let compiled = compiledDocuments.get(document)
  if (compiled === undefined) {
    compiled = compileDocument(document)
    compiledDocuments.set(document, compiled)
  }
  return compiled
}

export type PolicyInput = PolicyDocument | CompiledPolicy

const isCompiled = (policy: PolicyInput): policy is CompiledPolicy => (policy as CompiledPolicy)._tag === "CompiledPolicy"

const compiledOf = (policy: PolicyInput): CompiledPolicy => isCompiled(policy) ? policy : compilePolicy(policy)

// ---------------------------------------------------------------------------
// Scope

/** Whether the policy's scope takes in the agent: global, its team or itself (a tool scope takes in calls, not agents). */
export const coversAgent = (
  policy: CompiledPolicy,
  agent: { readonly agent_id: string; readonly team_id?: string | undefined }
): boolean => {
  switch (policy.document.scope.kind) {
    case "global":
      return true
    case "team":
      return agent.team_id !== undefined && policy.scopeMatches(agent.team_id)
    case "agent":
      return policy.scopeMatches(agent.agent_id)
    case "tool":
      return false
  }
}

const applies = (policy: CompiledPolicy, action: Action, context: EvaluationContext): boolean =>
  policy.document.scope.kind === "tool"
    ? action.kind === "tool_call" && policy.scopeMatches(action.tool)
    : coversAgent(policy, { agent_id: action.agent_id, team_id: context.agent.team_id })

/** The policies that apply to this action, least specific scope first (global, team, agent, tool). */
export const applicablePolicies = <P extends PolicyInput>(
  policies: ReadonlyArray<P>,
  action: Action,
  context: EvaluationContext
): ReadonlyArray<P> =>
  policies
    .map((policy) => ({ policy, compiled: compiledOf(policy) }))
    .filter(({ compiled }) => applies(compiled, action, context))
    .sort((a, b) => a.compiled.specificity - b.compiled.specificity)
    .map(({ policy }) => policy)

/** Each applicable policy's budgets, with the policy they come from. */
export const applicableBudgets = (
  policies: ReadonlyArray<PolicyInput>,
  action: Action,
  context: EvaluationContext
): ReadonlyArray<{ readonly policy_id: string; readonly scope: Scope; readonly budget: Budget }> =>
  applicablePolicies(policies, action, context).flatMap((policy) => {
    const { document } = compiledOf(policy)
    return (document.budgets ?? []).map((budget) => ({ policy_id: document.id, scope: document.scope, budget }))
  })

// ---------------------------------------------------------------------------
// One policy's opinion

/** What one policy says about an action; `undefined` when it has nothing to say. */
interface Opinion {
  readonly verdict: Verdict
  readonly reason: string
  /** The rule's path inside the document, e.g. `tools.web.search.limit_per_hour`. */
  readonly path: string
  readonly redact: ReadonlyArray<string>
}

const opinion = (verdict: Verdict, reason: string, path: string, redact: ReadonlyArray<string> = []): Opinion => ({
  verdict,
  reason,
  path,
  redact
})

/** Facts about the action computed at most once per evaluation, however many policies ask. */
interface Facts {
  readonly action: Action
  readonly context: EvaluationContext
  callsInLastHour: number | undefined
  conditionContext: unknown
  host: string | undefined
}

const callsOf = (facts: Facts, tool: string): number => {
  if (facts.callsInLastHour === undefined) facts.callsInLastHour = facts.context.callsInLastHour(tool)
  return facts.callsInLastHour
}

/** What `requires_approval_if` sees: the action's fields, and the acting agent under `agent`. */
const conditionContextOf = (facts: Facts): unknown => {
  if (facts.conditionContext === undefined) {
    facts.conditionContext = { ...facts.action, agent: facts.context.agent }
  }
  return facts.conditionContext
}

const toolRuleFor = (policy: CompiledPolicy, tool: string): CompiledToolRule | undefined =>
  policy.exactTools.get(tool) ?? policy.patternTools.find((rule) => rule.matches(tool))

const toolOpinion = (policy: CompiledPolicy, tool: string, facts: Facts): Opinion | undefined => {
  const compiled = toolRuleFor(policy, tool)
  if (compiled === undefined) return undefined
  const { key, rule } = compiled
  const path = `tools.${key}`
  const through = key === tool ? "" : ` (by the rule for ${key})`
  if (!rule.allow) return opinion("deny", `tool ${tool} is not allowed${through}`, `${path}.allow`)
  if (rule.requires_worktree === true && facts.context.worktreeBound !== true) {
    return opinion(
      "deny",
      `worktree_not_bound: tool ${tool} works in a worktree, and agent ${facts.context.agent.agent_id} is bound to none${through}`,
      `${path}.requires_worktree`
    )
  }
  if (rule.limit_per_hour !== undefined) {
    const calls = callsOf(facts, tool)
    // A count that is not a number cannot prove the limit is not reached.
    if (!(calls >= 0)) {
      return opinion("deny", `tool ${tool} has an hourly limit and its call count is unavailable`, `${path}.limit_per_hour`)
    }
    if (calls >= rule.limit_per_hour) {
      return opinion(
        "deny",
        `tool ${tool} reached its limit of ${rule.limit_per_hour} calls per hour (${calls} in the last hour)${through}`,
        `${path}.limit_per_hour`
      )
    }
  }
  if (compiled.condition !== undefined) {
    const text = rule.requires_approval_if!
    if (Either.isLeft(compiled.condition)) {
      return opinion(
        "pending",
        `approval required for tool ${tool}: the condition ${JSON.stringify(text)} does not parse (${compiled.condition.left.message}), so it fails safe`,
        `${path}.requires_approval_if`,
        compiled.redact
      )
    }
    const truth = evaluateCondition(compiled.condition.right, conditionContextOf(facts))
    if (truth === "unknown") {
      return opinion(
        "pending",
        `approval required for tool ${tool}: the condition ${JSON.stringify(text)} cannot be evaluated on this call (${
          whyUnknown(compiled.condition.right, conditionContextOf(facts))
        }), so it fails safe`,
        `${path}.requires_approval_if`,
        compiled.redact
      )
    }
    if (truth) {
      return opinion("pending", `approval required for tool ${tool}: ${text}`, `${path}.requires_approval_if`, compiled.redact)
    }
  }
  if (compiled.redact.length > 0) {
    return opinion("redact", `tool ${tool} is allowed with ${compiled.redact.join(", ")} redacted${through}`, `${path}.redact`, compiled.redact)
  }
  return opinion("allow", `tool ${tool} is allowed${through}`, path)
}

const allowlistOpinion = (list: CompiledAllowlist, what: string, value: string): Opinion => {
  const index = list.entries.findIndex((entry) => entry.matches(value))
  return index === -1
    ? opinion("deny", `${what} ${value} matches no entry of ${list.path}`, list.path)
    : opinion("allow", `${what} ${value} matches ${list.entries[index]!.pattern}`, `${list.path}.${index}`)
}

type Match = "yes" | "no" | "unknown"

const partyMatches = (party: CompiledParty, agentId: string, subject: Subject | undefined): Match => {
  if (party.any) return "yes"
  if (party.agent !== undefined && !party.agent(agentId)) return "no"
  if (party.team === undefined) return "yes"
  if (subject === undefined) return "unknown"
  return subject.team_id !== undefined && party.team(subject.team_id) ? "yes" : "no"
}

const messageOpinion = (
  rules: ReadonlyArray<CompiledMessageRule>,
  action: Extract<Action, { kind: "message" }>,
  context: EvaluationContext
): Opinion => {
  const what = `${action.message_type} message from ${action.agent_id} to ${action.to}`
  for (let index = 0; index < rules.length; index++) {
    const rule = rules[index]!
    if (rule.types !== undefined && !rule.types.has(action.message_type)) continue
    const from = partyMatches(rule.from, action.agent_id, context.agent)
    if (from === "no") continue
    const to = partyMatches(rule.to, action.to, context.recipient)
    if (to === "no") continue
    if (to === "unknown") {
      if (rule.allow) continue
      return opinion("deny", `${what} is not allowed: the recipient's team is unknown and this rule denies`, `messages.${index}`)
    }
    return opinion(rule.allow ? "allow" : "deny", `${what} is ${rule.allow ? "" : "not "}allowed`, `messages.${index}`)
  }
  return opinion("deny", `${what} is not allowed: no message rule matches`, "messages")
}

const policyOpinion = (policy: CompiledPolicy, facts: Facts): Opinion | undefined => {
  const { action } = facts
  switch (action.kind) {
    case "tool_call":
      return toolOpinion(policy, action.tool, facts)
    case "network":
      if (policy.network === undefined) return undefined
      facts.host ??= normalizeHost(action.host)
      return allowlistOpinion(policy.network, "host", facts.host)
    case "llm_call":
      return policy.llm === undefined ? undefined : allowlistOpinion(policy.llm, "model", action.model)
    case "message":
      return policy.messages === undefined ? undefined : messageOpinion(policy.messages, action, facts.context)
  }
}

// ---------------------------------------------------------------------------
// The decision

const actionKinds: ReadonlySet<string> = new Set<Action["kind"]>(["tool_call", "message", "network", "llm_call"])

const defaultDecision = (action: Action): Decision => {
  switch (action.kind) {
    case "tool_call":
      return { decision: "deny", reason: `no applicable policy has a rule for tool ${action.tool}`, rule: "default: no rule covers this tool" }
    case "network":
      return { decision: "deny", reason: `no applicable policy allows host ${action.host}`, rule: "default: no rule covers this host" }
    case "llm_call":
      return { decision: "deny", reason: `no applicable policy allows model ${action.model}`, rule: "default: no rule covers this model" }
    case "message":
      return { decision: "allow", reason: "no applicable policy restricts messages", rule: "default: no policy governs messages" }
  }
}

/** A deny for an action the context contradicts: the caller mixed up agents, and nothing unclear is allowed. */
const inconsistency = (action: Action, context: EvaluationContext): Decision | undefined => {
  // Callers outside TypeScript's reach (JSON, tests) can still hand in anything.
  if (!actionKinds.has(action.kind)) {
    return { decision: "deny", reason: `unknown action kind ${String(action.kind)}`, rule: "default: unknown action" }
  }
  if (action.agent_id !== context.agent.agent_id) {
    return {
      decision: "deny",
      reason: `the action is by ${action.agent_id} but the context describes ${context.agent.agent_id}`,
      rule: "default: inconsistent context"
    }
  }
  if (action.kind === "message" && context.recipient !== undefined && context.recipient.agent_id !== action.to) {
    return {
      decision: "deny",
      reason: `the message is to ${action.to} but the context describes recipient ${context.recipient.agent_id}`,
      rule: "default: inconsistent context"
    }
  }
  return undefined
}

/** The decision of the policies in force on one action. Pure and total: it never throws on odd input, it denies. */
export const evaluate = (
  policies: ReadonlyArray<PolicyInput>,
  action: Action,
  context: EvaluationContext
): Decision => {
  const inconsistent = inconsistency(action, context)
  if (inconsistent !== undefined) return inconsistent
  const facts: Facts = { action, context, callsInLastHour: undefined, conditionContext: undefined, host: undefined }
  let winner: { readonly policy: CompiledPolicy; readonly opinion: Opinion } | undefined
  let redact: Array<string> | undefined
  for (const input of policies) {
    const policy = compiledOf(input)
    if (!applies(policy, action, context)) continue
    const said = policyOpinion(policy, facts)
    if (said === undefined) continue
    if (said.redact.length > 0 && said.verdict !== "deny") {
      redact ??= []
      for (const path of said.redact) if (!redact.includes(path)) redact.push(path)
    }
    const rank = restrictiveness[said.verdict]
    if (
      winner === undefined ||
      rank > restrictiveness[winner.opinion.verdict] ||
      (rank === restrictiveness[winner.opinion.verdict] && policy.specificity > winner.policy.specificity)
    ) {
      winner = { policy, opinion: said }
    }
  }
  if (winner === undefined) return defaultDecision(action)
  const { opinion: decided, policy } = winner
  return {
    decision: decided.verdict,
    reason: decided.reason,
    rule: `policy ${policy.id}: ${decided.path}`,
    policy_id: policy.id,
    ...((decided.verdict === "redact" || decided.verdict === "pending") && redact !== undefined ? { redact } : {}),
    ...(decided.verdict === "pending" ? { approval_timeout_s: policy.document.approval_timeout_s } : {})
  }
}
