/**
 * The gateway bench: `Gateway.check` on a global policy of 100 tool rules and
 * a team policy, against three references measured in the same run, through the
 * same harness loop and timed the same way:
 *
 * - the same number of no-op Effect calls (`Effect.void`): what the harness
 *   and one `yield*` cost on their own;
 * - the pure policy evaluation (`evaluate` from `src/model/Policy.ts`) of the
 *   same actions on the same compiled policies, wrapped in `Effect.sync`: the
 *   decision without the loop, the audit record or the append;
 * - pure CPU work as long as a check's p50 (`spin`): its p99 is the tail the
 *   machine itself adds to an operation of that length.
 *
 * One agent in the policy's team checks a rotating set of tool calls, all
 * allowed: by exact name (some under an hourly limit that is never reached,
 * some with a `requires_approval_if` that is false for their args), by
 * pattern (`files.*`) and by the `*` fallback. Every check runs through the
 * runtime's one loop and appends its hash-chained audit record before it
 * returns.
 *
 * Figures: per-call latency of sequential checks (`performance.now()` around
 * each, one at a time, after a warm-up), p50, p99 and max, and checks/s of
 * that sequential loop; then checks/s (and latency) with 100 checkers at
 * once, which the loop batches into one append per turn. On the memory event
 * log ("in process", the target: p99 under 100 µs) and on SQLite (WAL,
 * durability `full`) as secondary figures.
 *
 * Flags: `--checks N` (or BENCH_CHECKS; default 20,000) checks per memory
 * configuration and per reference; `--sqlite-checks N` (or
 * BENCH_SQLITE_CHECKS; default 2,000) sequential checks on SQLite, ten times
 * as many with 100 checkers.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Array as Arr, Console, Effect, Either, Layer } from "effect"
import { availableParallelism, loadavg } from "node:os"
import { type EventLog, EventLogMemory, Registry, Switchboard } from "../src/index.js"
import { type Action, compilePolicy, type EvaluationContext, evaluate } from "../src/model/Policy.js"
import { EventLogSqlite } from "../src/node.js"
import { parsePolicy } from "../src/schema/Policy.js"
import { Gateway } from "../src/services/Gateway.js"
import { formatNumber, intOption, printComparison, printResult, ratio } from "./report.js"

const targetP99Us = 100
const checkers = 100
const agentId = "bench-analyst"
const teamId = "research"
/** Never reached: the bench makes far fewer calls of any one tool in an hour. */
const hourlyLimit = 1_000_000

// ---------------------------------------------------------------------------
// The policies

const domains = [
  "crm",
  "calendar",
  "email",
  "slack",
  "jira",
  "github",
  "docs",
  "sheets",
  "web",
  "weather",
  "maps",
  "translate",
  "billing",
  "invoices",
  "hr",
  "analytics"
] as const
const verbs = ["get", "list", "create", "update", "delete"] as const

interface Rule {
  readonly allow: boolean
  readonly limit_per_hour?: number
  readonly requires_approval_if?: string
  readonly redact?: ReadonlyArray<string>
}

/** Every condition of both policies, with args for which it is false. */
const conditions = {
  amount: ["args.amount > 1000", { amount: 120 }],
  recipients: ["args.recipients > 50 OR args.external == true", { recipients: 3, external: false }],
  production: ["args.environment == 'production' AND args.force == true", { environment: "staging", force: false }],
  systemPath: ["args.path starts_with '/etc' OR args.path starts_with '/root'", { path: "/srv/reports/q3.md" }],
  adminScope: ["args.scope in ['admin', 'owner']", { scope: "member" }],
  secrets: ["args.path starts_with '/srv/secrets'", { path: "/srv/reports/q3.md" }],
  teamAmount: ["args.amount > 500", { amount: 120 }],
  force: ["args.force == true", { force: false }]
} satisfies Record<string, readonly [string, Record<string, unknown>]>
const globalConditions = [conditions.amount, conditions.recipients, conditions.production, conditions.adminScope]

