/**
 * Where the gateway finds the values of `${NAME}` placeholders. Values come
 * out `Redacted` and stay so until the moment they are substituted into a
 * tool call's args (see `injectSecrets`), so printing, logging or serialising
 * them shows `<redacted>`.
 */
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"

export class SecretStore extends Context.Tag("switchboard/SecretStore")<SecretStore, {
  /** The secret called `name`, or `None` when the store has no such secret. */
  readonly get: (name: string) => Effect.Effect<Option.Option<Redacted.Redacted<string>>>
}>() {
  /** A fixed set of secrets, for tests and embedded use. Plain strings are wrapped in `Redacted` at once. */
  static readonly layerMemory = (
    secrets: Readonly<Record<string, string | Redacted.Redacted<string>>>
  ): Layer.Layer<SecretStore> =>
    Layer.sync(SecretStore, () => {
      // A Map, not the record: `get("constructor")` must not find Object's prototype
      const values = new Map(
        Object.entries(secrets).map(([name, value]) => [name, Redacted.isRedacted(value) ? value : Redacted.make(value)])
      )
      return { get: (name) => Effect.sync(() => Option.fromNullable(values.get(name))) }
    })

  /**
   * Secret `NAME` is the config value `${prefix}NAME`, read through the
   * `ConfigProvider` current when the layer is built (the environment by
   * default; `ConfigProvider.fromMap` in tests). The prefix is required, and
   * an empty one refused (the layer dies), so that `${PATH}` cannot reach an
   * unrelated environment variable. Values are
   * read on every `get`, never cached, and never parsed (commas and spaces
   * stay as they are).
   */
  static readonly layerEnv = (options: { readonly prefix: string }): Layer.Layer<SecretStore> =>
    options.prefix === ""
      ? Layer.die(new Error("SecretStore.layerEnv: the prefix must not be empty"))
      : Layer.effect(
        SecretStore,
        Effect.configProviderWith((provider) =>
          Effect.succeed({
            get: (name: string) =>
              // A missing value is None; any other config failure is a broken provider, hence a defect
              provider.load(Config.option(Config.redacted(options.prefix + name))).pipe(Effect.orDie)
          })
        )
      )
}
