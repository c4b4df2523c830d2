/**
 * The runtime's own metrics (`effect/Metric`), exported with the rest of an
 * application's through `@effect/opentelemetry`, served as Prometheus text
 * at /metrics, or read directly.
 *
 * Only what the state cannot tell lives here: how long things took, how
 * often something happened. Counts the state knows exactly (messages by
 * stage, mailbox depths) are read from it when asked, not counted on the hot
 * path (`server/Prometheus.ts`).
 */
import { Metric, MetricBoundaries, MetricLabel } from "effect"
import type { Event } from "../schema/Event.js"

/** Callers waiting for a message's stage or a human's answer: a number that keeps rising means a leak. */
export const waiters = Metric.gauge("switchboard_waiters", {
  description: "callers waiting for a message stage or an approval"
})

/**
 * The time the log takes to make one turn's events durable: the floor under
 * every command's latency. From 100 µs (memory, a small SQLite batch) to
 * seconds (a stalled disk or database); beyond that, only the count matters.
 */
export const appendSeconds = Metric.histogram(
  "switchboard_append_seconds",
  MetricBoundaries.fromIterable([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]),
  "time the event log took to append one turn's events, in seconds (appends that succeeded)"
)

/** Events made durable, by their tag: what the runtime has been doing, at the log's own rate. */
export const eventsAppended = Metric.counter("switchboard_events_appended_total", {
  description: "events appended to the log, by event tag",
  incremental: true
})

/** Appends the log refused or failed: each one failed every command of its turn. */
export const appendFailures = Metric.counter("switchboard_append_failures_total", {
  description: "appends to the event log that failed",
  incremental: true
})

// The labels of each event tag, made once: the metric finds its counter for
// a label array it has seen by identity, where a new array would cost a
// lookup by value for every event. Event tags are a closed set, so this stays
// small.
const tagLabels = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
const labelsOf = (tag: string) => {
  let labels = tagLabels.get(tag)
  if (labels === undefined) tagLabels.set(tag, labels = [MetricLabel.make("event", tag)])
  return labels
}

/** One append that succeeded, from the loop, once a turn: synchronous and cheap. */
export const recordAppend = (events: ReadonlyArray<Event>, seconds: number) => {
  appendSeconds.unsafeUpdate(seconds, [])
  for (let i = 0; i < events.length; i++) eventsAppended.unsafeUpdate(1, labelsOf(events[i]._tag))
}

/** One append that failed, from the loop. Not timed: a failure's time says little about the log's speed. */
export const recordAppendFailure = () => appendFailures.unsafeUpdate(1, [])
