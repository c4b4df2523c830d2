/**
 * Spans on the runtime's commands (`Router.send`, `Registry.register`, ...),
 * with the agent, the message and the log offset as attributes, for a tracer
 * that records them: the OpenTelemetry one `Telemetry.layerFromEnv`
 * installs, or any an application provides.
 *
 * Under Effect's default tracer a span is made, kept in memory and dropped:
 * nobody sees it. It is not free (two random ids, a context, a few
 * allocations): made for every call, spans multiplied the router bench's
 * CPU per message by 1.7 to 1.9 and cut its throughput by a third or
 * more. So `traced` makes one only when the tracer is another, and costs one
 * effect and a closure otherwise. That is also why this is not `Effect.fn`,
 * which makes a span every time and captures a stack trace for each call.
 */
import { Context, DefaultServices, Effect, Tracer } from "effect"
import { maxIdLength } from "../schema/Envelope.js"
import type { Committed } from "../services/Runtime.js"

/** Effect's own tracer, the one every fiber has unless a layer installs another. */
const defaultTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/** Span attributes; an undefined one is left out. */
export type Attributes = Readonly<Record<string, string | number | boolean | undefined>>

const annotate = (span: Tracer.Span, attributes: Attributes | undefined) => {
  if (attributes === undefined) return
  for (const key in attributes) {
    const value = attributes[key]
    if (value !== undefined) span.attribute(key, value)
  }
}

/** `self` in a new span, with its attributes, and those of its value once it succeeds. */
const inSpan = <A, E, R>(
  name: string,
  self: Effect.Effect<A, E, R>,
  attributes: Attributes | undefined,
  result: ((value: A) => Attributes) | undefined
) =>
  Effect.useSpan(name, { captureStackTrace: false }, (span) => {
    annotate(span, attributes)
    const within = Effect.withParentSpan(self, span)
    return result === undefined ? within : Effect.tap(within, (value) => annotate(span, result(value)))
  })

/**
 * `self` in a span named `name` when a tracer other than the default is
 * installed, else `self` as it is. `attributes` is read only when a span is
 * made; `result` adds what is known once `self` succeeds (the offset).
 */
export const tracedEffect = <A, E, R>(
  name: string,
  self: Effect.Effect<A, E, R>,
  attributes?: () => Attributes,
  result?: (value: NoInfer<A>) => Attributes
): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => tracer === defaultTracer ? self : inSpan(name, self, attributes?.(), result))

/**
 * A service method whose calls are each traced as `tracedEffect` does, with
 * attributes from its arguments. Untraced, a call costs one more effect and
 * a closure: this wraps the router's hot path.
 */
export const traced = <Args extends ReadonlyArray<any>, Ret extends Effect.Effect<any, any, any>>(
  name: string,
  body: (...args: Args) => Ret,
  attributes?: (...args: Args) => Attributes,
  result?: (value: Effect.Effect.Success<Ret>) => Attributes
) =>
(...args: Args): Effect.Effect<Effect.Effect.Success<Ret>, Effect.Effect.Error<Ret>, Effect.Effect.Context<Ret>> => {
  const self = body(...args)
  return Effect.tracerWith((tracer) =>
    tracer === defaultTracer ? self : inSpan(name, self, attributes?.(...args), result)
  )
}

/**
 * An id from a caller's input, as an attribute: read before the input is
 * decoded, so only a string of an id's length is taken, never whatever junk
 * (a huge string, an object) a bad request holds.
 */
export const idOf = (value: unknown): string | undefined =>
  typeof value === "string" && value.length <= maxIdLength ? value : undefined

/** A field of a caller's input that may not be an object at all. */
export const fieldOf = (input: unknown, field: string): unknown =>
  typeof input === "object" && input !== null ? (input as Record<string, unknown>)[field] : undefined

/** The offset of a command's record, when it has one. */
export const offsetOf = (value: { readonly offset?: number | undefined }): Attributes => ({ offset: value.offset })

/**
 * A command's value, like `valueOf`, and the offset of its last record on
 * the current span, if there is one (a `traced` method's, when a tracer
 * records). Read from the context: `Effect.annotateCurrentSpan` fails
 * without a span, and that failure's error costs more than the whole
 * command.
 */
export const valueAt = <A, E, R>(committed: Effect.Effect<Committed<A>, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(committed, ({ records, value }) =>
    Effect.contextWith((context) => {
      const span = Context.getOption(context, Tracer.ParentSpan)
      if (records.length > 0 && span._tag === "Some" && span.value._tag === "Span") {
        span.value.attribute("offset", records[records.length - 1].offset)
      }
      return value
    }))
