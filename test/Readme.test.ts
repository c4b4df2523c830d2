import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { main as coordination } from "../examples/coordination.js"
import { main } from "../examples/quickstart.js"

describe("README", () => {
  it("shows the quickstart example exactly as it is typechecked and run here", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const example = readFileSync(new URL("../examples/quickstart.ts", import.meta.url), "utf8")
      .replace(`"../src/index.js"`, `"switchboard"`)
    expect(readme).toContain("```ts\n" + example + "```")
  })

  it("shows the remote agent example exactly as it is typechecked and run (test/client/RemoteAgent.test.ts)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const example = readFileSync(new URL("../examples/remote-agent.ts", import.meta.url), "utf8")
      .replace(`"../src/index.js"`, `"switchboard"`)
      .replace(`"../src/node.js"`, `"switchboard/node"`)
    expect(readme).toContain("```ts\n" + example + "```")
    expect(readme).toContain("keys create --keys keys.json --agent worker")
    expect(readme).toContain("serve --keys keys.json")
  })

  it("shows the SW4RM example exactly as it is typechecked and run (test/server/Grpc.test.ts)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const example = readFileSync(new URL("../examples/sw4rm.ts", import.meta.url), "utf8")
    expect(readme).toContain("```ts\n" + example + "```")
    expect(readme).toContain("serve --grpc-port 50051")
  })

  it("shows the coordination example exactly as it is typechecked and run here", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const example = readFileSync(new URL("../examples/coordination.ts", import.meta.url), "utf8")
      .replace(`"../src/index.js"`, `"switchboard"`)
    expect(readme).toContain("```ts\n" + example + "```")
  })

  it.effect("the coordination example runs: a task queued, a room escalated to a human who approves", () =>
    Effect.gen(function*() {
      expect(yield* coordination).toEqual({ task: "task-1", outcome: "ESCALATED_TO_HITL", resolution: "APPROVED" })
    }))

  it.effect("the quickstart example runs to FULFILLED", () =>
    Effect.gen(function*() {
      const status = yield* main
      expect(status).toMatchObject({ stage: "FULFILLED", to: "worker", attempts: 1 })
    }))
})
