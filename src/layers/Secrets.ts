/**
 * Secret injection: the last step before a tool call is dispatched. The
 * resolved args are the only place a secret's value ever appears; logs, spans
 * and errors carry placeholder names only.
 */
import { Effect, Option, Redacted } from "effect"
import { findPlaceholders, resolvePlaceholders } from "../model/Placeholders.js"
import type { UnknownPlaceholder } from "../schema/Errors.js"
import { SecretStore } from "../services/SecretStore.js"

/**
 * A copy of `args` with every `${NAME}` replaced by the secret `NAME` from
 * the `SecretStore`, and the names substituted. Fails with
 * `UnknownPlaceholder` (listing every unknown name) when the store lacks any
 * of them; then nothing is substituted.
 */
export const injectSecrets = (
  args: unknown
): Effect.Effect<{ readonly args: unknown; readonly names: ReadonlyArray<string> }, UnknownPlaceholder, SecretStore> =>
  Effect.gen(function*() {
    const names = findPlaceholders(args)
    if (names.length === 0) return yield* resolvePlaceholders(args, () => undefined)
    const store = yield* SecretStore
    const found = yield* Effect.forEach(names, (name) => Effect.map(store.get(name), (value) => [name, value] as const))
    const secrets = new Map(found.flatMap(([name, value]) => Option.isSome(value) ? [[name, value.value] as const] : []))
    const lookup = (name: string): string | undefined => {
      const secret = secrets.get(name)
      return secret === undefined ? undefined : Redacted.value(secret)
    }
    const resolution: Effect.Effect<
      { readonly args: unknown; readonly names: ReadonlyArray<string> },
      UnknownPlaceholder
    > = resolvePlaceholders(args, lookup)
    return yield* resolution.pipe(
      Effect.tap((resolved) => Effect.logDebug("secrets injected").pipe(Effect.annotateLogs("names", resolved.names))),
      Effect.tapError((error) =>
        Effect.logDebug("unknown secret placeholders").pipe(Effect.annotateLogs("names", error.names))
      )
    )
  }).pipe(Effect.withSpan("Secrets.inject"))
