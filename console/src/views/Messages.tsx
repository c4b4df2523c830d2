/**
 * Messages: the log as it grows, newest first (pausable), filtered by
 * agent, event type and stage, read a page at a time from `GET /log` as
 * one scrolls down; and one message's timeline (`GET
 * /messages/{id}/timeline`, the lines `switchboard replay --message`
 * prints), followed live until the message is settled.
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks"
import { agentsOf, describe, messageOf } from "../../../src/model/Timeline.js"
import type { Event } from "../../../src/schema/Event.js"
import { seg } from "../api.js"
import type { LogEvent, LogPageBody, LogRecord, Timeline } from "../types.js"
import { asApiError, Badge, ErrorNote, Field, isOperator, Page, time, useLoad, useSession, VirtualList } from "../ui.js"
import type { ViewProps } from "./registry.js"

const asEvent = (event: LogEvent) => event as unknown as Event
/** One line for a record, as `switchboard replay` prints it. */
export const describeRecord = (event: LogEvent) => describe(asEvent(event))
export const messageOfRecord = (event: LogEvent) => messageOf(asEvent(event))

const stages = ["RECEIVED", "READ", "FULFILLED", "REJECTED", "FAILED", "TIMED_OUT"]
const terminal = new Set(["FULFILLED", "REJECTED", "FAILED", "TIMED_OUT"])
const eventTypes = [
  "AgentRegistered", "AgentHeartbeat", "AgentDeregistered", "AgentLivenessLost", "TopologyEdgeAdded", "MessageAccepted",
  "MessageRefused", "MessageDelivered", "MessageAcked", "MessageRequeued", "MessageTimedOut", "MessageRedriven",
  "AuditRecorded", "PolicyLoaded", "ApprovalOpened", "ApprovalResolved", "AgentSuspended", "AgentResumed", "AgentKilled",
  "GatewayHalted", "GatewayUnhalted", "BudgetCharged", "ArcpSessionOpened", "ArcpJobAccepted", "ArcpJobEvent", "ArcpJobFinished"
]

/** What the server's filter does, for the records that arrive live. */
const stageOf = (event: LogEvent): string | undefined =>
  event._tag === "MessageAccepted" || event._tag === "MessageRedriven"
    ? "RECEIVED"
    : event._tag === "MessageAcked"
    ? event.stage
    : event._tag === "MessageTimedOut"
    ? "TIMED_OUT"
    : undefined

interface Filter {
  readonly agent: string
  readonly type: string
  readonly stage: string
}

const passes = (filter: Filter, record: LogRecord) =>
  (filter.type === "" || record.event._tag === filter.type) &&
  (filter.stage === "" || stageOf(record.event) === filter.stage) &&
  (filter.agent === "" || agentsOf(asEvent(record.event)).includes(filter.agent))

/** Records kept in memory at most; older ones are read again, a page at a time. */
const keep = 20_000

const Feed = ({ filter, selected, onSelect }: { readonly filter: Filter; readonly selected: string | undefined; readonly onSelect: (id: string) => void }) => {
  const { api, live } = useSession()
  const [records, setRecords] = useState<ReadonlyArray<LogRecord>>([])
  const [next, setNext] = useState<number | undefined>(undefined)
  const [paused, setPaused] = useState(false)
  const [held, setHeld] = useState<ReadonlyArray<LogRecord>>([])
  const [error, setError] = useState<ReturnType<typeof asApiError> | undefined>(undefined)
  const loading = useRef(false)
  const newest = useRef(0)
  const params = { type: filter.type, stage: filter.stage, agent_id: filter.agent }

  useEffect(() => {
    let stale = false
    loading.current = true
    newest.current = 0
    setRecords([])
    setHeld([])
    api.get<LogPageBody>("/log", { ...params, limit: 200 }).then(
      (page) => {
        if (stale) return
        // Records the live stream brought while the page was read are kept above it.
        newest.current = Math.max(newest.current, page.head)
        setRecords((live) => [...live.filter((record) => record.offset > page.head), ...page.records])
        setNext(page.next)
        setError(undefined)
        loading.current = false
      },
      (failure) => {
        if (stale) return
        setError(asApiError(failure))
        loading.current = false
      }
    )
    return () => void (stale = true)
  }, [api, filter.agent, filter.type, filter.stage])

  const pausedRef = useRef(paused)
  pausedRef.current = paused
  useEffect(() => {
    if (live === undefined) return
    return live.listen((batch) => {
      const fresh = batch.filter((record) => record.offset > newest.current && passes(filter, record)).reverse()
      if (batch.length > 0) newest.current = Math.max(newest.current, batch[batch.length - 1].offset)
      if (fresh.length === 0) return
      if (pausedRef.current) setHeld((previous) => [...fresh, ...previous].slice(0, keep))
      else setRecords((previous) => [...fresh, ...previous].slice(0, keep))
    })
  }, [live, filter.agent, filter.type, filter.stage])

  const resume = () => {
    setRecords((previous) => [...held, ...previous].slice(0, keep))
    setHeld([])
    setPaused(false)
  }

  const more = useCallback(() => {
    if (loading.current || next === undefined) return
    loading.current = true
    api.get<LogPageBody>("/log", { ...params, before: next, limit: 500 }).then(
      (page) => {
        setRecords((previous) => [...previous, ...page.records])
        setNext(page.next)
        loading.current = false
      },
      (failure) => {
        setError(asApiError(failure))
        loading.current = false
      }
    )
  }, [api, next, filter.agent, filter.type, filter.stage])

  return (
    <div class="feed">
      <div class="row">
        {paused
          ? <button type="button" class="primary" onClick={resume}>Resume ({held.length} new)</button>
          : <button type="button" onClick={() => setPaused(true)}>Pause</button>}
        <span class="muted" aria-live="polite">{records.length} records shown{next !== undefined ? ", older ones as you scroll" : ""}</span>
      </div>
      <ErrorNote error={error} />
      <VirtualList
        label="Log records, newest first"
        items={records}
        rowHeight={30}
        keyOf={(record) => String(record.offset)}
        selected={undefined}
        onEnd={more}
        onActivate={(record) => {
          const id = messageOfRecord(record.event)
          if (id !== undefined) onSelect(id)
        }}
        header={<div class="cols log-cols"><span>Offset</span><span>Time</span><span>Event</span><span>What</span></div>}
        row={(record) => {
          const id = messageOfRecord(record.event)
          return (
            <div class={`cols log-cols${id !== undefined && id === selected ? " chosen" : ""}`}>
              <span class="num">{record.offset}</span>
              <span class="muted">{time(record.committed_at)}</span>
              <span>{record.event._tag}</span>
              <span class="ellipsis" title={describeRecord(record.event)}>{describeRecord(record.event)}</span>
            </div>
          )
        }}
      />
    </div>
  )
}

