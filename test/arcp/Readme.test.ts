/**
 * The README's ARCP example, exactly as it is there, run against a real
 * server with the echo agent (what `switchboard serve --echo-agent` runs).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { main } from "../../examples/arcp.js"
import { echoAgent } from "../../src/services/Arcp.js"
import { start } from "./harness.js"

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
})
