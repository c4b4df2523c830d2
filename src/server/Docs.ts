/**
 * The API's documentation page (`/docs`): Scalar, inlined, so that it works
 * offline. Scalar's script is megabytes of text, which a server holds in
 * memory for as long as it has loaded it; so it is loaded when the page is
 * first asked for, not when the server starts, and the page is made anew for
 * each request rather than kept.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Context, Effect, Layer } from "effect"
import { SwitchboardApi } from "./Api.js"
import { problemResponse } from "./Edge.js"

const path = "/docs"

/** Answers `GET /docs` with the page, made by the platform's own Scalar layer on a router of its own. */
export const page: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpServerRequest.HttpServerRequest> =
  Effect.gen(function*() {
    const Scalar = yield* Effect.promise(() => import("@effect/platform/HttpApiScalar"))
    const router = yield* HttpApiBuilder.Router.router.pipe(
      Effect.provide(
        Scalar.layer({ path }).pipe(
          Layer.provideMerge(HttpApiBuilder.Router.Live),
          Layer.provide(Layer.succeed(HttpApi.Api, { api: SwitchboardApi as never, context: Context.empty() }))
        )
      )
    )
    // The page's route answers with a ready response: it needs nothing the request does not give.
    return yield* (router as HttpApp)
  })

type HttpApp = Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpServerRequest.HttpServerRequest>

/** The `/docs` route, added to the API's router. */
export const layer = HttpApiBuilder.Router.use((router) => router.get(path, Effect.catchAll(page, problemResponse)))
