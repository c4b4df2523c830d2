/**
 * The typed HTTP client of a Switchboard server, for Effect applications.
 *
 * It is derived from the very `HttpApi` the server implements (`server/Api.ts`),
 * so a route, a body or an error changed on one side fails the typecheck of
 * the other. Every method answers the runtime's own values, and fails with
 * the runtime's own error classes: the server answers each typed error as
 * problem+json (`server/Problem.ts`) and the client decodes it back, so a
 * `NoRoute` from a 404 is the same `NoRoute` an in-process `Registry` fails
 * with, `catchTag("NoRoute", ...)` and all. What only a network can do wrong
 * stays apart: an unreachable server or an unexpected status is an
 * `HttpClientError`, an answer that does not decode a `ParseError`.
 *
 * The client needs an `HttpClient`: `FetchHttpClient.layer` (from
 * `@effect/platform`, wherever `fetch` exists, Node 20 included) or
 * `NodeHttpClient.layerUndici` (from `@effect/platform-node`);
 * `SwitchboardClient.layerNode` (from `switchboard/node`) includes the latter.
 *
 * Path parameters are escaped here: `HttpApiClient` puts them in the URL as
 * they are, so an agent id `a/b` would miss its route and one holding `%2F`
 * would name another agent. Ids are checked against their bound (256
 * characters) once escaped, so an id near the bound made of characters that
 * need escaping is refused by the client.
 */
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Context, Effect, Layer, Redacted } from "effect"
import { SwitchboardApi } from "../server/Api.js"

export interface ClientOptions {
  /** Where the server listens, e.g. `http://127.0.0.1:7070` (a path prefix is kept). */
  readonly baseUrl: string | URL
  /**
   * The API key (`switchboard keys create`), sent as `Authorization: Bearer`.
   * Omit it for a server run open (local development only).
   */
  readonly apiKey?: Redacted.Redacted<string> | string | undefined
}

/** The base URL without a trailing slash: the API's paths all start with one. */
export const baseUrlOf = (options: ClientOptions): string => options.baseUrl.toString().replace(/\/+$/, "")

/** The key as a redacted value, so that it never shows in a log or an error. */
export const apiKeyOf = (options: ClientOptions): Redacted.Redacted<string> | undefined =>
  options.apiKey === undefined
    ? undefined
    : Redacted.isRedacted(options.apiKey)
    ? options.apiKey as Redacted.Redacted<string>
    : Redacted.make(options.apiKey as string)

const derive = (options: ClientOptions) => {
  const key = apiKeyOf(options)
  return HttpApiClient.make(SwitchboardApi, {
    baseUrl: baseUrlOf(options),
    transformClient: key === undefined ? undefined : HttpClient.mapRequest(HttpClientRequest.bearerToken(key))
  })
}

/** The client: one group of methods per group of the API (`agents`, `messages`, `gateway`, `audit`, `assembly`, `health`). */
export type Client = Effect.Effect.Success<ReturnType<typeof derive>>

type AnyMethod = (request?: { readonly path?: Readonly<Record<string, string>> }) => unknown

/** Every method of every group, with the values of its path escaped. */
const escapingPaths = (client: Client): Client =>
  Object.fromEntries(Object.entries(client).map(([group, methods]) => [
    group,
    Object.fromEntries(Object.entries(methods as Record<string, AnyMethod>).map(([name, method]) => [
      name,
      (request?: { readonly path?: Readonly<Record<string, string>> }) =>
        method(
          request?.path === undefined ? request : {
            ...request,
            path: Object.fromEntries(Object.entries(request.path).map(([key, value]) => [key, encodeURIComponent(value)]))
          }
        )
    ]))
  ])) as unknown as Client

/** A client of the server at `baseUrl`, over the `HttpClient` in context. */
export const make = (options: ClientOptions): Effect.Effect<Client, never, HttpClient.HttpClient> =>
  Effect.map(derive(options), escapingPaths)

export class SwitchboardClient extends Context.Tag("switchboard/SwitchboardClient")<SwitchboardClient, Client>() {}

/** The client as a service, over the `HttpClient` the application provides. */
export const layer = (options: ClientOptions): Layer.Layer<SwitchboardClient, never, HttpClient.HttpClient> =>
  Layer.effect(SwitchboardClient, make(options))
