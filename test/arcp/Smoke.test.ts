import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { echoAgent } from "../../src/services/Arcp.js"
import { connect, envelope, hello, start } from "./harness.js"

describe("ARCP smoke", () => {
  it.scoped("hello, submit, events, result", () =>
    Effect.gen(function*() {
      const server = yield* start({ agents: echoAgent })
      const wire = yield* connect(server.url)
      wire.send(hello())
      const welcome = yield* Effect.promise(() => wire.next())
      console.log(JSON.stringify(welcome))
      expect(welcome.type).toBe("session.welcome")
      const session_id = welcome.session_id
      wire.send(envelope("job.submit", { agent: "echo", input: { a: 1 } }, { session_id }))
      for (let i = 0; i < 4; i++) console.log(JSON.stringify(yield* Effect.promise(() => wire.next())))
    }))
})
