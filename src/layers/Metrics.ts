/**
 * The runtime's own metrics (`effect/Metric`), exported with the rest of an
 * application's through `@effect/opentelemetry` or read directly.
 */
import { Metric } from "effect"

/** Callers waiting for a message's stage or a human's answer: a number that keeps rising means a leak. */
export const waiters = Metric.gauge("switchboard_waiters", {
  description: "callers waiting for a message stage or an approval"
})
