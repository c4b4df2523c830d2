import { NodeRuntime, NodeSocket } from "@effect/platform-node"
import { Console, Effect, Stream } from "effect"
import { pathToFileURL } from "node:url"
import { ArcpClient } from "../src/index.js"

// Against `switchboard serve --echo-agent`: hello, submit, the job's events, its result, then a resume.
export const main = (url: string) =>
  Effect.gen(function*() {
    const session = yield* ArcpClient.connect({ url })
    yield* Console.log(`session ${session.session_id}`)
    const job = yield* session.submit({ agent: "echo", input: { hello: "world" } })
    yield* Console.log(`job ${job.job_id} accepted for ${job.accepted.agent}`)
    yield* Stream.runForEach(job.messages, (message) =>
      Console.log(`  #${message.event_seq} ${message.type} ${JSON.stringify(message.payload)}`))
    const { result } = yield* job.result
    // A dropped connection: resume from the last event_seq seen, with the (rotated) resume token.
    const resumed = yield* ArcpClient.connect({
      url,
      resume: { session_id: session.session_id, resume_token: session.resumeToken, last_event_seq: yield* session.lastEventSeq }
    })
    yield* Console.log(`resumed ${resumed.session_id}`)
    return { result, resumed: resumed.session_id === session.session_id }
  }).pipe(Effect.scoped, Effect.provide(NodeSocket.layerWebSocketConstructor))

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  NodeRuntime.runMain(main(process.argv[2] ?? "ws://127.0.0.1:7070/arcp"))
}
