import * as Grpc from "@grpc/grpc-js"
import * as ProtoLoader from "@grpc/proto-loader"
import { randomUUID } from "node:crypto"
import { fileURLToPath, pathToFileURL } from "node:url"

// A plain SW4RM client: grpc-js and SW4RM's .proto files (Switchboard ships its copy in proto/), nothing of Switchboard's.
const definition = ProtoLoader.loadSync(["router.proto", "registry.proto"], {
  includeDirs: [fileURLToPath(new URL("../proto", import.meta.url))],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true
})
const sw4rm = Grpc.loadPackageDefinition(definition).sw4rm as any

const envelope = (producer_id: string, message_type: string, content_type: string, body: unknown) => {
  const payload = Buffer.from(JSON.stringify(body))
  const now = Date.now()
  return {
    message_id: randomUUID(),
    producer_id,
    correlation_id: randomUUID(),
    sequence_number: 1,
    message_type,
    content_type,
    content_length: payload.length,
    timestamp: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1_000_000 },
    payload,
    state: "ENVELOPE_STATE_SENT"
  }
}

// Agent B sends to no one in particular (every other agent); agent A takes it, answers with a RECEIVED ACK
// envelope, and settles the delivery; B hears the ACK on its own stream.
export const main = async (address: string) => {
  const credentials = Grpc.credentials.createInsecure()
  const registry = new sw4rm.registry.RegistryService(address, credentials)
  const router = new sw4rm.router.RouterService(address, credentials)
  const call = (client: any, method: string, request: unknown) =>
    new Promise<any>((resolve, reject) =>
      client[method](request, (error: Error | null, answer: unknown) => (error === null ? resolve(answer) : reject(error))))
  try {
    for (const agent_id of ["agent-a", "agent-b"]) await call(registry, "RegisterAgent", { agent: { agent_id, name: agent_id } })
    // Each stream's first item: A's first delivery, and B's first ACK. A cancelled stream ends with an error: expected.
    const first = (agent_id: string) => {
      const stream = router.StreamIncoming({ agent_id }).on("error", () => undefined)
      return { stream, item: new Promise<any>((resolve) => stream.once("data", resolve)) }
    }
    const b = first("agent-b")
    const a = first("agent-a")
    const question = envelope("agent-b", "DATA", "application/json", { question: "ready?" })
    console.log("B sends", question.message_id, await call(router, "SendMessage", { msg: question }))
    const { msg, seq } = await a.item
    console.log(`A receives ${msg.message_id} as delivery ${seq}: ${msg.payload.toString()}`)
    const ack = { ack_for_message_id: msg.message_id, ack_stage: 1 } // RECEIVED
    await call(router, "SendMessage", { msg: envelope("agent-a", "ACKNOWLEDGEMENT", "application/vnd.sw4rm.ack+json;v=1", ack) })
    const settled = await call(router, "AckDelivery", { agent_id: "agent-a", seq, message_id: msg.message_id })
    const answer = await b.item
    console.log(`B hears from ${answer.msg.producer_id}: ${answer.msg.payload.toString()}; A's delivery recorded: ${settled.recorded}`)
    a.stream.cancel()
    b.stream.cancel()
    return { ack: JSON.parse(answer.msg.payload.toString()), recorded: settled.recorded as boolean, sent: question.message_id }
  } finally {
    router.close()
    registry.close()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main(process.argv[2] ?? "127.0.0.1:50051").then(() => process.exit(0), (error) => {
    console.error(error)
    process.exit(1)
  })
}
