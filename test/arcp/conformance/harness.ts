/**
 * The ARCP conformance suite's harness: the real `switchboard serve` in a
 * child process, and a raw WebSocket client written from PROTOCOLS.md §3
 * alone (not the project's ArcpClient), so that the suite tests the wire a
 * third-party client sees.
 *
 * - `startServer` spawns `node --import tsx src/bin.ts serve --store
 *   sqlite:FILE --host 127.0.0.1 --port P --echo-agent --keys FILE` and
 *   waits until it says it listens (or, for the files that need the script
 *   agent or short windows, fixtures/scriptServer.js with the same
 *   arguments); `restart` starts it again on the same store and keys (after
 *   `kill9`, for the crash tests). Every child is killed when its file ends,
 *   however it ends.
 * - `makeKeys` writes a keys file in the documented format (schema/Keys.ts:
 *   `sb_` + 43 base64url characters, stored as `sha256:` + hex): two agent
 *   keys (two principals) and an operator key.
 * - `Conn` is one WebSocket: it keeps every frame it receives, checks each
 *   against the envelope rules of §3 (`violations`), and lets a test wait for
 *   the next frame that matches, always with a bounded timeout.
 *
 * No assertion here is about time: the timeouts only turn a hang into a
 * failure that says what was awaited.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"
import WebSocket from "ws"

export const root = fileURLToPath(new URL("../../..", import.meta.url))

// ---------------------------------------------------------------------------
// Small helpers

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

/** A ULID-shaped string (26 Crockford base32 characters): enough for message ids. */
export const ulid = () => {
  let time = Date.now()
  let head = ""
  for (let i = 0; i < 10; i++) {
    head = crockford[time % 32] + head
    time = Math.floor(time / 32)
  }
  const bytes = randomBytes(16)
  let tail = ""
  for (let i = 0; i < 16; i++) tail += crockford[bytes[i]! % 32]
  return head + tail
}

export const msgId = () => `msg_${ulid()}`

/** A W3C trace id: 32 lowercase hex digits, not all zero. */
export const traceId = (): string => {
  const hex = randomBytes(16).toString("hex")
  return hex === "0".repeat(32) ? traceId() : hex
}

export const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/
export const SESSION_ID = /^sess_[0-9A-HJKMNP-TV-Z]{26}$/
export const JOB_ID = /^job_[0-9A-HJKMNP-TV-Z]{26}$/
export const RESUME_TOKEN = /^rt_[0-9a-f]{64}$/
export const TRACE_ID = /^[0-9a-f]{32}$/
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

export const ERROR_CODES = [
  "PERMISSION_DENIED",
  "LEASE_SUBSET_VIOLATION",
  "JOB_NOT_FOUND",
  "DUPLICATE_KEY",
  "AGENT_NOT_AVAILABLE",
  "AGENT_VERSION_NOT_AVAILABLE",
  "CANCELLED",
  "TIMEOUT",
  "RESUME_WINDOW_EXPIRED",
  "HEARTBEAT_LOST",
  "LEASE_EXPIRED",
  "BUDGET_EXHAUSTED",
  "INVALID_REQUEST",
  "UNAUTHENTICATED",
  "INTERNAL_ERROR"
] as const

export const FEATURES = [
  "heartbeat",
  "ack",
  "list_jobs",
  "subscribe",
  "lease_expires_at",
  "cost.budget",
  "progress",
  "result_chunk",
  "agent_versions",
  "model.use",
  "provisioned_credentials"
] as const

/** What most tests negotiate: everything but heartbeat and ack, which change the runtime's behaviour and have tests of their own. */
export const DEFAULT_FEATURES = [
  "list_jobs",
  "subscribe",
  "lease_expires_at",
  "cost.budget",
  "progress",
  "result_chunk",
  "agent_versions"
]

// ---------------------------------------------------------------------------
// Keys

