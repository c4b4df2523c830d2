/**
 * Exporting traces: the spans of the runtime's commands (`Spans.ts`), of
 * the HTTP server and of anything else the application traces, sent to an
 * OpenTelemetry collector over OTLP/HTTP, but only when one is configured.
 *
 * The switch is the standard variable, `OTEL_EXPORTER_OTLP_ENDPOINT` (the
 * collector's base URL; traces go to `<base>/v1/traces`), or the
 * traces-only `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, used as it is. Both are
 * read through Effect's `Config`, so a test or an application can supply
 * them with its own ConfigProvider. Neither set: the layer adds nothing, the
 * default tracer stays, and the runtime makes no span at all.
 *
 * The service is named `switchboard` unless `OTEL_SERVICE_NAME` says
 * otherwise; `OTEL_RESOURCE_ATTRIBUTES` adds to it. Spans are batched and
 * sent in the background; the ones still waiting are flushed when the
 * layer's scope closes.
 */
import { Config, ConfigError, Effect, Either, Layer, Option } from "effect"

/** Where traces go, from the environment; none when tracing is off. */
export const tracesUrl: Config.Config<Option.Option<string>> = Config.all({
  base: Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT")),
  traces: Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}).pipe(
  Config.mapOrFail(({ base, traces }): Either.Either<Option.Option<string>, ConfigError.ConfigError> => {
    // The signal's own variable wins, as the OpenTelemetry specification has it.
    const url = Option.orElse(traces, () => Option.map(base, (root) => `${root.endsWith("/") ? root : `${root}/`}v1/traces`))
    if (Option.isNone(url)) return Either.right(url)
    return URL.canParse(url.value)
      ? Either.right(url)
      : Either.left(ConfigError.InvalidData(
        [Option.isSome(traces) ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT"],
        `not a URL: ${url.value}`
      ))
  })
)

/** The service name spans carry. */
const serviceName = Config.withDefault(Config.nonEmptyString("OTEL_SERVICE_NAME"), "switchboard")

/**
 * Exports traces to `url` over OTLP/HTTP (JSON), as the service `name`. The
 * OpenTelemetry SDK is loaded here, when tracing is on, and not before: a
 * server that does not trace does not carry it (a few megabytes of memory).
 */
export const layer = (options: { readonly url: string; readonly serviceName?: string | undefined }): Layer.Layer<never> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() =>
        Promise.all([
          import("@effect/opentelemetry/NodeSdk"),
          import("@opentelemetry/exporter-trace-otlp-http"),
          import("@opentelemetry/sdk-trace-base")
        ])
      ),
      ([NodeSdk, { OTLPTraceExporter }, { BatchSpanProcessor }]) =>
        Layer.discard(NodeSdk.layer(() => ({
          resource: { serviceName: options.serviceName ?? "switchboard" },
          spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url: options.url }))
        })))
    )
  )

/** `layer` when the environment names a collector, else nothing at all. */
export const layerFromEnv: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const url = yield* tracesUrl
    if (Option.isNone(url)) return Layer.empty
    return layer({ url: url.value, serviceName: yield* serviceName })
  })
)