const ruleText = (rule: Rule) => {
  const fields = [`allow: ${rule.allow}`]
  if (rule.limit_per_hour !== undefined) fields.push(`limit_per_hour: ${rule.limit_per_hour}`)
  if (rule.requires_approval_if !== undefined) fields.push(`requires_approval_if: ${JSON.stringify(rule.requires_approval_if)}`)
  if (rule.redact !== undefined) fields.push(`redact: [${rule.redact.map((path) => JSON.stringify(path)).join(", ")}]`)
  return `{ ${fields.join(", ")} }`
}

const policyYaml = (header: string, rules: ReadonlyArray<readonly [string, Rule]>) =>
  `${header}\ntools:\n${rules.map(([key, rule]) => `  ${JSON.stringify(key)}: ${ruleText(rule)}`).join("\n")}\n`

/**
 * The global policy: 80 exact tool names (domain × verb; every fourth under
 * an hourly limit, every fifth needing approval on a condition, deletes in
 * some domains denied, a few redacting), 19 patterns and the `*` fallback.
 */
const globalRules = (() => {
  const rules: Array<readonly [string, Rule]> = []
  for (let d = 0; d < domains.length; d++) {
    for (let v = 0; v < verbs.length; v++) {
      const tool = `${domains[d]}.${verbs[v]}`
      if (verbs[v] === "delete" && d % 2 === 0) {
        rules.push([tool, { allow: false }])
        continue
      }
      rules.push([tool, {
        allow: true,
        ...((d + v) % 4 === 0 ? { limit_per_hour: hourlyLimit } : {}),
        ...((d + 2 * v) % 5 === 1 ? { requires_approval_if: globalConditions[d % globalConditions.length][0] } : {}),
        ...((d * 7 + v) % 23 === 5 ? { redact: ["args.body"] } : {})
      }])
    }
  }
  const patterns: ReadonlyArray<readonly [string, Rule]> = [
    ["files.*", { allow: true, requires_approval_if: conditions.systemPath[0] }],
    ["files.admin.*", { allow: false }],
    ["search.*", { allow: true, limit_per_hour: hourlyLimit }],
    ["db.read.*", { allow: true }],
    ["db.write.*", { allow: true, requires_approval_if: conditions.production[0] }],
    ["db.admin.*", { allow: false }],
    ["shell.*", { allow: false }],
    ["payments.*", { allow: true, requires_approval_if: conditions.amount[0] }],
    ["browser.*", { allow: true, limit_per_hour: hourlyLimit }],
    ["k8s.get.*", { allow: true }],
    ["k8s.*", { allow: false }],
    ["vault.*", { allow: false }],
    ["notion.*", { allow: true }],
    ["linear.*", { allow: true, limit_per_hour: hourlyLimit }],
    ["s3.get*", { allow: true }],
    ["s3.put*", { allow: true, requires_approval_if: conditions.adminScope[0] }],
    ["s3.*", { allow: false }],
    ["*.internal", { allow: false }],
    ["*.debug", { allow: false }]
  ]
  rules.push(...patterns)
  rules.push(["*", { allow: true, limit_per_hour: hourlyLimit }])
  return rules
})()

const globalPolicy = policyYaml(
  "id: org-tools\nscope: { kind: global }\nbudgets:\n  - { currency: USD, limit: 1000, per: agent }\napproval_timeout_s: 600",
  globalRules
)

/** The team's own rules, a ceiling under the global one. */
const teamRules: ReadonlyArray<readonly [string, Rule]> = [
  ["web.get", { allow: true, limit_per_hour: hourlyLimit }],
  ["email.create", { allow: true, requires_approval_if: conditions.recipients[0] }],
  ["billing.*", { allow: false }],
  ["invoices.*", { allow: false }],
  ["hr.*", { allow: false }],
  ["files.*", { allow: true, requires_approval_if: conditions.secrets[0] }],
  ["payments.*", { allow: true, requires_approval_if: conditions.teamAmount[0] }],
  ["shell.*", { allow: false }],
  ["analytics.*", { allow: true, limit_per_hour: hourlyLimit }],
  ["github.update", { allow: true, requires_approval_if: conditions.force[0] }]
]

const teamPolicy = policyYaml(`id: research-tools\nscope: { kind: team, id: ${teamId} }\napproval_timeout_s: 300`, teamRules)

// ---------------------------------------------------------------------------
// The calls

type Via = "exact" | "pattern" | "fallback"

