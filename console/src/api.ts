/**
 * The console's only way to the server: the API's routes with the signed-in
 * key, and the log's live stream. No route is the console's own; what it
 * does, any client with the same key could do, and the server audits it the
 * same way.
 */
import type { LogRecord } from "./types.js"

/** A problem+json answer (or a failure to reach the server), as the console shows it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown
  ) {
    super(message)
  }
}

export interface Api {
  readonly key: string
  readonly get: <A>(path: string, params?: Record<string, string | number | undefined>) => Promise<A>
  readonly post: <A>(path: string, body?: unknown) => Promise<A>
}

const query = (params: Record<string, string | number | undefined> = {}) => {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== "") search.set(name, String(value))
  const text = search.toString()
  return text === "" ? "" : `?${text}`
}

const answer = async <A>(response: Response): Promise<A> => {
  const text = await response.text()
  let body: unknown = undefined
  try {
    body = text === "" ? undefined : JSON.parse(text)
  } catch {
    body = text
  }
  if (response.ok) return body as A
  const problem = (body ?? {}) as { code?: string; detail?: string; title?: string }
  throw new ApiError(response.status, problem.code ?? String(response.status), problem.detail ?? problem.title ?? response.statusText, body)
}

export const makeApi = (key: string): Api => {
  const headers = (json: boolean): Record<string, string> => ({
    ...(key === "" ? {} : { authorization: `Bearer ${key}` }),
    ...(json ? { "content-type": "application/json" } : {})
  })
  const send = async <A>(path: string, init: RequestInit): Promise<A> => {
    let response: Response
    try {
      response = await fetch(path, init)
    } catch (error) {
      throw new ApiError(0, "UNREACHABLE", `the server cannot be reached (${String(error)})`, undefined)
    }
    return answer<A>(response)
  }
  return {
    key,
    get: (path, params) => send(`${path}${query(params)}`, { headers: headers(false) }),
    post: (path, body = {}) => send(path, { method: "POST", headers: headers(true), body: JSON.stringify(body) })
  }
}

/** How one path segment goes into a URL. */
export const seg = (value: string) => encodeURIComponent(value)

export type LiveStatus = "connecting" | "live" | "retrying" | "off"

/**
 * The log as it grows, for operators: one Server-Sent Events stream
 * (`/log/follow`) for the whole console, handed to every view that listens.
 * A dropped stream is opened again from the record after the last one seen,
 * so nothing is missed or seen twice.
 */
export class LiveLog {
  private source: EventSource | undefined
  private retry: number | undefined
  private listeners = new Set<(records: ReadonlyArray<LogRecord>) => void>()
  private statusListeners = new Set<(status: LiveStatus) => void>()
  private pending: Array<LogRecord> = []
  private flushing = false
  /** The offset of the last record seen. */
  last = 0
  status: LiveStatus = "off"

  constructor(private readonly key: string) {}

  start(from: number) {
    this.last = from - 1
    this.open()
  }

  stop() {
    this.source?.close()
    this.source = undefined
    if (this.retry !== undefined) clearTimeout(this.retry)
    this.setStatus("off")
  }

  /** Calls `listener` with each batch of new records (those that came within a tenth of a second); returns the unsubscribe. */
  listen(listener: (records: ReadonlyArray<LogRecord>) => void) {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  onStatus(listener: (status: LiveStatus) => void) {
    this.statusListeners.add(listener)
    return () => void this.statusListeners.delete(listener)
  }

  private setStatus(status: LiveStatus) {
    this.status = status
    for (const listener of this.statusListeners) listener(status)
  }

  private open() {
    this.setStatus("connecting")
    const params = new URLSearchParams({ from: String(this.last + 1) })
    if (this.key !== "") params.set("access_token", this.key)
    const source = new EventSource(`/log/follow?${params}`)
    this.source = source
    source.onopen = () => this.setStatus("live")
    source.addEventListener("record", (message) => {
      const record = JSON.parse((message as MessageEvent<string>).data) as LogRecord
      if (record.offset <= this.last) return
      this.last = record.offset
      this.pending.push(record)
      // Records come in bursts: views hear of them a batch at a time, not once each.
      if (!this.flushing) {
        this.flushing = true
        window.setTimeout(() => this.flush(), 100)
      }
    })
    source.onerror = () => {
      // EventSource would reconnect from the same `from`; reopen from where it stopped instead.
      source.close()
      if (this.source !== source) return
      this.setStatus("retrying")
      this.retry = window.setTimeout(() => this.open(), 1000)
    }
  }

  private flush() {
    this.flushing = false
    const batch = this.pending
    this.pending = []
    if (batch.length > 0) for (const listener of this.listeners) listener(batch)
  }
}
