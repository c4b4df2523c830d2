import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { main } from "../examples/quickstart.js"

describe("README", () => {
  it("shows the quickstart example exactly as it is typechecked and run here", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const example = readFileSync(new URL("../examples/quickstart.ts", import.meta.url), "utf8")
      .replace(`"../src/index.js"`, `"switchboard"`)
    expect(readme).toContain("```ts\n" + example + "```")
  })

  it.effect("the quickstart example runs to FULFILLED", () =>
    Effect.gen(function*() {
      const status = yield* main
      expect(status).toMatchObject({ stage: "FULFILLED", to: "worker", attempts: 1 })
    }))
})