/** One message's timeline, followed live (or polled, for an agent's key) until it is settled. */
export const MessageTimeline = ({ message_id }: { readonly message_id: string }) => {
  const { api, live } = useSession()
  const settled = useRef(false)
  const loaded = useLoad(
    () => api.get<Timeline>(`/messages/${seg(message_id)}/timeline`),
    [api, message_id],
    { when: (record) => messageOfRecord(record.event) === message_id, every: live === undefined ? 2000 : undefined }
  )
  const status = loaded.data?.status
  settled.current = status !== undefined && terminal.has(status.stage)
  return (
    <aside class="detail" aria-label={`Message ${message_id}`}>
      <h2>Message <span class="mono">{message_id}</span></h2>
      <ErrorNote error={loaded.error} />
      {status !== undefined && (
        <dl>
          <dt>Stage</dt>
          <dd data-testid="message-stage">
            <Badge tone={status.stage === "FULFILLED" ? "ok" : terminal.has(status.stage) ? "bad" : "info"}>{status.stage}</Badge>
            {status.error_code !== undefined && ` ${status.error_code}`}
            {status.dead_letter && <Badge tone="bad">dead letter</Badge>}
          </dd>
          <dt>From → to</dt><dd class="mono">{status.producer_id} → {status.to}</dd>
          <dt>Attempts</dt><dd>{status.attempts}</dd>
          <dt>Accepted</dt><dd>{time(status.accepted_at)}</dd>
          {status.finished_at !== undefined && (<><dt>Finished</dt><dd>{time(status.finished_at)}</dd></>)}
        </dl>
      )}
      {loaded.data !== undefined && status === undefined && <p class="muted">The runtime no longer holds this message; its records are below.</p>}
      <ol class="timeline" aria-label="Timeline">
        {(loaded.data?.entries ?? []).map((entry) => (
          <li key={entry.offset}>
            <span class="num">#{entry.offset}</span> <span class="muted">{time(entry.at)}</span> {entry.text}
          </li>
        ))}
      </ol>
    </aside>
  )
}

export const MessagesView = ({ params }: ViewProps) => {
  const { caller, go } = useSession()
  const message = params.get("message") ?? undefined
  const [lookup, setLookup] = useState(message ?? "")
  const filter: Filter = { agent: params.get("agent") ?? "", type: params.get("type") ?? "", stage: params.get("stage") ?? "" }
  const navigate = (changes: Record<string, string | undefined>) => {
    const next = new URLSearchParams(params)
    for (const [name, value] of Object.entries(changes)) {
      if (value === undefined || value === "") next.delete(name)
      else next.set(name, value)
    }
    go(`messages?${next}`)
  }
  return (
    <Page title="Messages">
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault()
          navigate({ message: lookup.trim() })
        }}
      >
        <Field label="Message id">
          <input name="message" value={lookup} onInput={(event) => setLookup(event.currentTarget.value)} placeholder="a message id" />
        </Field>
        <button type="submit">Show timeline</button>
      </form>
      {isOperator(caller)
        ? (
          <div class="toolbar">
            <Field label="Agent">
              <input value={filter.agent} onChange={(event) => navigate({ agent: event.currentTarget.value.trim() })} placeholder="any" />
            </Field>
            <Field label="Event type">
              <select value={filter.type} onChange={(event) => navigate({ type: event.currentTarget.value })}>
                <option value="">any</option>
                {eventTypes.map((type) => <option key={type} value={type}>{type}</option>)}
              </select>
            </Field>
            <Field label="Stage">
              <select value={filter.stage} onChange={(event) => navigate({ stage: event.currentTarget.value })}>
                <option value="">any</option>
                {stages.map((stage) => <option key={stage} value={stage}>{stage}</option>)}
              </select>
            </Field>
          </div>
        )
        : <p class="muted">The log is the operator's: with an agent's key, look a message up by its id (one it sent or was sent).</p>}
      <div class="split">
        {isOperator(caller) && <Feed filter={filter} selected={message} onSelect={(id) => navigate({ message: id })} />}
        {message !== undefined && <MessageTimeline message_id={message} />}
      </div>
    </Page>
  )
}
