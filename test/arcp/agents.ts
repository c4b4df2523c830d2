/**
 * Agents for the ARCP tests, each showing one behaviour of a running job.
 */
import { Deferred, Effect, Layer } from "effect"
import { agent, ArcpError, echoAgent, streamedResult } from "../../src/services/Arcp.js"
import type { Json } from "../../src/schema/Json.js"

/** Opened by a test: the `gated` agent emits one log, waits for it, emits another and returns. */
export const makeGate = () => Deferred.unsafeMake<void>(undefined as never)

export const testAgents = (gate: Deferred.Deferred<void>) =>
  Layer.mergeAll(
    echoAgent,
    agent({ name: "echo", version: "2.0.0" }, (context) => Effect.succeed({ v2: context.input })),
    agent({ name: "gated", version: "1.0.0" }, (context) =>
      Effect.gen(function*() {
        yield* context.log("info", "before")
        yield* Deferred.await(gate)
        yield* context.log("info", "after")
        return "done"
      })),
    agent({ name: "forever", version: "1.0.0" }, () => Effect.never),
    agent({ name: "chunks", version: "1.0.0" }, (context) =>
      Effect.gen(function*() {
        const parts = ["hello, ", "wor", "ld"]
        for (let i = 0; i < parts.length; i++) {
          yield* context.emit({
            kind: "result_chunk",
            body: { result_id: "res_1", chunk_seq: i, data: Buffer.from(parts[i]).toString("base64"), encoding: "base64", more: i < parts.length - 1 }
          })
        }
        return streamedResult({ result_id: "res_1", result_size: 12, summary: "3 chunks" })
      })),
    agent({ name: "chatty", version: "1.0.0" }, (context) =>
      Effect.gen(function*() {
        const n = (context.input as { n: number }).n
        for (let i = 0; i < n; i++) yield* context.log("info", `line ${i}`)
        return n
      })),
    agent({ name: "tools", version: "1.0.0" }, (context) =>
      Effect.gen(function*() {
        const input = context.input as { tools: ReadonlyArray<string>; costs?: ReadonlyArray<number> }
        const answers: Array<Json> = []
        for (const cost of input.costs ?? []) yield* context.cost("cost.inference", cost, "USD")
        for (const tool of input.tools) {
          answers.push(yield* context.toolCall(tool, {}).pipe(Effect.map(() => "ok"), Effect.catchAll((e: ArcpError) =>
            e.code === "PERMISSION_DENIED" ? Effect.succeed(e.code) : Effect.fail(e))))
        }
        return answers
      })),
    agent({ name: "parent", version: "1.0.0" }, (context) =>
      context.delegate({
        delegate_id: "d1",
        agent: "echo",
        input: "from parent",
        lease_request: (context.input as { lease_request: Record<string, ReadonlyArray<string>> }).lease_request
      }).pipe(
        Effect.map((child) => ({ child })),
        Effect.catchAll((e) => Effect.succeed({ error: e.code }))
      ))
  )