/**
 * A call's args: its own, plus, for each condition of a rule that could
 * decide it (same name, or a trailing-`*` pattern over it), args that keep
 * that condition false.
 */
const argsFor = (tool: string, own: Record<string, unknown>) => {
  const args: Record<string, unknown> = { ...own }
  for (const [key, rule] of [...globalRules, ...teamRules]) {
    if (rule.requires_approval_if === undefined) continue
    if (key !== tool && !(key.endsWith("*") && tool.startsWith(key.slice(0, -1)))) continue
    const found = Object.values<readonly [string, Record<string, unknown>]>(conditions).find(([text]) =>
      text === rule.requires_approval_if
    )
    if (found === undefined) throw new Error(`no false args for ${rule.requires_approval_if}`)
    Object.assign(args, found[1])
  }
  return args
}

/** Allowed calls of each kind; the bench checks that each is decided as `via` says. */
const calls: ReadonlyArray<{ readonly tool: string; readonly via: Via; readonly args: Record<string, unknown> }> = ([
  ["crm.get", "exact", { id: "c-1042" }],
  ["crm.list", "exact", { owner: "ada" }],
  ["calendar.create", "exact", { title: "sync" }],
  ["email.create", "exact", { subject: "weekly", to: ["team@example.com"] }],
  ["slack.list", "exact", { channel: "#research" }],
  ["jira.update", "exact", { issue: "SB-12", status: "done" }],
  ["github.update", "exact", { repo: "switchboard", pr: 42 }],
  ["docs.get", "exact", { doc: "design" }],
  ["web.get", "exact", { url: "https://example.com" }],
  ["weather.get", "exact", { city: "Lyon" }],
  ["translate.create", "exact", { text: "hello", to: "fr" }],
  ["sheets.update", "exact", { sheet: "q3", range: "A1:B2" }],
  ["files.read", "pattern", {}],
  ["files.write", "pattern", { bytes: 2048 }],
  ["search.web", "pattern", { q: "event sourcing" }],
  ["db.read.orders", "pattern", { limit: 50 }],
  ["db.write.orders", "pattern", { table: "orders" }],
  ["payments.refund", "pattern", { currency: "EUR" }],
  ["k8s.get.pods", "pattern", { namespace: "default" }],
  ["s3.getObject", "pattern", { bucket: "reports", key: "q3.md" }],
  ["summarise", "fallback", { doc: "doc-0001" }],
  ["ocr.extract", "fallback", { page: 3 }],
  ["charts.render", "fallback", { kind: "bar" }],
  ["code.lint", "fallback", { file: "src/index.ts" }]
] as const).map(([tool, via, own]) => ({ tool, via, args: argsFor(tool, own) }))

const actions: ReadonlyArray<Action> = calls.map(({ args, tool }) => ({ kind: "tool_call", agent_id: agentId, tool, args }))

// ---------------------------------------------------------------------------
// The harness: one loop for the checks and for both references

interface Figures {
  readonly count: number
  readonly perS: number
  readonly p50Us: number
  readonly p99Us: number
  readonly maxUs: number
}

const percentile = (sorted: Float64Array, q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]

const figuresOf = (latencyMs: Float64Array, seconds: number): Figures => {
  const sorted = Float64Array.from(latencyMs).sort()
  return {
    count: sorted.length,
    perS: sorted.length / seconds,
    p50Us: percentile(sorted, 0.5) * 1_000,
    p99Us: percentile(sorted, 0.99) * 1_000,
    maxUs: sorted[sorted.length - 1] * 1_000
  }
}

/**
 * Runs `call(0)` … `call(count - 1)` from `fibers` fibers, each one call at a
 * time, timing each call with `performance.now()`; with one fiber, a plain
 * sequential loop.
 */
const timed = <E>(count: number, fibers: number, call: (i: number) => Effect.Effect<unknown, E>) =>
  Effect.gen(function*() {
    const latency = new Float64Array(count)
    let next = 0
    const worker = Effect.gen(function*() {
      while (next < count) {
        const i = next++
        const start = performance.now()
        yield* call(i)
        latency[i] = performance.now() - start
      }
    })
    const start = performance.now()
    if (fibers === 1) yield* worker
    else yield* Effect.all(Arr.replicate(worker, fibers), { concurrency: "unbounded", discard: true })
    return figuresOf(latency, (performance.now() - start) / 1_000)
  })