export interface Keys {
  readonly file: string
  /** Agent key of principal "alice". */
  readonly alice: string
  /** Agent key of principal "bob": another principal than alice. */
  readonly bob: string
  readonly operator: string
}

const newKey = () => `sb_${randomBytes(32).toString("base64url")}`
const hashOf = (key: string) => `sha256:${createHash("sha256").update(key, "utf8").digest("hex")}`

export const makeKeys = (dir: string): Keys => {
  const alice = newKey()
  const bob = newKey()
  const operator = newKey()
  const created_at = new Date().toISOString()
  const entry = (key: string, rest: Record<string, string>) => {
    const hash = hashOf(key)
    return { id: hash.slice(7, 19), hash, ...rest, created_at }
  }
  const file = join(dir, "keys.json")
  writeFileSync(
    file,
    JSON.stringify({
      version: 1,
      keys: [
        entry(alice, { role: "agent", agent_id: "alice" }),
        entry(bob, { role: "agent", agent_id: "bob" }),
        entry(operator, { role: "operator" })
      ]
    }),
    { mode: 0o600 }
  )
  return { file, alice, bob, operator }
}

// ---------------------------------------------------------------------------
// The server in a child process

const children = new Set<ChildProcess>()
const killAllChildren = () => {
  for (const child of children) child.kill("SIGKILL")
}
process.once("exit", killAllChildren)

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

export interface Server {
  readonly dir: string
  readonly store: string
  readonly keys: Keys
  readonly port: number
  readonly url: string
  /** `ws://127.0.0.1:PORT/arcp` */
  readonly wsUrl: string
  readonly extraArgs: ReadonlyArray<string>
  /** What runs: `src/bin.ts` (switchboard serve), or the script-agent fixture. */
  readonly entry: string
  /** Why the fixture could not start, when the server fell back to `serve`. */
  fixtureError?: string
  child: ChildProcess
  output: string
}

const exitOf = (child: ChildProcess) =>
  new Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode })
    else child.once("exit", (code, signal) => resolve({ code, signal }))
  })

export const isAlive = (server: Server) => server.child.exitCode === null && server.child.signalCode === null

const spawnServer = async (server: Server, timeoutMs: number) => {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      server.entry,
      "serve",
      "--store",
      `sqlite:${server.store}`,
      "--host",
      "127.0.0.1",
      "--port",
      String(server.port),
      "--echo-agent",
      "--keys",
      server.keys.file,
      ...server.extraArgs
    ],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] }
  )
  children.add(child)
  child.once("exit", () => children.delete(child))
  server.child = child
  server.output = ""
  const keep = (chunk: Buffer) => {
    server.output = (server.output + chunk.toString()).slice(-16_000)
  }
  child.stdout!.on("data", keep)
  child.stderr!.on("data", keep)
  const guard = Date.now() + timeoutMs
  while (true) {
    if (!isAlive(server)) {
      throw new Error(`the server exited (code ${child.exitCode}, signal ${child.signalCode}) before listening:\n${server.output}`)
    }
    if (/listening on/.test(server.output)) {
      // Listening is said once the HTTP server is bound; the upgrade route comes with it.
      return server
    }
    if (Date.now() > guard) {
      child.kill("SIGKILL")
      throw new Error(`the server did not listen within ${timeoutMs / 1000} s:\n${server.output}`)
    }
    await sleep(50)
  }
}

/** `switchboard serve --echo-agent` on a fresh SQLite store with fresh keys. */
export const SCRIPT_FIXTURE = "test/arcp/conformance/fixtures/scriptServer.js"

