import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Metric, MetricBoundaries, Option, TestClock } from "effect"
import { familiesOf, metrics, render, renderSnapshot } from "../src/server/Prometheus.js"
import { InternalError } from "../src/schema/Errors.js"
import { Router } from "../src/services/Router.js"
import { Runtime } from "../src/services/Runtime.js"
import { inbox, register, routerLayer, sendTo } from "./support/router.js"

/** The registry's metrics whose names start with `prefix`: the registry is global, other tests' metrics are in it too. */
const snapshotOf = (prefix: string) =>
  Effect.map(Metric.snapshot, (pairs) => pairs.filter((pair) => pair.metricKey.name.startsWith(prefix)))

/**
 * What a scraper checks of exposition text: every family's TYPE before its
 * samples, no family twice, every sample line well formed, and a newline at
 * the end. Returns the samples, "name{labels}" → value.
 */
const parse = (text: string) => {
  expect(text.endsWith("\n")).toBe(true)
  const samples = new Map<string, string>()
  const typed = new Set<string>()
  let current: string | undefined
  for (const line of text.slice(0, -1).split("\n")) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type !== null) {
      expect(typed.has(type[1]), `family ${type[1]} twice`).toBe(false)
      typed.add(type[1])
      current = type[1]
      continue
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/.exec(line)
    expect(sample, `a sample line: ${line}`).not.toBeNull()
    const [, name, labels = "", value] = sample!
    expect(current !== undefined && name.startsWith(current), `${name} under its TYPE`).toBe(true)
    expect(Number.isNaN(Number(value)) && value !== "NaN" && value !== "+Inf" && value !== "-Inf").toBe(false)
    samples.set(`${name}${labels}`, value)
  }
  return samples
}

describe("Prometheus text from Effect's metric registry", () => {
  it.effect("counters and gauges, their tags as labels, escaped", () =>
    Effect.gen(function*() {
      const requests = Metric.counter("prom_a_requests_total", { description: "requests\nby path \\ method", incremental: true })
      yield* Metric.incrementBy(Metric.tagged(requests, "path", "C:\\dir \"quoted\"\nnext"), 3)
      yield* Metric.increment(Metric.tagged(requests, "path", "/plain"))
      yield* Metric.set(Metric.tagged(Metric.gauge("prom_a_depth"), "agent_id", "a"), 7.5)
      // A counter that may go down is a gauge to Prometheus.
      yield* Metric.incrementBy(Metric.counter("prom_a_balance"), -2)
      yield* Metric.incrementBy(Metric.counter("prom_a_big", { bigint: true, incremental: true }), 2n ** 70n)
      // Names and label names outside the format's alphabet.
      yield* Metric.increment(Metric.tagged(Metric.counter("prom_a.weird-name", { incremental: true }), "9-label", "x"))

      const text = renderSnapshot(yield* snapshotOf("prom_a"))
      expect(text).toBe([
        "# TYPE prom_a_balance gauge",
        "prom_a_balance -2",
        "# TYPE prom_a_big counter",
        "prom_a_big 1180591620717411303424",
        "# TYPE prom_a_depth gauge",
        "prom_a_depth{agent_id=\"a\"} 7.5",
        "# HELP prom_a_requests_total requests\\nby path \\\\ method",
        "# TYPE prom_a_requests_total counter",
        "prom_a_requests_total{path=\"/plain\"} 1",
        "prom_a_requests_total{path=\"C:\\\\dir \\\"quoted\\\"\\nnext\"} 3",
        "# TYPE prom_a_weird_name counter",
        "prom_a_weird_name{_9_label=\"x\"} 1",
        ""
      ].join("\n"))
      parse(text)
    }))

  it.effect("histograms: cumulative _bucket lines with le up to +Inf, then _sum and _count", () =>
    Effect.gen(function*() {
      const latency = Metric.histogram("prom_b_seconds", MetricBoundaries.fromIterable([0.1, 1]), "how long")
      for (const seconds of [0.05, 0.5, 0.7, 5]) yield* Metric.update(Metric.tagged(latency, "op", "a\"b"), seconds)
      const text = renderSnapshot(yield* snapshotOf("prom_b"))
      expect(text).toBe([
        "# HELP prom_b_seconds how long",
        "# TYPE prom_b_seconds histogram",
        "prom_b_seconds_bucket{op=\"a\\\"b\",le=\"0.1\"} 1",
        "prom_b_seconds_bucket{op=\"a\\\"b\",le=\"1\"} 3",
        "prom_b_seconds_bucket{op=\"a\\\"b\",le=\"+Inf\"} 4",
        "prom_b_seconds_sum{op=\"a\\\"b\"} 6.25",
        "prom_b_seconds_count{op=\"a\\\"b\"} 4",
        ""
      ].join("\n"))
      parse(text)
    }))

  it.effect("summaries by quantile, frequencies by key", () =>
    Effect.gen(function*() {
      const summary = Metric.summary({
        name: "prom_c_size",
        maxAge: Duration.minutes(1),
        maxSize: 10,
        error: 0,
        quantiles: [0.5, 1]
      })
      for (const size of [1, 2, 3]) yield* Metric.update(summary, size)
      const kinds = Metric.frequency("prom_c_kinds", { description: "kinds seen" })
      for (const kind of ["b", "a", "b"]) yield* Metric.update(kinds, kind)
      const samples = parse(renderSnapshot(yield* snapshotOf("prom_c")))
      // The quantiles as Effect estimates them: rendered, not computed here.
      const [[, median], [, top]] = (yield* Metric.value(summary)).quantiles
      expect(Object.fromEntries(samples)).toEqual({
        "prom_c_kinds{key=\"a\"}": "1",
        "prom_c_kinds{key=\"b\"}": "2",
        "prom_c_size{quantile=\"0.5\"}": String(Option.getOrThrow(median)),
        "prom_c_size{quantile=\"1\"}": String(Option.getOrThrow(top)),
        "prom_c_size_sum": "6",
        "prom_c_size_count": "3"
      })
    }))

  it.effect("two metrics of different types under one name: the first keeps it", () =>
    Effect.gen(function*() {
      yield* Metric.increment(Metric.counter("prom_d_clash", { incremental: true }))
      yield* Metric.update(Metric.histogram("prom_d_clash", MetricBoundaries.fromIterable([1])), 0.5)
      const families = familiesOf(yield* snapshotOf("prom_d"))
      expect(families).toHaveLength(1)
      parse(render(families))
    }))

  it("writes +Inf, -Inf and NaN as the format spells them", () => {
    expect(render([{ name: "x", type: "gauge", samples: [{ labels: [["v", "inf"]], value: Infinity }, { labels: [["v", "-inf"]], value: -Infinity }, { labels: [["v", "nan"]], value: NaN }] }]))
      .toBe("# TYPE x gauge\nx{v=\"inf\"} +Inf\nx{v=\"-inf\"} -Inf\nx{v=\"nan\"} NaN\n")
  })
})

