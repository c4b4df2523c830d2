/**
 * The console's static files at `/console`: the page and its assets, as
 * `console/build.ts` built them (on `npm ci`/`npm install`, by `prepare`).
 * The console is a client like any other: it signs in with an API key and
 * reads and acts only through the API's routes and live streams, so this
 * module serves files and nothing else, and needs no key.
 *
 * Files are read from disk on each request (they are small, and a rebuild
 * shows at once); an asset's name carries its content hash, so browsers keep
 * it for good, and the page itself is never cached. A console that was never
 * built is answered with a page that says how to build it.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option } from "effect"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { RouteNotFound } from "../schema/Errors.js"
import { problemResponse } from "./Edge.js"

/** Where the build puts the console: `console/dist`, from `src/server` as from `dist/server`. */
export const defaultDirectory = fileURLToPath(new URL("../../console/dist", import.meta.url))

const path = "/console"

/** An asset's file name as the build makes them: no directories, no dot files. */
const assetName = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}$/

const types: Readonly<Record<string, string>> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json",
  woff2: "font/woff2",
  map: "application/json"
}

/**
 * The page talks to this origin only, runs only its own script, and is
 * framed by nobody: a key typed into it goes nowhere else.
 */
const security = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}

const notBuilt = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Switchboard console</title>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The console is not built</h1>
<p>It is built on <code>npm ci</code> (or <code>npm install</code>) by the <code>prepare</code> script.
Build it with <code>npm run build:console</code>, then reload this page.</p></body></html>`

const read = (file: string) =>
  Effect.tryPromise(() => readFile(file)).pipe(Effect.option)

/** The route's answer for a path under `/console`. */
const answer = (directory: string, url: string) =>
  Effect.gen(function*() {
    const pathname = new URL(url, "http://localhost").pathname
    if (pathname === path || pathname === `${path}/` || pathname === `${path}/index.html`) {
      const page = yield* read(join(directory, "index.html"))
      return Option.match(page, {
        onNone: () => HttpServerResponse.text(notBuilt, {
          status: 503,
          contentType: "text/html; charset=utf-8",
          headers: { "cache-control": "no-store" }
        }),
        onSome: (bytes) =>
          HttpServerResponse.uint8Array(bytes, {
            contentType: "text/html; charset=utf-8",
            headers: { ...security, "cache-control": "no-cache" }
          })
      })
    }
    const name = pathname.startsWith(`${path}/assets/`) ? pathname.slice(`${path}/assets/`.length) : ""
    const type = types[name.slice(name.lastIndexOf(".") + 1)]
    const bytes = assetName.test(name) && type !== undefined ? yield* read(join(directory, "assets", name)) : Option.none()
    if (Option.isNone(bytes)) return problemResponse(new RouteNotFound({ method: "GET", url: pathname }))
    return HttpServerResponse.uint8Array(bytes.value, {
      contentType: type,
      headers: { ...security, "cache-control": "public, max-age=31536000, immutable" }
    })
  })

/** The `/console` routes, added to the API's router, serving the files in `directory`. */
export const layer = (directory: string = defaultDirectory) =>
  HttpApiBuilder.Router.use((router) =>
    Effect.gen(function*() {
      const route = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => answer(directory, request.url))
      yield* router.get(path, route)
      yield* router.get(`${path}/*`, route)
    })
  )