export const startServer = async (
  options: { readonly extraArgs?: ReadonlyArray<string>; readonly timeoutMs?: number; readonly entry?: string } = {}
): Promise<Server> => {
  const dir = mkdtempSync(join(tmpdir(), "arcp-conformance-"))
  const port = await freePort()
  const server: Server = {
    dir,
    store: join(dir, "store.db"),
    keys: makeKeys(dir),
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/arcp`,
    extraArgs: options.extraArgs ?? [],
    entry: options.entry ?? "src/bin.ts",
    child: undefined as unknown as ChildProcess,
    output: ""
  }
  return spawnServer(server, options.timeoutMs ?? 90_000)
}

/** SIGKILL, and wait until the process is gone. */
export const kill9 = async (server: Server) => {
  if (!isAlive(server)) return
  server.child.kill("SIGKILL")
  await exitOf(server.child)
}

/** The same store, keys and port, a new process. */
export const restart = (server: Server, timeoutMs = 90_000) => spawnServer(server, timeoutMs)

/** SIGTERM, SIGKILL after 10 s; removes the store. */
export const stopServer = async (server: Server | undefined) => {
  if (server === undefined) return
  if (isAlive(server)) {
    server.child.kill("SIGTERM")
    const guard = setTimeout(() => server.child.kill("SIGKILL"), 10_000)
    await exitOf(server.child)
    clearTimeout(guard)
  }
  rmSync(server.dir, { recursive: true, force: true })
}

// ---------------------------------------------------------------------------
// The envelope rules of §3, checked on every frame the runtime sends

const SEQ_TYPES = new Set(["job.event", "job.result", "job.error"])
const NO_SESSION_TYPES = new Set(["session.hello", "session.welcome"])
const LOG_LEVELS = new Set(["trace", "debug", "info", "warn", "error", "critical"])

const isObject = (value: unknown): value is Record<string, any> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** What is wrong with an error object, by §3's rules (codes, retry classes). */
export const errorObjectProblems = (error: unknown, where: string): Array<string> => {
  if (!isObject(error)) return [`${where}: the error is not an object`]
  const problems: Array<string> = []
  if (!(ERROR_CODES as ReadonlyArray<string>).includes(error.code)) problems.push(`${where}: unknown code ${JSON.stringify(error.code)}`)
  if (typeof error.message !== "string") problems.push(`${where}: message is not a string`)
  if (typeof error.retryable !== "boolean") problems.push(`${where}: retryable is not a boolean`)
  else if (error.code === "INTERNAL_ERROR" && error.retryable !== true) problems.push(`${where}: INTERNAL_ERROR must be retryable`)
  else if (error.code !== "INTERNAL_ERROR" && error.code !== "TIMEOUT" && error.retryable !== false) {
    problems.push(`${where}: ${error.code} must not be retryable`)
  }
  return problems
}

const eventBodyProblems = (kind: string, body: any, where: string): Array<string> => {
  const problems: Array<string> = []
  const need = (ok: boolean, what: string) => {
    if (!ok) problems.push(`${where}: ${kind} ${what}`)
  }
  if (kind.startsWith("x-vendor.")) return problems
  if (!isObject(body)) return [`${where}: ${kind} body is not an object`]
  switch (kind) {
    case "log":
      need(LOG_LEVELS.has(body.level), `level ${JSON.stringify(body.level)}`)
      need(typeof body.message === "string", "message is not a string")
      break
    case "thought":
      need(typeof body.text === "string", "text is not a string")
      break
    case "tool_call":
      need(typeof body.tool === "string" && typeof body.call_id === "string", "needs tool and call_id")
      break
    case "tool_result":
      need(typeof body.call_id === "string", "needs call_id")
      if (body.error !== undefined) problems.push(...errorObjectProblems(body.error, `${where} tool_result.error`))
      break
    case "status":
      need(typeof body.phase === "string", "needs phase")
      break
    case "metric":
      need(typeof body.name === "string" && typeof body.value === "number", "needs name and a numeric value")
      break
    case "artifact_ref":
      need(typeof body.uri === "string" && typeof body.content_type === "string", "needs uri and content_type")
      break
    case "progress":
      need(typeof body.current === "number" && body.current >= 0, "current must be a number >= 0")
      break
    case "result_chunk":
      need(typeof body.result_id === "string", "needs result_id")
      need(Number.isInteger(body.chunk_seq) && body.chunk_seq >= 0, "chunk_seq")
      need(typeof body.data === "string", "data")
      need(body.encoding === "utf8" || body.encoding === "base64", "encoding")
      need(typeof body.more === "boolean", "more")
      break
    case "delegate":
      need(typeof body.delegate_id === "string" && typeof body.agent === "string", "needs delegate_id and agent")
      break
    default:
      problems.push(`${where}: unknown event kind ${JSON.stringify(kind)}`)
  }
  return problems
}

/** Every rule of §3 a single frame from the runtime can break. */
export const envelopeProblems = (frame: unknown): Array<string> => {
  if (!isObject(frame)) return ["a frame is not a JSON object"]
  const where = `${frame.type} ${frame.id}`
  const problems: Array<string> = []
  if (frame.arcp !== "1.1") problems.push(`${where}: arcp is ${JSON.stringify(frame.arcp)}`)
  if (typeof frame.id !== "string" || frame.id.length === 0) problems.push(`${where}: id must be a non-empty string`)
  if (typeof frame.type !== "string") problems.push(`${where}: type must be a string`)
  if (!NO_SESSION_TYPES.has(frame.type) && (typeof frame.session_id !== "string" || frame.session_id.length === 0)) {
    problems.push(`${where}: no session_id`)
  }
  if (frame.type === "session.welcome" && !SESSION_ID.test(frame.session_id)) {
    problems.push(`${where}: session_id ${JSON.stringify(frame.session_id)} is not sess_<ULID>`)
  }
  if (frame.trace_id !== undefined && !TRACE_ID.test(frame.trace_id)) problems.push(`${where}: trace_id ${frame.trace_id}`)
  if (SEQ_TYPES.has(frame.type)) {
    if (frame.event_seq !== undefined && !(Number.isInteger(frame.event_seq) && frame.event_seq >= 0)) {
      problems.push(`${where}: event_seq ${frame.event_seq}`)
    }
    if (frame.type === "job.event" && frame.event_seq === undefined) problems.push(`${where}: job.event without event_seq`)
  } else if (frame.event_seq !== undefined) {
    problems.push(`${where}: event_seq on a ${frame.type}`)
  }
  if (!isObject(frame.payload)) return [...problems, `${where}: payload is not an object`]
  const payload = frame.payload
  switch (frame.type) {
    case "session.error":
      problems.push(...errorObjectProblems(payload, where))
      break
    case "job.error":
      problems.push(...errorObjectProblems(payload, where))
      if (!["error", "cancelled", "timed_out"].includes(payload.final_status)) {
        problems.push(`${where}: final_status ${payload.final_status}`)
      }
      if (typeof frame.job_id !== "string") problems.push(`${where}: no job_id`)
      break
    case "job.result":
      if (payload.final_status !== "success") problems.push(`${where}: final_status ${payload.final_status}`)
      if (payload.result !== undefined && payload.result_id !== undefined) problems.push(`${where}: both result and result_id`)
      if (typeof frame.job_id !== "string") problems.push(`${where}: no job_id`)
      break
    case "job.event":
      if (typeof payload.kind !== "string") problems.push(`${where}: kind`)
      else problems.push(...eventBodyProblems(payload.kind, payload.body, where))
      if (typeof payload.ts !== "string") problems.push(`${where}: ts`)
      if (typeof frame.job_id !== "string") problems.push(`${where}: no job_id`)
      break
    case "job.accepted":
      if (!JOB_ID.test(payload.job_id)) problems.push(`${where}: job_id ${payload.job_id} is not job_<ULID>`)
      if (typeof payload.agent !== "string" || !payload.agent.includes("@")) problems.push(`${where}: agent ${payload.agent} is not name@version`)
      if (!isObject(payload.lease)) problems.push(`${where}: lease`)
      if (typeof payload.accepted_at !== "string") problems.push(`${where}: accepted_at`)
      break
  }
  return problems
}

// ---------------------------------------------------------------------------
// One WebSocket

export type Frame = Record<string, any>

export interface Closed {
  readonly code: number
  readonly reason: string
}

const openSockets = new Set<WebSocket>()

/** Drops every socket still open: each test file calls it once its tests are done. */
export const dropAllSockets = () => {
  for (const socket of openSockets) socket.terminate()
  openSockets.clear()
}

export class Conn {
  readonly frames: Array<Frame> = []
  /** Texts that were not JSON objects. */
  readonly junk: Array<string> = []
  readonly violations: Array<string> = []
  /** How many frames of each type arrived. */
  readonly counts = new Map<string, number>()
  closed: Closed | undefined
  sessionId: string | undefined
  /** Trace ids of the submits `submit` awaits an answer to. */
  readonly pendingTraces = new Set<string | undefined>()
  /** Answer the runtime's pings (on by default). */
  autoPong = true
  private cursor = 0
  private waiters = new Set<() => void>()
  private closedPromise: Promise<Closed>

  private constructor(readonly socket: WebSocket) {
    this.closedPromise = new Promise((resolve) => {
      socket.on("close", (code, reason) => {
        this.closed = { code, reason: reason.toString() }
        resolve(this.closed)
        this.wake()
      })
    })
    socket.on("error", () => {})
    socket.on("message", (data, isBinary) => {
      const text = isBinary ? Buffer.from(data as Buffer).toString("utf8") : String(data)
      if (isBinary) this.violations.push("the runtime sent a binary frame")
      let frame: unknown
      try {
        frame = JSON.parse(text)
      } catch {
        this.junk.push(text)
        this.violations.push(`the runtime sent a frame that is not JSON: ${text.slice(0, 200)}`)
        this.wake()
        return
      }
      this.violations.push(...envelopeProblems(frame))
      const f = frame as Frame
      if (f.type === "session.ping" && this.autoPong && this.sessionId !== undefined) {
        this.send({ type: "session.pong", payload: { ping_nonce: f.payload?.nonce, received_at: new Date().toISOString() } })
      }
      this.frames.push(f)
      this.counts.set(f.type, (this.counts.get(f.type) ?? 0) + 1)
      this.wake()
    })
  }

  static open(url: string, timeoutMs = 10_000): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { maxPayload: 256 * 1024 * 1024 })
      openSockets.add(socket)
      socket.once("close", () => openSockets.delete(socket))
      const guard = setTimeout(() => {
        socket.terminate()
        reject(new Error(`no WebSocket to ${url} within ${timeoutMs} ms`))
      }, timeoutMs)
      socket.once("open", () => {
        clearTimeout(guard)
        resolve(new Conn(socket))
      })
      socket.once("error", (error) => {
        clearTimeout(guard)
        reject(error)
      })
    })
  }

  private wake() {
    for (const waiter of [...this.waiters]) waiter()
  }

  get isOpen() {
    return this.socket.readyState === WebSocket.OPEN
  }

  /** Sends an envelope: `arcp`, `id` and the session id are filled in unless given (`undefined` keeps a field out). */
  send(message: Frame): Frame {
    const envelope: Frame = { arcp: "1.1", id: msgId(), ...(this.sessionId ? { session_id: this.sessionId } : {}), ...message }
    for (const key of Object.keys(envelope)) if (envelope[key] === undefined) delete envelope[key]
    this.socket.send(JSON.stringify(envelope))
    return envelope
  }

  sendRaw(data: string | Buffer, options: { readonly binary?: boolean } = {}) {
    this.socket.send(data, { binary: options.binary ?? typeof data !== "string" })
  }

  /**
   * The next frame (after those already taken by `next`) that matches; frames
   * skipped over stay available to later calls of `find`, not of `next`.
   */
  next(match: (frame: Frame) => boolean, what: string, timeoutMs = 15_000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        while (this.cursor < this.frames.length) {
          const frame = this.frames[this.cursor++]!
          if (match(frame)) {
            done()
            resolve(frame)
            return
          }
        }
        if (this.closed !== undefined) {
          done()
          reject(new Error(`waiting for ${what}: the socket closed (${this.closed.code} ${this.closed.reason}); frames: ${this.describe()}`))
        }
      }
      const guard = setTimeout(() => {
        done()
        reject(new Error(`waited ${timeoutMs} ms for ${what}; frames: ${this.describe()}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(guard)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }

  /** The first frame ever received (from the start, whatever `next` took) that matches; waits for it. */
  find(match: (frame: Frame) => boolean, what: string, timeoutMs = 15_000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      let scanned = 0
      const check = () => {
        for (; scanned < this.frames.length; scanned++) {
          const frame = this.frames[scanned]!
          if (match(frame)) {
            done()
            resolve(frame)
            return
          }
        }
        if (this.closed !== undefined) {
          done()
          reject(new Error(`waiting for ${what}: the socket closed (${this.closed.code} ${this.closed.reason}); frames: ${this.describe()}`))
        }
      }
      const guard = setTimeout(() => {
        done()
        reject(new Error(`waited ${timeoutMs} ms for ${what}; frames: ${this.describe()}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(guard)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }

  /** Resolves once `ready()` holds (checked on every frame and on close); rejects after the timeout. */
  until(ready: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (ready()) {
          done()
          resolve()
        } else if (this.closed !== undefined) {
          done()
          reject(new Error(`waiting for ${what}: the socket closed (${this.closed.code} ${this.closed.reason}); frames: ${this.describe()}`))
        }
      }
      const guard = setTimeout(() => {
        done()
        reject(new Error(`waited ${timeoutMs} ms for ${what}; frames: ${this.describe()}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(guard)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }

  /** Waits for the socket to close; rejects after the timeout. */
  waitClosed(timeoutMs = 15_000): Promise<Closed> {
    return Promise.race([
      this.closedPromise,
      sleep(timeoutMs).then(() => {
        throw new Error(`the socket did not close within ${timeoutMs} ms; frames: ${this.describe()}`)
      })
    ])
  }

  /**
   * A round trip that proves the runtime has handled everything sent before
   * it: a `session.list_jobs` (answered in order) whose `session.jobs` names
   * its id. Returns the frames received before the answer.
   */
  async barrier(timeoutMs = 15_000): Promise<Array<Frame>> {
    const start = this.frames.length
    const request = this.send({ type: "session.list_jobs", payload: { limit: 1 } })
    const answer = await this.find((f) => f.type === "session.jobs" && f.payload?.request_id === request.id, "the barrier's session.jobs", timeoutMs)
    return this.frames.slice(start, this.frames.indexOf(answer))
  }

  /**
   * Sends, then waits for what the runtime answers: with `error`, until a
   * session.error or job.error came (§3 does not say that a refusal comes
   * before the answers to later messages); then a barrier. A close after a
   * session.error ends the wait too. Returns the frames received meanwhile,
   * without the barrier's answer.
   */
  async exchange(send: () => void, options: { readonly error?: boolean; readonly timeoutMs?: number } = {}): Promise<Array<Frame>> {
    const start = this.frames.length
    send()
    const timeoutMs = options.timeoutMs ?? 15_000
    try {
      if (options.error) {
        await this.find(
          (f) => (f.type === "session.error" || f.type === "job.error") && this.frames.indexOf(f) >= start,
          "a typed error",
          timeoutMs
        )
      }
      await this.barrier(timeoutMs)
    } catch (error) {
      if (this.closed === undefined || !this.frames.slice(start).some((f) => f.type === "session.error")) throw error
    }
    return this.frames.slice(start).filter((f) => f.type !== "session.jobs")
  }

  describe() {
    return JSON.stringify(this.frames.slice(-12).map((f) => ({ type: f.type, seq: f.event_seq, job: f.job_id, code: f.payload?.code, kind: f.payload?.kind, message: typeof f.payload?.message === "string" ? f.payload.message.slice(0, 160) : undefined }))) +
      ` (${this.frames.length} in all)`
  }

  close() {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close()
  }

  /** Drops the TCP connection without a close handshake, as a lost network would. */
  drop() {
    this.socket.terminate()
  }

  count(type: string) {
    return this.counts.get(type) ?? 0
  }

  /** Every frame stamped with an event_seq, in arrival order. */
  seqFrames() {
    return this.frames.filter((f) => typeof f.event_seq === "number")
  }
}

// ---------------------------------------------------------------------------
// Sessions and jobs, as a client written from §3 does them

export interface HelloOptions {
  readonly token: string
  readonly features?: ReadonlyArray<string>
  readonly resume?: { readonly session_id: string; readonly resume_token: string; readonly last_event_seq: number }
  /** Replaces the whole payload. */
  readonly payload?: Frame
}

export const helloPayload = (options: HelloOptions): Frame =>
  options.payload ?? {
    client: { name: "arcp-conformance", version: "0.0.1" },
    auth: { scheme: "bearer", token: options.token },
    capabilities: { encodings: ["json"], features: options.features ?? DEFAULT_FEATURES },
    ...(options.resume ? { resume: options.resume } : {})
  }

export interface Session {
  readonly conn: Conn
  readonly sessionId: string
  readonly welcome: Frame
  readonly resumeToken: string
}

/** Sends a hello and returns the welcome, or the session.error as a thrown error. */
export const hello = async (conn: Conn, options: HelloOptions): Promise<Frame> => {
  conn.send({ type: "session.hello", session_id: undefined, payload: helloPayload(options) })
  const answer = await conn.next((f) => f.type === "session.welcome" || f.type === "session.error", "session.welcome")
  if (answer.type === "session.error") {
    throw new Error(`the hello was refused: ${JSON.stringify(answer.payload)}`)
  }
  conn.sessionId = answer.session_id
  return answer
}

export const openSession = async (server: Server, options: HelloOptions): Promise<Session> => {
  const conn = await Conn.open(server.wsUrl)
  const welcome = await hello(conn, options)
  return { conn, sessionId: welcome.session_id, welcome, resumeToken: welcome.payload.resume_token }
}

/** Opens a connection, sends this hello, and returns the first answer (welcome or error) with the connection. */
export const tryHello = async (server: Server, options: HelloOptions) => {
  const conn = await Conn.open(server.wsUrl)
  conn.send({ type: "session.hello", session_id: undefined, payload: helloPayload(options) })
  const answer = await conn.next((f) => f.type === "session.welcome" || f.type === "session.error", "the hello's answer")
  if (answer.type === "session.welcome") conn.sessionId = answer.session_id
  return { conn, answer }
}

export interface Submitted {
  readonly trace_id: string
  readonly request: Frame
  /** `job.accepted`, or the `job.error` / `session.error` that refused the submit. */
  readonly answer: Frame
  readonly jobId: string | undefined
}

/** Sends a job.submit with a fresh trace id and waits for its job.accepted (matched by trace id) or its refusal. */
export const submit = async (conn: Conn, payload: Frame, options: { readonly trace_id?: string; readonly timeoutMs?: number } = {}): Promise<Submitted> => {
  const trace_id = options.trace_id ?? traceId()
  const start = conn.frames.length
  conn.pendingTraces.add(trace_id)
  const request = conn.send({ type: "job.submit", trace_id, payload })
  const traceOf = (f: Frame) => f.trace_id ?? f.payload?.trace_id
  // A session.error names no request: one sent after this submit is taken as its answer.
  const answer = await conn.find(
    (f) =>
      ((f.type === "job.accepted" || f.type === "job.error") && traceOf(f) === trace_id) ||
      // By order (§3), as a client does when the trace id names no pending submit of its own: an
      // idempotent repeat answers with the first job's job.accepted, whose trace id is the first submit's.
      (f.type === "job.accepted" && conn.frames.indexOf(f) >= start && !conn.pendingTraces.has(traceOf(f))) ||
      (f.type === "session.error" && conn.frames.indexOf(f) >= start) ||
      // A refusal as job.error may not echo the trace id: one for a job never accepted is this submit's.
      (f.type === "job.error" && conn.frames.indexOf(f) >= start &&
        !conn.frames.some((a) => a.type === "job.accepted" && a.payload?.job_id === f.job_id)),
    `the answer to job.submit ${request.id}`,
    options.timeoutMs
  ).finally(() => conn.pendingTraces.delete(trace_id))
  const jobId = answer.type === "job.accepted" ? answer.payload.job_id : answer.job_id
  return { trace_id, request, answer, jobId }
}

export const isTerminal = (f: Frame) => f.type === "job.result" || f.type === "job.error"

/** Waits for the job's job.result or job.error and returns every frame of the job up to it. */
export const finish = async (conn: Conn, jobId: string, timeoutMs = 20_000) => {
  const terminal = await conn.find((f) => f.job_id === jobId && isTerminal(f), `the end of ${jobId}`, timeoutMs)
  const frames = conn.frames.filter((f) => f.job_id === jobId && typeof f.event_seq === "number")
  return { terminal, frames, events: frames.filter((f) => f.type === "job.event") }
}

/** Submits to echo and waits for its result. */
export const echo = async (conn: Conn, input: unknown, extra: Frame = {}) => {
  const submitted = await submit(conn, { agent: "echo", input, ...extra })
  if (submitted.answer.type !== "job.accepted") throw new Error(`echo was refused: ${JSON.stringify(submitted.answer)}`)
  const done = await finish(conn, submitted.jobId!)
  return { ...submitted, ...done }
}

/** Throws unless the seqs are strictly increasing by one. */
export const gapFree = (seqs: ReadonlyArray<number>) => seqs.every((seq, i) => i === 0 || seq === seqs[i - 1]! + 1)

/** The agents a welcome lists, as name → versions, whichever of §3's two forms it uses. */
export const agentsOf = (welcome: Frame): Map<string, { versions: Array<string>; default?: string }> => {
  const agents = new Map<string, { versions: Array<string>; default?: string }>()
  for (const agent of welcome.payload?.capabilities?.agents ?? []) {
    if (typeof agent === "string") agents.set(agent, { versions: [] })
    else agents.set(agent.name, { versions: agent.versions ?? [], default: agent.default })
  }
  return agents
}

/** Session errors answered with a code, in the order received. */
export const errorsOf = (frames: ReadonlyArray<Frame>) =>
  frames.filter((f) => f.type === "session.error" || f.type === "job.error")

// ---------------------------------------------------------------------------
// Per file: one server for the file's tests; sockets dropped when they are done
// (not after each test: some files run tests concurrently, some keep a session
// from beforeAll)

/**
 * The file's server: `switchboard serve --echo-agent`, or, with `fixture`,
 * the same server with the script agent (fixtures/scriptServer.js) and the
 * fixture's `fixtureArgs`; when the fixture cannot start (an implementation
 * without the in-process agent API it uses), plain `serve`, and the tests
 * that need the script agent skip themselves.
 */
export const useServer = (
  options: { readonly fixture?: boolean; readonly fixtureArgs?: ReadonlyArray<string>; readonly serveArgs?: ReadonlyArray<string> } = {}
) => {
  let server: Server | undefined
  beforeAll(async () => {
    if (options.fixture) {
      try {
        server = await startServer({ entry: SCRIPT_FIXTURE, extraArgs: options.fixtureArgs ?? [] })
        return
      } catch (error) {
        server = await startServer()
        server.fixtureError = String(error).slice(0, 2_000)
        return
      }
    }
    server = await startServer({ extraArgs: options.serveArgs ?? [] })
  }, 180_000)
  afterAll(async () => {
    dropAllSockets()
    await stopServer(server)
  }, 30_000)
  return () => {
    if (server === undefined) throw new Error("the server did not start")
    return server
  }
}
