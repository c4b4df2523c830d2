/**
 * Servers the client tests can stop and start again: one in-memory runtime
 * lives for the whole test, and servers come and go over it on the same
 * port, as a server process restarting over its durable store would. Also
 * API keys made here, for servers that require them.
 */
import { HttpServer } from "@effect/platform"
import { Context, DateTime, Effect, Exit, Layer, Scope } from "effect"
import * as EventLogMemory from "../../src/layers/EventLogMemory.js"
import * as KeysLive from "../../src/layers/KeysLive.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import { encodeKey, hashKey, keyIdOf } from "../../src/model/Keys.js"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import type { KeysFile } from "../../src/schema/Keys.js"
import { Keys } from "../../src/services/Keys.js"
import { Registry } from "../../src/services/Registry.js"
import { Router } from "../../src/services/Router.js"
import { SecretStore } from "../../src/services/SecretStore.js"
import * as Server from "../../src/server/Server.js"

export interface Restartable {
  readonly url: string
  readonly registry: Registry["Type"]
  readonly router: Router["Type"]
  /** Stops the server: its sockets close, the runtime stays. */
  readonly stop: Effect.Effect<void>
  /** Starts a server again on the same port, over the same runtime. */
  readonly restart: Effect.Effect<void, unknown>
}

export const restartable = (options: { readonly runtime?: RuntimeOptions; readonly keys?: KeysFile } = {}) =>
  Effect.gen(function*() {
    const runtime = yield* Layer.build(
      Switchboard.layer(options.runtime ?? {}).pipe(
        Layer.provideMerge(EventLogMemory.layer()),
        Layer.merge(options.keys === undefined ? KeysLive.layerOpen : Layer.succeed(Keys, KeysLive.make(options.keys))),
        Layer.merge(SecretStore.layerMemory({}))
      )
    )
    let current: Scope.CloseableScope | undefined
    const listen = (port: number) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        current = scope
        const context = yield* Layer.buildWithScope(
          Server.layer({ port }).pipe(Layer.provide(Layer.succeedContext(runtime))),
          scope
        )
        return (Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress).port
      })
    const stop = Effect.suspend(() => current === undefined ? Effect.void : Scope.close(current, Exit.void))
    yield* Effect.addFinalizer(() => stop)
    const port = yield* listen(0)
    return {
      url: `http://127.0.0.1:${port}`,
      registry: Context.get(runtime, Registry),
      router: Context.get(runtime, Router),
      stop,
      restart: Effect.asVoid(listen(port))
    } satisfies Restartable
  })

/** A keys file, and the keys themselves: one operator key, and one key per agent named. */
export const makeKeys = (agents: ReadonlyArray<string>) => {
  const key = (seed: number) => encodeKey(new Uint8Array(32).fill(seed))
  const entry = (secret: string) => ({ id: keyIdOf(hashKey(secret)), hash: hashKey(secret), created_at: DateTime.unsafeMake(0) })
  const operator = key(1)
  const byAgent = Object.fromEntries(agents.map((agent, i) => [agent, key(i + 2)]))
  const file: KeysFile = {
    version: 1,
    keys: [
      { ...entry(operator), role: "operator" },
      ...agents.map((agent) => ({ ...entry(byAgent[agent]), role: "agent" as const, agent_id: agent }))
    ]
  }
  return { file, operator, agents: byAgent }
}
