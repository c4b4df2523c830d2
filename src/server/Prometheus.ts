/**
 * GET /metrics: the runtime's figures in the Prometheus text exposition
 * format (0.0.4), so that Prometheus, or anything that scrapes like it,
 * reads them from the process itself, with no exporter beside it.
 *
 * Two sources, rendered alike:
 *
 * - Effect's metric registry (`Metric.snapshot`): what the layers record as
 *   it happens (the append latency and the events appended, the waiters,
 *   `layers/Metrics.ts`) and whatever else the application records with
 *   `effect/Metric`. Counters, gauges, histograms, summaries and
 *   frequencies, their tags as labels.
 * - Gauges read from the runtime's state at scrape time, through
 *   `Runtime.query`: messages by stage, each mailbox's depth, in flight and
 *   dead letters (and their totals), agents registered and available, the
 *   log's offset. The state knows these exactly; counting them as they
 *   change would put work on the hot path for a figure read every few
 *   seconds at most.
 *
 * Nothing here is a rule of the runtime: it reads and formats. The server
 * serves `metrics` with `contentType`.
 */
import { Effect, Metric, MetricKeyType, type MetricPair, MetricState, Option } from "effect"
import { isAvailable } from "../model/Agents.js"
import type { RuntimeState } from "../model/Runtime.js"
import { EnvelopeState } from "../schema/Envelope.js"
import { Runtime } from "../services/Runtime.js"

/** The Content-Type of the text exposition format this module writes. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

export type FamilyType = "counter" | "gauge" | "histogram" | "summary" | "untyped"

/** One line of a family: its name is the family's, plus `suffix` (`_bucket`, `_sum`, `_count`). */
export interface Sample {
  readonly suffix?: string
  readonly labels: ReadonlyArray<readonly [string, string]>
  readonly value: number | bigint
}

/** A metric family: one HELP, one TYPE, then all of its samples, as the format wants them together. */
export interface Family {
  readonly name: string
  readonly help?: string | undefined
  readonly type: FamilyType
  readonly samples: ReadonlyArray<Sample>
}

// ---------------------------------------------------------------------------
// The text format

/** A metric name as the format allows it: `[a-zA-Z_:][a-zA-Z0-9_:]*`, anything else an underscore. */
const metricName = (name: string) => {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[0-9]/.test(cleaned) || cleaned === "" ? `_${cleaned}` : cleaned
}

/** A label name: `[a-zA-Z_][a-zA-Z0-9_]*`. */
const labelName = (name: string) => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[0-9]/.test(cleaned) || cleaned === "" ? `_${cleaned}` : cleaned
}

const escapeLabelValue = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const escapeHelp = (help: string) => help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** A sample value as Go's ParseFloat reads it: `+Inf`, `-Inf` and `NaN` spelled its way. */
export const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Infinity) return "+Inf"
  if (value === -Infinity) return "-Inf"
  return String(value)
}

const formatLabels = (labels: ReadonlyArray<readonly [string, string]>) =>
  labels.length === 0 ? "" : `{${labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`

