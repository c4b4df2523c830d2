/**
 * §3 "Messages" (session.hello / session.welcome) and "Features, errors,
 * auth": the handshake, the feature intersection, the agent inventory, and
 * every way a hello is refused (UNAUTHENTICATED, then close; every
 * session.error carries a session_id).
 */
import { describe, expect, it } from "vitest"
import {
  agentsOf,
  Conn,
  DEFAULT_FEATURES,
  FEATURES,
  hello,
  ISO_UTC,
  openSession,
  RESUME_TOKEN,
  SESSION_ID,
  tryHello,
  useServer
} from "./harness.js"

const server = useServer()

describe("session.hello / session.welcome", () => {
  it("an agent key's hello is welcomed with a sess_<ULID>, an rt_<64 hex> token and a positive resume window", async () => {
    const { conn, welcome } = await openSession(server(), { token: server().keys.alice })
    expect(welcome.type).toBe("session.welcome")
    expect(welcome.session_id).toMatch(SESSION_ID)
    expect(welcome.payload.resume_token).toMatch(RESUME_TOKEN)
    expect(welcome.payload.resume_window_sec).toBeGreaterThan(0)
    expect(typeof welcome.payload.runtime?.name).toBe("string")
    expect(typeof welcome.payload.runtime?.version).toBe("string")
    expect(Array.isArray(welcome.payload.capabilities?.features)).toBe(true)
    expect(conn.violations).toEqual([])
  })

  it("the resume window defaults to 600 s", async () => {
    const { welcome } = await openSession(server(), { token: server().keys.alice })
    expect(welcome.payload.resume_window_sec).toBe(600)
  })

  it("an operator key is a valid bearer token too", async () => {
    const { welcome } = await openSession(server(), { token: server().keys.operator })
    expect(welcome.session_id).toMatch(SESSION_ID)
  })

  it("two hellos get two different sessions and tokens", async () => {
    const a = await openSession(server(), { token: server().keys.alice })
    const b = await openSession(server(), { token: server().keys.alice })
    expect(a.sessionId).not.toBe(b.sessionId)
    expect(a.resumeToken).not.toBe(b.resumeToken)
  })

  it("the welcome lists the echo agent with version 1.0.0", async () => {
    const { welcome } = await openSession(server(), { token: server().keys.alice })
    const echo = agentsOf(welcome).get("echo")
    expect(echo, JSON.stringify(welcome.payload.capabilities)).toBeDefined()
    const agents = welcome.payload.capabilities.agents as Array<unknown>
    const entry = agents.find((a: any) => a === "echo" || a?.name === "echo") as any
    // With agent_versions negotiated the object form carries the versions.
    expect(entry.versions).toContain("1.0.0")
    if (entry.default !== undefined) expect(entry.versions).toContain(entry.default)
  })

  it("a hello with a fingerprint and a principal in client is welcomed", async () => {
    const conn = await Conn.open(server().wsUrl)
    const welcome = await hello(conn, {
      token: server().keys.alice,
      payload: {
        client: { name: "c", version: "1", fingerprint: "sha256:abc", principal: "alice" },
        auth: { scheme: "bearer", token: server().keys.alice }
      }
    })
    expect(welcome.session_id).toMatch(SESSION_ID)
  })

  it("a hello whose capabilities are absent is welcomed with no features", async () => {
    const conn = await Conn.open(server().wsUrl)
    const welcome = await hello(conn, {
      token: server().keys.alice,
      payload: { client: { name: "c", version: "1" }, auth: { scheme: "bearer", token: server().keys.alice } }
    })
    expect(welcome.payload.capabilities.features).toEqual([])
    expect(welcome.payload.heartbeat_interval_sec).toBeUndefined()
  })
})

describe("feature intersection", () => {
  it("the welcome's features are a subset of the hello's: an unknown feature is never echoed", async () => {
    const asked = ["list_jobs", "subscribe", "x-unknown-feature", "bogus"]
    const { welcome } = await openSession(server(), { token: server().keys.alice, features: asked })
    const features: Array<string> = welcome.payload.capabilities.features
    for (const feature of features) expect(asked).toContain(feature)
    expect(features).not.toContain("bogus")
    expect(features).not.toContain("x-unknown-feature")
  })

  it("the features the issue requires are all advertised when asked for", async () => {
    const { welcome } = await openSession(server(), { token: server().keys.alice, features: [...FEATURES] })
    const features: Array<string> = welcome.payload.capabilities.features
    for (const feature of ["heartbeat", "ack", "list_jobs", "subscribe", "lease_expires_at", "cost.budget", "progress", "result_chunk", "agent_versions"]) {
      expect(features, feature).toContain(feature)
    }
  })

  it("model.use and provisioned_credentials are not advertised: serve has no credential provider", async () => {
    const { welcome } = await openSession(server(), { token: server().keys.alice, features: [...FEATURES] })
    expect(welcome.payload.capabilities.features).not.toContain("model.use")
    expect(welcome.payload.capabilities.features).not.toContain("provisioned_credentials")
  })

  it("the intersection is exact: asking for two implemented features gets exactly those two", async () => {
    const { welcome } = await openSession(server(), { token: server().keys.alice, features: ["list_jobs", "progress"] })
    expect([...welcome.payload.capabilities.features].sort()).toEqual(["list_jobs", "progress"])
  })

  it("heartbeat_interval_sec is sent only when heartbeat is negotiated, and defaults to 30", async () => {
    const without = await openSession(server(), { token: server().keys.alice, features: DEFAULT_FEATURES })
    expect(without.welcome.payload.heartbeat_interval_sec).toBeUndefined()
    const withIt = await openSession(server(), { token: server().keys.alice, features: ["heartbeat"] })
    expect(withIt.welcome.payload.capabilities.features).toContain("heartbeat")
    expect(withIt.welcome.payload.heartbeat_interval_sec).toBe(30)
  })
})

