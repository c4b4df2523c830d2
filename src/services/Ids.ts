/**
 * Where new ids come from (message ids, notice ids): a service, so tests can
 * make them deterministic. Random UUIDs when nothing else is provided: it
 * is a `Context.Reference` with that default, so a program needs no layer
 * for it, and any `Ids` layer provided overrides it.
 */
import { Context, Effect, Layer } from "effect"

const uuids = { next: Effect.sync(() => globalThis.crypto.randomUUID()) }

export class Ids extends Context.Reference<Ids>()("switchboard/Ids", {
  defaultValue: (): { readonly next: Effect.Effect<string> } => uuids
}) {
  /** Random UUIDs (version 4): the default. */
  static readonly layerUuid: Layer.Layer<Ids> = Layer.succeed(Ids, uuids)

  /** `prefix-1`, `prefix-2`, ...: for tests and reproducible runs. */
  static readonly layerSequential = (prefix = "id"): Layer.Layer<Ids> =>
    Layer.sync(Ids, () => {
      let n = 0
      return { next: Effect.sync(() => `${prefix}-${++n}`) }
    })
}