/** Families as exposition text: each family's HELP and TYPE lines, then its samples; one newline after each line. */
export const render = (families: Iterable<Family>): string => {
  const lines: Array<string> = []
  for (const family of families) {
    const name = metricName(family.name)
    if (family.help !== undefined) lines.push(`# HELP ${name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${name} ${family.type}`)
    for (const sample of family.samples) {
      lines.push(`${name}${sample.suffix ?? ""}${formatLabels(sample.labels)} ${formatValue(sample.value)}`)
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`
}

// ---------------------------------------------------------------------------
// Effect's metric registry

/** A metric's tags as labels, cleaned; a name given twice (or one the type reserves, `le`, `quantile`) is kept once, first. */
const labelsOf = (pair: MetricPair.MetricPair.Untyped, reserved?: string) => {
  const labels: Array<readonly [string, string]> = []
  const seen = new Set<string>(reserved === undefined ? [] : [reserved])
  for (const tag of pair.metricKey.tags) {
    const name = labelName(tag.key)
    if (seen.has(name)) continue
    seen.add(name)
    labels.push([name, tag.value])
  }
  return labels
}

const typeOf = (pair: MetricPair.MetricPair.Untyped): FamilyType => {
  const { keyType } = pair.metricKey
  // A counter that may go down is a gauge to Prometheus, whose counters only rise.
  if (MetricKeyType.isCounterKey(keyType)) return keyType.incremental ? "counter" : "gauge"
  if (MetricKeyType.isGaugeKey(keyType)) return "gauge"
  if (MetricKeyType.isHistogramKey(keyType)) return "histogram"
  if (MetricKeyType.isSummaryKey(keyType)) return "summary"
  // Each value seen so far, counted.
  if (MetricKeyType.isFrequencyKey(keyType)) return "counter"
  return "untyped"
}

const samplesOf = (pair: MetricPair.MetricPair.Untyped): ReadonlyArray<Sample> => {
  const state = pair.metricState
  if (MetricState.isCounterState(state) || MetricState.isGaugeState(state)) {
    const value = MetricState.isCounterState(state) ? state.count : state.value
    return [{ labels: labelsOf(pair), value }]
  }
  if (MetricState.isHistogramState(state)) {
    const labels = labelsOf(pair, "le")
    const samples: Array<Sample> = state.buckets.map(([bound, count]) => ({
      suffix: "_bucket",
      labels: [...labels, ["le", formatValue(bound)]],
      value: count
    }))
    // Effect's boundaries end with +Inf; the format requires it, so it is added if a metric's did not.
    if (state.buckets.at(-1)?.[0] !== Infinity) samples.push({ suffix: "_bucket", labels: [...labels, ["le", "+Inf"]], value: state.count })
    samples.push({ suffix: "_sum", labels, value: state.sum }, { suffix: "_count", labels, value: state.count })
    return samples
  }
  if (MetricState.isSummaryState(state)) {
    const labels = labelsOf(pair, "quantile")
    return [
      ...state.quantiles.map(([quantile, value]): Sample => ({
        labels: [...labels, ["quantile", formatValue(quantile)]],
        value: Option.getOrElse(value, () => NaN)
      })),
      { suffix: "_sum", labels, value: state.sum },
      { suffix: "_count", labels, value: state.count }
    ]
  }
  if (MetricState.isFrequencyState(state)) {
    // Each value a sample of its own, under the label `key`, as @effect/opentelemetry names it.
    const labels = labelsOf(pair, "key")
    return [...state.occurrences].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, count]) => ({
      labels: [...labels, ["key", key]],
      value: count
    }))
  }
  return []
}

const labelKey = (pair: MetricPair.MetricPair.Untyped) =>
  pair.metricKey.tags.map((tag) => `${tag.key}\u0000${tag.value}`).join("\u0001")

/**
 * The registry's metrics as families, by name; within a family, its series
 * ordered by their labels. The format forbids two types under one name:
 * should two metrics of different types share a name, the first keeps it
 * and the other is left out, rather than the whole scrape being refused.
 */
export const familiesOf = (pairs: Iterable<MetricPair.MetricPair.Untyped>): ReadonlyArray<Family> => {
  const byName = new Map<string, { readonly type: FamilyType; help: string | undefined; readonly pairs: Array<MetricPair.MetricPair.Untyped> }>()
  for (const pair of pairs) {
    const name = metricName(pair.metricKey.name)
    const type = typeOf(pair)
    const family = byName.get(name)
    if (family === undefined) {
      byName.set(name, { type, help: Option.getOrUndefined(pair.metricKey.description), pairs: [pair] })
    } else if (family.type === type) {
      family.help ??= Option.getOrUndefined(pair.metricKey.description)
      family.pairs.push(pair)
    }
  }
  return [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, family]) => ({
    name,
    help: family.help,
    type: family.type,
    samples: family.pairs
      .map((pair) => [labelKey(pair), pair] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([, pair]) => samplesOf(pair))
  }))
}

/** Effect's metric registry, as exposition text. */
export const renderSnapshot = (pairs: Iterable<MetricPair.MetricPair.Untyped>): string => render(familiesOf(pairs))

// ---------------------------------------------------------------------------
// The runtime's state

/** What the state tells, counted in the loop; everything else is done outside it. */
export interface RuntimeFigures {
  readonly offset: number
  readonly agentsRegistered: number
  readonly agentsAvailable: number
  readonly messagesByStage: Readonly<Record<EnvelopeState, number>>
  readonly mailboxes: ReadonlyArray<{
    readonly agent_id: string
    readonly queued: number
    readonly inFlight: number
    readonly deadLetters: number
  }>
}

/**
 * Counts the state: one pass over the messages it remembers (finished ones
 * too, for their retention), one over agents and mailboxes. This runs in the
 * loop, between two turns, so it only counts.
 */
export const runtimeFigures = (state: RuntimeState, offset: number): RuntimeFigures => {
  const messagesByStage = Object.fromEntries(EnvelopeState.literals.map((stage) => [stage, 0])) as Record<EnvelopeState, number>
  for (const message of state.messages.values()) messagesByStage[message.stage]++
  let agentsRegistered = 0
  let agentsAvailable = 0
  for (const agent of state.agents.values()) {
    if (agent.registered) agentsRegistered++
    if (isAvailable(agent)) agentsAvailable++
  }
  const mailboxes: Array<RuntimeFigures["mailboxes"][number]> = []
  for (const [agent_id, mailbox] of state.mailboxes) {
    mailboxes.push({ agent_id, queued: mailbox.queued, inFlight: mailbox.inFlight, deadLetters: mailbox.deadLetters.size })
  }
  return { offset, agentsRegistered, agentsAvailable, messagesByStage, mailboxes }
}

const gauge = (name: string, help: string, samples: ReadonlyArray<Sample>): Family => ({ name, help, type: "gauge", samples })
const single = (value: number): ReadonlyArray<Sample> => [{ labels: [], value }]

/** The figures as families: `up` is whether the loop answered at all. */
export const runtimeFamilies = (figures: RuntimeFigures | undefined): ReadonlyArray<Family> => {
  const up = gauge("switchboard_up", "1 while the runtime's command loop runs, 0 once it has stopped", single(figures === undefined ? 0 : 1))
  if (figures === undefined) return [up]
  const mailboxes = [...figures.mailboxes].sort((a, b) => (a.agent_id < b.agent_id ? -1 : a.agent_id > b.agent_id ? 1 : 0))
  const perAgent = (value: (mailbox: RuntimeFigures["mailboxes"][number]) => number) =>
    mailboxes.map((mailbox): Sample => ({ labels: [["agent_id", mailbox.agent_id]], value: value(mailbox) }))
  const total = (value: (mailbox: RuntimeFigures["mailboxes"][number]) => number) =>
    single(mailboxes.reduce((sum, mailbox) => sum + value(mailbox), 0))
  return [
    up,
    gauge("switchboard_log_offset", "offset of the last event the runtime's state reflects", single(figures.offset)),
    gauge("switchboard_agents_registered", "agents registered", single(figures.agentsRegistered)),
    gauge("switchboard_agents_available", "agents registered, live and not shutting down", single(figures.agentsAvailable)),
    gauge(
      "switchboard_messages",
      "messages the runtime holds or remembers, by stage (finished ones for their retention)",
      EnvelopeState.literals.map((stage): Sample => ({ labels: [["stage", stage]], value: figures.messagesByStage[stage] }))
    ),
    gauge("switchboard_queued", "messages queued for delivery, all mailboxes", total((mailbox) => mailbox.queued)),
    gauge("switchboard_mailbox_queued", "messages queued for delivery, by recipient: the mailbox's depth", perAgent((mailbox) => mailbox.queued)),
    gauge("switchboard_in_flight", "messages delivered and not yet settled, all mailboxes", total((mailbox) => mailbox.inFlight)),
    gauge("switchboard_mailbox_in_flight", "messages delivered and not yet settled, by recipient", perAgent((mailbox) => mailbox.inFlight)),
    gauge("switchboard_dead_letters", "dead letters, all mailboxes", total((mailbox) => mailbox.deadLetters)),
    gauge("switchboard_mailbox_dead_letters", "dead letters, by recipient", perAgent((mailbox) => mailbox.deadLetters))
  ]
}

/**
 * The whole exposition: the runtime's gauges, then the registry's metrics.
 * It never fails: a stopped loop still leaves the registry to read, and says
 * so with `switchboard_up 0`.
 */
export const metrics: Effect.Effect<string, never, Runtime> = Effect.gen(function*() {
  const { query } = yield* Runtime
  const figures = yield* Effect.orElseSucceed(query(runtimeFigures), () => undefined)
  const runtime = runtimeFamilies(figures)
  const taken = new Set(runtime.map((family) => family.name))
  // A registry metric named like one of the runtime's gauges would make two families of one name.
  const registry = familiesOf(yield* Metric.snapshot).filter((family) => !taken.has(family.name))
  return render([...runtime, ...registry])
})
