/**
 * `/arcp` through the HTTP app's own upgrade (`Server.app` on an `HttpServer`
 * that is not `Server.layer`'s, so without the server's own upgrade of it):
 * the same session over the platform's socket.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Http from "node:http"
import * as EventLogMemory from "../../src/layers/EventLogMemory.js"
import * as KeysLive from "../../src/layers/KeysLive.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import { echoAgent } from "../../src/services/Arcp.js"
import { SecretStore } from "../../src/services/SecretStore.js"
import * as Server from "../../src/server/Server.js"
import { connect, envelope, hello } from "./harness.js"

describe("ARCP through the HTTP app's upgrade", () => {
  it.scopedLive("welcomes, runs a job and answers bad frames", () =>
    Effect.gen(function*() {
      const runtime = Layer.provideMerge(echoAgent, Switchboard.layer()).pipe(Layer.provideMerge(EventLogMemory.layer()))
      const context = yield* Layer.build(
        Server.app().pipe(
          Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 })),
          Layer.provideMerge(runtime),
          Layer.provide(KeysLive.layerOpen),
          Layer.provide(SecretStore.layerMemory({}))
        )
      )
      const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
      const wire = yield* connect(`ws://127.0.0.1:${address.port}/arcp`)
      wire.send(hello())
      const welcome = yield* Effect.promise(() => wire.next())
      expect(welcome.type).toBe("session.welcome")
      wire.sendRaw("{")
      expect((yield* Effect.promise(() => wire.next())).payload.code).toBe("INVALID_REQUEST")
      wire.send(envelope("job.submit", { agent: "echo", input: 7 }, { session_id: welcome.session_id }))
      expect((yield* Effect.promise(() => wire.nextOf("job.result"))).payload.result).toBe(7)
    }))
})
