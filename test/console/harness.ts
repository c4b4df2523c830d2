/**
 * What the console's browser tests (and the screenshot script) share: a
 * real server on 127.0.0.1 over a SQLite store (so a test can tamper with
 * the file), the console built from its current sources, and Debian's
 * Chromium driven by playwright-core. Never a downloaded browser: where
 * `/usr/bin/chromium` is missing the tests skip and say why.
 */
import { HttpServer } from "@effect/platform"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Browser, chromium, type Locator } from "playwright-core"
import { build, defaultOutDir, root } from "../../console/build.js"
import { EventLogSqlite } from "../../src/node.js"
import * as KeysLive from "../../src/layers/KeysLive.js"
import * as Switchboard from "../../src/layers/Switchboard.js"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import type { KeysFile } from "../../src/schema/Keys.js"
import { echoAgent } from "../../src/services/Arcp.js"
import { Gateway } from "../../src/services/Gateway.js"
import { Keys } from "../../src/services/Keys.js"
import { Registry } from "../../src/services/Registry.js"
import { Router } from "../../src/services/Router.js"
import { SecretStore } from "../../src/services/SecretStore.js"
import * as Server from "../../src/server/Server.js"

export const chromiumPath = process.env.SWITCHBOARD_CHROMIUM ?? "/usr/bin/chromium"

/** Why the browser tests cannot run here, or undefined when they can. */
export const noBrowser = existsSync(chromiumPath)
  ? undefined
  : `no Chromium at ${chromiumPath} (apt-get install chromium; .ci/run installs it): the console's browser tests are skipped`

/** As the machine's notes say Chromium runs here: headless, as root, with no network of its own. */
export const launch = (): Promise<Browser> =>
  chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage"
    ]
  })

const newest = (path: string): number => {
  const stat = statSync(path)
  return stat.isDirectory() ? Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name)))) : stat.mtimeMs
}

/**
 * The console's files, built from the sources as they are: `console/dist`
 * when it is newer than every source (as `npm ci` leaves it), else a fresh
 * build in a temporary folder.
 */
export const consoleDirectory = async (): Promise<string> => {
  const page = join(defaultOutDir, "index.html")
  const sources = Math.max(newest(join(root, "src")), newest(join(root, "index.html")), newest(join(root, "build.ts")))
  if (existsSync(page) && statSync(page).mtimeMs >= sources) return defaultOutDir
  const directory = mkdtempSync(join(tmpdir(), "switchboard-console-"))
  process.once("exit", () => rmSync(directory, { recursive: true, force: true }))
  await build(directory)
  return directory
}

export interface Running {
  readonly url: string
  readonly filename: string
  readonly registry: Registry["Type"]
  readonly router: Router["Type"]
  readonly gateway: Gateway["Type"]
  /** Runs an effect to its end, as a test step, with the server's services. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Registry | Router | Gateway | SecretStore>) => Promise<A>
  readonly close: () => Promise<void>
}

/** What the server answered a request: its status and its body (parsed when JSON). */
export interface Answer {
  readonly status: number
  readonly body: any
}

/**
 * A request to the server's API beside the browser: a GET, or a POST of
 * `body` as JSON, with `key` (by default `defaultKey`) as the bearer.
 */
export const requester = (url: () => string, defaultKey: string) =>
async (path: string, init: { readonly body?: unknown; readonly key?: string } = {}): Promise<Answer> => {
  const response = await fetch(`${url()}${path}`, {
    method: init.body === undefined ? "GET" : "POST",
    headers: {
      authorization: `Bearer ${init.key ?? defaultKey}`,
      ...(init.body === undefined ? {} : { "content-type": "application/json" })
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  const text = await response.text()
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
}

/** A server on a free port over a new SQLite store, serving the console from `directory`, until `close`. */
export const serve = async (options: {
  readonly keys: KeysFile
  readonly directory: string
  readonly runtime?: RuntimeOptions
  /** Register the ARCP agent `echo`, as `switchboard serve --echo-agent` does. */
  readonly echoAgent?: boolean
}): Promise<Running> => {
  const folder = mkdtempSync(join(tmpdir(), "switchboard-console-store-"))
  const filename = join(folder, "console.db")
  const scope = Effect.runSync(Scope.make())
  const core = Switchboard.layer(options.runtime ?? {}).pipe(Layer.provideMerge(EventLogSqlite.layer({ filename })))
  const runtime = options.echoAgent === true ? Layer.provideMerge(echoAgent, core) : core
  const layer = Server.layer({ port: 0, consoleDirectory: options.directory }).pipe(
    Layer.provideMerge(runtime),
    Layer.provide(Layer.succeed(Keys, KeysLive.make(options.keys))),
    Layer.provideMerge(SecretStore.layerMemory({}))
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
  return {
    url: `http://127.0.0.1:${address.port}`,
    filename,
    registry: Context.get(context, Registry),
    router: Context.get(context, Router),
    gateway: Context.get(context, Gateway),
    run: (effect) => Effect.runPromise(Effect.provide(effect, context)),
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      rmSync(folder, { recursive: true, force: true })
    }
  }
}

/** Waits until `locator` (with `text`, when given) shows: Playwright's own waiting on a condition, never a fixed pause. */
export const shows = (locator: Locator, text?: string | RegExp) =>
  (text === undefined ? locator : locator.filter({ hasText: text })).first().waitFor({ state: "visible", timeout: 15_000 })

/** Waits until nothing matches `locator`. */
export const gone = (locator: Locator) => locator.first().waitFor({ state: "detached", timeout: 15_000 })