describe("Prometheus text of the runtime", () => {
  it.scoped("counts messages by stage, mailbox depth, in flight and dead letters from the state, with the append metrics", () =>
    Effect.gen(function*() {
      const router = yield* Router
      yield* register("a")
      yield* register("b")
      yield* register("c")
      const first = yield* sendTo("b", { producer_id: "a", payload: 1 })
      const second = yield* sendTo("b", { producer_id: "a", payload: 2 })
      yield* sendTo("b", { producer_id: "a", payload: 3 })
      // No one takes c's messages: they wait in its mailbox.
      yield* sendTo("c", { producer_id: "a", payload: 4 })
      yield* sendTo("c", { producer_id: "a", payload: 5 })
      const next = yield* inbox("b")
      yield* next(3)
      yield* router.ack({ agent_id: "b", message_id: first.message_id, stage: "FULFILLED" })
      yield* router.ack({ agent_id: "b", message_id: second.message_id, stage: "READ" })

      const before = parse(yield* metrics)
      expect(before.get("switchboard_up")).toBe("1")
      expect(before.get("switchboard_agents_registered")).toBe("3")
      expect(before.get("switchboard_agents_available")).toBe("3")
      expect(before.get("switchboard_log_offset")).toBe(String((yield* router.snapshot).offset))
      expect(before.get("switchboard_messages{stage=\"FULFILLED\"}")).toBe("1")
      expect(before.get("switchboard_messages{stage=\"READ\"}")).toBe("1")
      expect(before.get("switchboard_messages{stage=\"RECEIVED\"}")).toBe("3")
      expect(before.get("switchboard_messages{stage=\"TIMED_OUT\"}")).toBe("0")
      expect(before.get("switchboard_mailbox_queued{agent_id=\"c\"}")).toBe("2")
      expect(before.get("switchboard_mailbox_queued{agent_id=\"b\"}")).toBe("0")
      expect(before.get("switchboard_queued")).toBe("2")
      expect(before.get("switchboard_mailbox_in_flight{agent_id=\"b\"}")).toBe("2")
      expect(before.get("switchboard_in_flight")).toBe("2")
      expect(before.get("switchboard_dead_letters")).toBe("0")
      // Recorded by the loop as it appended.
      expect(Number(before.get("switchboard_append_seconds_count"))).toBeGreaterThan(0)
      expect(Number(before.get("switchboard_events_appended_total{event=\"MessageAccepted\"}"))).toBeGreaterThanOrEqual(5)
      expect(Number(before.get("switchboard_events_appended_total{event=\"MessageAcked\"}"))).toBeGreaterThanOrEqual(2)

      // The two unsettled deliveries run out of attempts: dead letters.
      yield* TestClock.adjust("1 second")
      const after = parse(yield* metrics)
      expect(after.get("switchboard_messages{stage=\"TIMED_OUT\"}")).toBe("2")
      expect(after.get("switchboard_mailbox_dead_letters{agent_id=\"b\"}")).toBe("2")
      expect(after.get("switchboard_dead_letters")).toBe("2")
      expect(after.get("switchboard_in_flight")).toBe("0")
    }).pipe(Effect.provide(routerLayer({ ackWaitMs: 1000, maxAttempts: 1 }))))

  it.effect("a stopped loop still gives the registry's metrics, and switchboard_up 0", () =>
    Effect.gen(function*() {
      yield* Metric.increment(Metric.counter("prom_e_seen", { incremental: true }))
      const stopped = Runtime.of({
        query: () => Effect.fail(new InternalError({ message: "the runtime has stopped" }))
      } as unknown as Runtime["Type"])
      const samples = parse(yield* Effect.provideService(metrics, Runtime, stopped))
      expect(samples.get("switchboard_up")).toBe("0")
      expect(samples.get("prom_e_seen")).toBe("1")
      expect(samples.has("switchboard_queued")).toBe(false)
    }))
})