// ---------------------------------------------------------------------------
// The gateway on one event log

const runtimeConfig = {
  // No liveness sweeps or delivery limits in the way.
  livenessTimeoutMs: undefined,
  maxInFlight: 1_000_000_000,
  mailboxCapacity: 1_000_000_000
}

interface Measured {
  readonly sequential: Figures
  readonly concurrent: Figures
  readonly rules: Record<Via, number>
}

const gatewayRun = (
  label: string,
  log: Layer.Layer<EventLog, unknown>,
  counts: { readonly warmup: number; readonly sequential: number; readonly concurrent: number }
) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const registry = yield* Registry
    yield* gateway.loadPolicy(globalPolicy)
    yield* gateway.loadPolicy(teamPolicy)
    yield* registry.register({ agent_id: agentId, name: "analyst", team_id: teamId })

    let refused = 0
    let firstRefusal = ""
    const check = (i: number) =>
      Effect.map(gateway.check(actions[i % actions.length]), (decision) => {
        if (decision.decision !== "allow") {
          if (refused++ === 0) firstRefusal = `${calls[i % calls.length].tool}: ${decision.decision} by ${decision.rule}`
        }
        return decision
      })

    // Each call once, to show which rule decides it: exact, pattern or fallback as intended.
    const rules: Record<Via, number> = { exact: 0, pattern: 0, fallback: 0 }
    for (let i = 0; i < calls.length; i++) {
      const { rule } = yield* check(i)
      const key = rule.slice(rule.indexOf(": tools.") + ": tools.".length)
      const via: Via = key === "*" ? "fallback" : key === calls[i].tool ? "exact" : "pattern"
      if (via !== calls[i].via) return yield* Effect.fail(new Error(`${label}: ${calls[i].tool} decided by ${rule}, not by ${calls[i].via}`))
      rules[via]++
    }

    yield* timed(counts.warmup, 1, check)
    yield* timed(counts.warmup, checkers, check)
    const sequential = yield* timed(counts.sequential, 1, check)
    const concurrent = yield* timed(counts.concurrent, checkers, check)
    if (refused > 0) {
      return yield* Effect.fail(new Error(`${label}: ${refused} checks were not allowed, the first ${firstRefusal}`))
    }
    return { sequential, concurrent, rules } satisfies Measured
  }).pipe(Effect.provide(Switchboard.layer(runtimeConfig).pipe(Layer.provide(log))))

// ---------------------------------------------------------------------------
// The references

/** The pure evaluation of the same actions on the same compiled policies, as the gateway evaluates them. */
const makeEvaluate = Effect.gen(function*() {
  const compiled = [
    compilePolicy(yield* Either.mapLeft(parsePolicy(globalPolicy), (e) => new Error(e.message))),
    compilePolicy(yield* Either.mapLeft(parsePolicy(teamPolicy), (e) => new Error(e.message)))
  ]
  const context: EvaluationContext = {
    agent: { agent_id: agentId, team_id: teamId },
    callsInLastHour: () => 0
  }
  for (let i = 0; i < actions.length; i++) {
    const decided = evaluate(compiled, actions[i], context)
    if (decided.decision !== "allow") {
      return yield* Effect.fail(new Error(`evaluate: ${calls[i].tool} is ${decided.decision} by ${decided.rule}`))
    }
  }
  return (i: number) => Effect.sync(() => evaluate(compiled, actions[i % actions.length], context))
})

const noop = (_: number) => Effect.void

/**
 * Pure CPU work, without allocation or I/O, timed like a check. Made as long
 * as a check's p50, its tail is what the machine alone (other processes, the
 * hypervisor) does to an operation of that length: on a shared 2-core machine
 * that is tens of microseconds at p99, whatever the code.
 */
const spin = (iterations: number) => {
  let x = 1
  for (let i = 0; i < iterations; i++) x = (Math.imul(x, 1_103_515_245) + 12_345) | 0
  return x
}

