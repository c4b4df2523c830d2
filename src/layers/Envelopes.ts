import { Clock, Effect } from "effect"
import { buildEnvelope, type EnvelopeInput } from "../model/Envelopes.js"
import { Ids } from "../services/Ids.js"

/** A new envelope: its id from `Ids`, its timestamp from the `Clock`. */
export const newEnvelope = (input: EnvelopeInput) =>
  Effect.gen(function*() {
    const ids = yield* Ids
    return buildEnvelope(input, yield* ids.next, yield* Clock.currentTimeMillis)
  })
