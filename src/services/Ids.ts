/**
 * Where new ids come from (message ids, notice ids): a service, so tests can
 * make them deterministic.
 */
import { Context, Effect, Layer } from "effect"

export class Ids extends Context.Tag("switchboard/Ids")<Ids, {
  readonly next: Effect.Effect<string>
}>() {
  /** Random UUIDs (version 4). */
  static readonly layerUuid: Layer.Layer<Ids> = Layer.succeed(Ids, { next: Effect.sync(() => globalThis.crypto.randomUUID()) })

  /** `prefix-1`, `prefix-2`, ...: for tests and reproducible runs. */
  static readonly layerSequential = (prefix = "id"): Layer.Layer<Ids> =>
    Layer.sync(Ids, () => {
      let n = 0
      return { next: Effect.sync(() => `${prefix}-${++n}`) }
    })
}