/** `spin` for about `us` microseconds: iterations per microsecond from the fastest of a few long runs. */
const makeSpin = (us: number) => {
  const iterations = 5_000_000
  let fastest = Number.POSITIVE_INFINITY
  for (let round = 0; round < 5; round++) {
    const start = performance.now()
    spin(iterations)
    fastest = Math.min(fastest, performance.now() - start)
  }
  const count = Math.max(1, Math.round((iterations / (fastest * 1_000)) * us))
  return (_: number) => Effect.sync(() => spin(count))
}

// ---------------------------------------------------------------------------

const us = (value: number) => Math.round(value * 100) / 100

const latencyLine = (label: string, figure: number, baseline: number, baselineLabel: string) =>
  Console.log(
    `${label.padEnd(28)} ${figure.toFixed(2).padStart(9)} µs  baseline ${baselineLabel.padEnd(8)} ${
      baseline.toFixed(3).padStart(7)
    } µs  ratio ${ratio(figure, baseline).toFixed(3)}`
  )

const describe = (f: Figures, unit = "checks/s") =>
  `${formatNumber(f.perS).padStart(9)} ${unit.padEnd(8)}   p50 ${f.p50Us.toFixed(2).padStart(7)} µs, p99 ${
    f.p99Us.toFixed(2).padStart(8)
  } µs, max ${f.maxUs.toFixed(0).padStart(6)} µs`