describe("auth: refused hellos", () => {
  const expectRefused = async (conn: Conn, answer: Record<string, any>, codes: ReadonlyArray<string>) => {
    expect(answer.type).toBe("session.error")
    expect(codes).toContain(answer.payload.code)
    expect(answer.payload.retryable).toBe(false)
    // The reference client drops a session.error without a session_id.
    expect(answer.session_id).toMatch(SESSION_ID)
    // §3: an authentication failure is followed by the close.
    if (answer.payload.code === "UNAUTHENTICATED") await conn.waitClosed()
    expect(conn.violations).toEqual([])
  }

  it("an unknown bearer token is UNAUTHENTICATED with a session_id, then the socket closes", async () => {
    const { conn, answer } = await tryHello(server(), { token: "sb_" + "A".repeat(43) })
    await expectRefused(conn, answer, ["UNAUTHENTICATED"])
  })

  it("a token that is not even key-shaped is UNAUTHENTICATED", async () => {
    const { conn, answer } = await tryHello(server(), { token: "not a key" })
    await expectRefused(conn, answer, ["UNAUTHENTICATED"])
  })

  it("an empty token is UNAUTHENTICATED", async () => {
    const { conn, answer } = await tryHello(server(), { token: "" })
    await expectRefused(conn, answer, ["UNAUTHENTICATED", "INVALID_REQUEST"])
  })

  it("a scheme other than bearer is UNAUTHENTICATED even with a valid token", async () => {
    const { conn, answer } = await tryHello(server(), {
      token: "",
      payload: { client: { name: "c", version: "1" }, auth: { scheme: "basic", token: server().keys.alice } }
    })
    await expectRefused(conn, answer, ["UNAUTHENTICATED"])
  })

  it("a hello without auth is refused (UNAUTHENTICATED, or INVALID_REQUEST for the schema)", async () => {
    const { conn, answer } = await tryHello(server(), { token: "", payload: { client: { name: "c", version: "1" } } })
    await expectRefused(conn, answer, ["UNAUTHENTICATED", "INVALID_REQUEST"])
  })

  it("a hello without client is INVALID_REQUEST (or UNAUTHENTICATED), never a welcome", async () => {
    const { conn, answer } = await tryHello(server(), { token: "", payload: { auth: { scheme: "bearer", token: server().keys.alice } } })
    expect(answer.type).toBe("session.error")
    expect(["INVALID_REQUEST", "UNAUTHENTICATED"]).toContain(answer.payload.code)
    expect(answer.session_id).toMatch(SESSION_ID)
    expect(conn.violations).toEqual([])
  })

  it("a refused hello does not open the session: the id it names cannot be resumed", async () => {
    const { answer } = await tryHello(server(), { token: "sb_" + "B".repeat(43) })
    const { answer: resumed } = await tryHello(server(), {
      token: server().keys.alice,
      resume: { session_id: answer.session_id, resume_token: "rt_" + "0".repeat(64), last_event_seq: 0 }
    })
    expect(resumed.type).toBe("session.error")
  })

  it("a message other than hello before the handshake is refused with a session.error, not served", async () => {
    const conn = await Conn.open(server().wsUrl)
    conn.send({ type: "job.submit", session_id: "sess_01HZZZZZZZZZZZZZZZZZZZZZZZ", payload: { agent: "echo", input: 1 } })
    const answer = await conn.next(() => true, "an answer to a submit before hello")
    expect(answer.type).toBe("session.error")
    expect(["INVALID_REQUEST", "UNAUTHENTICATED"]).toContain(answer.payload.code)
    expect(typeof answer.session_id).toBe("string")
    expect(conn.frames.some((f) => f.type === "job.accepted")).toBe(false)
  })

  it("a second hello on an open session is INVALID_REQUEST and the session stays usable", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    conn.send({ type: "session.hello", payload: { client: { name: "c", version: "1" }, auth: { scheme: "bearer", token: server().keys.alice } } })
    const error = await conn.next((f) => f.type === "session.error" || f.type === "session.welcome", "the answer to a second hello")
    expect(error.type).toBe("session.error")
    expect(error.payload.code).toBe("INVALID_REQUEST")
    await conn.barrier()
  })

  it("after a refused hello the server still serves other sessions", async () => {
    await tryHello(server(), { token: "wrong" })
    const { welcome } = await openSession(server(), { token: server().keys.bob })
    expect(welcome.payload.resume_token).toMatch(RESUME_TOKEN)
  })
})

describe("welcome timestamps", () => {
  it("the job listing's created_at and the accepted_at are UTC ISO timestamps", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    conn.send({ type: "job.submit", trace_id: "0af7651916cd43dd8448eb211c80319c", payload: { agent: "echo", input: "t" } })
    const accepted = await conn.next((f) => f.type === "job.accepted", "job.accepted")
    expect(accepted.payload.accepted_at).toMatch(ISO_UTC)
  })
})
