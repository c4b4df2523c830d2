/**
 * The README's ARCP example, exactly as it is there, run against a real
 * server with the echo agent (what `switchboard serve --echo-agent` runs).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { main } from "../../examples/arcp.js"
import { echoAgent } from "../../src/services/Arcp.js"
import { connect, envelope, hello, start } from "./harness.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

describe("README, ARCP", () => {
  it("shows the ARCP example exactly as it is typechecked and run here", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
    const example = readFileSync(new URL("../../examples/arcp.ts", import.meta.url), "utf8").replace(`"../src/index.js"`, `"switchboard"`)
    expect(readme).toContain("```ts\n" + example + "```")
    expect(readme).toContain("serve --echo-agent")
  })

  it.scopedLive("runs hello, submit, events, result and resume against the echo agent", () =>
    Effect.gen(function*() {
      const server = yield* start({ agents: echoAgent })
      expect(yield* main(server.url)).toEqual({ result: { hello: "world" }, resumed: true })
    }))

  it("shows the remote ARCP agent example exactly as it is typechecked and run here", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
    const example = readFileSync(new URL("../../examples/arcp-remote-agent.ts", import.meta.url), "utf8")
      .replace(`"../src/index.js"`, `"switchboard"`)
      .replace(`"../src/node.js"`, `"switchboard/node"`)
    expect(readme).toContain("```ts\n" + example + "```")
  })

  it.scopedLive("runs the remote ARCP agent example in a process of its own, and a job submitted on /arcp reaches it", () =>
    Effect.gen(function*() {
      const server = yield* start()
      // The example in its own process group (npx does not pass signals on), stopped with the scope.
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn("npx", ["tsx", "examples/arcp-remote-agent.ts"], {
            cwd: root,
            env: { ...process.env, SWITCHBOARD_URL: server.baseUrl },
            stdio: "ignore",
            detached: true
          })),
        (child) => Effect.sync(() => {
          try {
            process.kill(-child.pid!, "SIGKILL")
          } catch {
            // Gone already.
          }
        })
      )
      yield* Effect.iterate(false, {
        while: (found) => !found,
        body: () => Effect.zipRight(Effect.sleep("100 millis"), Effect.map(server.arcp.agents, (agents) => agents.some((a) => a.name === "summarise")))
      }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error("the example never registered") }))
      const wire = yield* connect(server.url)
      wire.send(hello())
      const welcome = yield* Effect.promise(() => wire.nextOf("session.welcome"))
      wire.send(envelope("job.submit", { agent: "summarise", input: "a text to summarise" }, { session_id: welcome.session_id }))
      const result = yield* Effect.promise(() => wire.nextOf("job.result"))
      expect(result.payload.result).toEqual({ summary: "a text to summarise", length: 19 })
    }), 90_000)
})
