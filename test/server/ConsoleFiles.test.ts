/**
 * The console's files at `/console` (`Console.ts`), over a real socket: the
 * page with a policy that keeps it to its own origin, hashed assets kept
 * for good, nothing outside the built folder (a path that climbs out, a
 * dot file, an unknown type), no key needed for files, and a page that
 * says how to build the console when it was never built.
 */
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect } from "vitest"
import { request, start } from "./harness.js"
import { expectProblem, keysFile, rawRequest } from "./wire.js"

/** A built console in a temporary folder, with a secret beside it that must never be served. */
const builtConsole = Effect.acquireRelease(
  Effect.sync(() => {
    const root = mkdtempSync(join(tmpdir(), "switchboard-console-files-"))
    const directory = join(root, "dist")
    mkdirSync(join(directory, "assets"), { recursive: true })
    writeFileSync(join(directory, "index.html"), "<!doctype html><title>console</title>")
    writeFileSync(join(directory, "assets", "index-AbC123.js"), "console.log('hi')")
    writeFileSync(join(directory, "assets", "index-AbC123.css"), "body{}")
    writeFileSync(join(directory, "assets", ".hidden.js"), "no")
    writeFileSync(join(directory, "assets", "notes.txt"), "no")
    writeFileSync(join(root, "secret.js"), "no")
    return { root, directory }
  }),
  ({ root }) => Effect.sync(() => rmSync(root, { recursive: true, force: true }))
)

describe("the console's files", () => {
  it.scoped("serves the page and its assets without a key, and nothing else", () =>
    Effect.gen(function*() {
      const { directory } = yield* builtConsole
      const { url } = yield* start({ keys: keysFile, server: { consoleDirectory: directory } })
      for (const path of ["/console", "/console/", "/console/index.html"]) {
        const page = yield* request(`${url}${path}`)
        expect({ path, status: page.status, type: page.type, body: page.body }).toEqual({
          path,
          status: 200,
          type: "text/html; charset=utf-8",
          body: "<!doctype html><title>console</title>"
        })
        expect(page.headers.get("content-security-policy")).toContain("default-src 'self'")
        expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'")
        expect(page.headers.get("cache-control")).toBe("no-cache")
      }
      const script = yield* request(`${url}/console/assets/index-AbC123.js`)
      expect({ status: script.status, type: script.type, body: script.body }).toEqual({
        status: 200,
        type: "text/javascript; charset=utf-8",
        body: "console.log('hi')"
      })
      expect(script.headers.get("cache-control")).toContain("immutable")
      expect((yield* request(`${url}/console/assets/index-AbC123.css`)).type).toBe("text/css; charset=utf-8")

      for (const path of [
        "/console/assets/missing.js",
        "/console/assets/.hidden.js",
        "/console/assets/notes.txt",
        "/console/assets/../../secret.js",
        "/console/assets/..%2F..%2Fsecret.js",
        "/console/assets/%2e%2e/%2e%2e/secret.js",
        "/console/secret.js",
        "/console/assets/sub/index-AbC123.js"
      ]) {
        const answer = yield* rawRequest(url, { path })
        expect({ path, status: answer.status }).toEqual({ path, status: 404 })
        expectProblem(answer, 404, "NOT_FOUND")
      }
    }))

  it.scoped("answers a page that says how to build the console when it was never built", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ server: { consoleDirectory: join(tmpdir(), "switchboard-no-console-here") } })
      const page = yield* request(`${url}/console`)
      expect({ status: page.status, type: page.type }).toEqual({ status: 503, type: "text/html; charset=utf-8" })
      expect(page.body).toContain("npm run build:console")
    }))
})