export const main = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const checks = (yield* Effect.try(() => intOption(args, "checks", "BENCH_CHECKS"))) ?? 20_000
    const sqliteChecks = (yield* Effect.try(() => intOption(args, "sqlite-checks", "BENCH_SQLITE_CHECKS"))) ?? 2_000
    const warmup = Math.min(5_000, checks)

    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "switchboard-bench-" })

    const exact = globalRules.filter(([key]) => !key.includes("*")).length
    yield* Console.log(
      `gateway: check on a global policy of ${globalRules.length} tool rules (${exact} exact, ${
        globalRules.length - exact - 1
      } patterns, * fallback) and a team policy of ${teamRules.length}; ${actions.length} allowed calls in rotation; ${
        formatNumber(checks)
      } checks per figure on memory, ${formatNumber(sqliteChecks)} sequential and ${
        formatNumber(sqliteChecks * 10)
      } with ${checkers} checkers on SQLite (WAL, durability full, in ${dir})`
    )
    // Latency tails follow whatever else the machine runs: say how busy it was.
    yield* Console.log(`machine: ${availableParallelism()} CPUs, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`)

    const evaluateCall = yield* makeEvaluate
    // Warm-up of the references, then the measures, in the same loop as the checks.
    yield* timed(warmup, 1, noop)
    yield* timed(warmup, 1, evaluateCall)
    const noopFigures = yield* timed(checks, 1, noop)
    const evaluateFigures = yield* timed(checks, 1, evaluateCall)

    const memory = yield* gatewayRun("memory", EventLogMemory.layer(), {
      warmup,
      sequential: checks,
      concurrent: checks
    })
    const spinCall = makeSpin(memory.sequential.p50Us)
    yield* timed(warmup, 1, spinCall)
    const spinFigures = yield* timed(checks, 1, spinCall)
    const sqlite = yield* gatewayRun("sqlite", EventLogSqlite.layer({ filename: `${dir}/gateway.db`, durability: "full" }), {
      warmup: Math.min(500, sqliteChecks),
      sequential: sqliteChecks,
      concurrent: sqliteChecks * 10
    })
    yield* Console.log(
      `rules deciding the rotation: ${memory.rules.exact} exact, ${memory.rules.pattern} by pattern, ${memory.rules.fallback} by the * fallback`
    )

    yield* Console.log(`no-op Effect         ${describe(noopFigures, "calls/s")}`)
    yield* Console.log(`pure evaluate        ${describe(evaluateFigures, "calls/s")}`)
    yield* Console.log(`spin, check's p50    ${describe(spinFigures, "calls/s")}`)
    yield* Console.log(`memory, sequential   ${describe(memory.sequential)}`)
    yield* Console.log(`memory, ${checkers} checkers ${describe(memory.concurrent)}`)
    yield* Console.log(`sqlite, sequential   ${describe(sqlite.sequential)}`)
    yield* Console.log(`sqlite, ${checkers} checkers ${describe(sqlite.concurrent)}`)

    const m = memory.sequential
    yield* latencyLine("memory check p50", m.p50Us, noopFigures.p50Us, "no-op")
    yield* latencyLine("memory check p50", m.p50Us, evaluateFigures.p50Us, "evaluate")
    yield* latencyLine("memory check p99", m.p99Us, noopFigures.p99Us, "no-op")
    yield* latencyLine("memory check p99", m.p99Us, evaluateFigures.p99Us, "evaluate")
    yield* latencyLine("memory check p99", m.p99Us, spinFigures.p99Us, "spin")
    yield* printComparison({ label: "memory checks/s", figure: m.perS, baseline: noopFigures.perS, unit: "calls/s" })
    yield* printComparison({ label: "memory checks/s", figure: m.perS, baseline: evaluateFigures.perS, unit: "calls/s" })
    yield* Console.log(
      `memory ${checkers} checkers  ${formatNumber(memory.concurrent.perS).padStart(11)} checks/s  baseline sequential ${
        formatNumber(m.perS).padStart(9)
      } checks/s  ratio ${ratio(memory.concurrent.perS, m.perS).toFixed(3)}`
    )
    yield* Console.log(
      `memory check p99 ${m.p99Us.toFixed(2)} µs  (target < ${targetP99Us} µs in process: ${m.p99Us < targetP99Us ? "met" : "MISSED"})`
    )

    const figures: Record<string, number> = {
      check_p50_us: us(m.p50Us),
      check_p99_us: us(m.p99Us),
      check_max_us: us(m.maxUs),
      checks_per_s: Math.round(m.perS),
      checks_per_s_concurrent: Math.round(memory.concurrent.perS),
      check_concurrent_p50_us: us(memory.concurrent.p50Us),
      check_concurrent_p99_us: us(memory.concurrent.p99Us),
      sqlite_check_p50_us: us(sqlite.sequential.p50Us),
      sqlite_check_p99_us: us(sqlite.sequential.p99Us),
      sqlite_check_max_us: us(sqlite.sequential.maxUs),
      sqlite_checks_per_s: Math.round(sqlite.sequential.perS),
      sqlite_checks_per_s_concurrent: Math.round(sqlite.concurrent.perS),
      sqlite_check_concurrent_p50_us: us(sqlite.concurrent.p50Us),
      sqlite_check_concurrent_p99_us: us(sqlite.concurrent.p99Us),
      noop_p50_us: Math.round(noopFigures.p50Us * 1_000) / 1_000,
      noop_p99_us: Math.round(noopFigures.p99Us * 1_000) / 1_000,
      noop_per_s: Math.round(noopFigures.perS),
      evaluate_p50_us: Math.round(evaluateFigures.p50Us * 1_000) / 1_000,
      evaluate_p99_us: Math.round(evaluateFigures.p99Us * 1_000) / 1_000,
      evaluate_per_s: Math.round(evaluateFigures.perS),
      spin_p50_us: us(spinFigures.p50Us),
      spin_p99_us: us(spinFigures.p99Us),
      checks,
      sqlite_checks: sqliteChecks,
      rules: globalRules.length
    }
    const ratios: Record<string, number> = {
      p50_vs_noop: ratio(m.p50Us, noopFigures.p50Us),
      p99_vs_noop: ratio(m.p99Us, noopFigures.p99Us),
      per_s_vs_noop: ratio(m.perS, noopFigures.perS),
      p50_vs_evaluate: ratio(m.p50Us, evaluateFigures.p50Us),
      p99_vs_evaluate: ratio(m.p99Us, evaluateFigures.p99Us),
      per_s_vs_evaluate: ratio(m.perS, evaluateFigures.perS),
      p99_vs_spin: ratio(m.p99Us, spinFigures.p99Us),
      p99_vs_target: ratio(m.p99Us, targetP99Us),
      concurrent_vs_sequential: ratio(memory.concurrent.perS, m.perS),
      sqlite_p99_vs_memory: ratio(sqlite.sequential.p99Us, m.p99Us),
      sqlite_concurrent_vs_memory: ratio(sqlite.concurrent.perS, memory.concurrent.perS)
    }
    yield* printResult({ bench: "gateway", figures, ratios })
  }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
