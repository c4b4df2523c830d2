/**
 * Replay: a scrubber over the log's offsets. At each offset the server folds
 * the log up to it (`GET /state/summary?at=N`, the same `evolve` as the
 * live runtime; a step forward folds only the records since the last) and
 * the console shows that state in figures, its messages a page at a time,
 * and the record that led to it (`GET /log?before=N+1&limit=1`). The
 * buttons and the arrow keys step one event at a time.
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks"
import type { LogPageBody, LogRecord, Summary } from "../types.js"
import { asApiError, Badge, ErrorNote, Field, Page, time, useLoad, useSession, VirtualList } from "../ui.js"
import { describeRecord } from "./Messages.js"
import type { ViewProps } from "./registry.js"

const counts = (values: Readonly<Record<string, number>>) =>
  Object.entries(values).sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, n]) => `${n} ${name}`).join(", ") || "none"

type Row = Summary["page"][number]

const Figures = ({ summary }: { readonly summary: Summary }) => (
  <div class="grid">
    <section class="card">
      <h2>Agents ({summary.agents.registered})</h2>
      <p>{summary.agents.live} live · {counts(summary.agents.by_state)}</p>
      <h2>Messages ({summary.messages.total})</h2>
      <p data-testid="replay-stages">{counts(summary.messages.by_stage)}</p>
      <p>{summary.messages.queued} queued · {summary.messages.in_flight} in flight · {summary.messages.dead_letters} dead letters</p>
    </section>
    <section class="card">
      <h2>Gateway</h2>
      <p>{summary.gateway.halted !== undefined ? <Badge tone="bad">halted: {summary.gateway.halted}</Badge> : "not halted"}</p>
      <p>Suspended: {summary.gateway.suspended.slice(0, 50).join(", ") || "none"} · killed: {summary.gateway.killed.slice(0, 50).join(", ") || "none"}</p>
      <p>Approvals: {counts(summary.gateway.approvals)}</p>
      <p>{summary.gateway.policies} policies · {summary.gateway.audits} audit records · {summary.edges} edges</p>
    </section>
  </div>
)

/** The messages the state holds at `at`, read a page at a time as one scrolls. */
const Messages = ({ at, first }: { readonly at: number; readonly first: Summary }) => {
  const { api } = useSession()
  const [rows, setRows] = useState<ReadonlyArray<Row>>(first.page)
  const [next, setNext] = useState(first.next)
  const loading = useRef(false)
  useEffect(() => {
    setRows(first.page)
    setNext(first.next)
  }, [first])
  const more = useCallback(() => {
    if (loading.current || next === undefined) return
    loading.current = true
    api.get<Summary>("/state/summary", { at, after: next, limit: 500 }).then(
      (page) => {
        setRows((previous) => [...previous, ...page.page])
        setNext(page.next)
        loading.current = false
      },
      () => void (loading.current = false)
    )
  }, [api, at, next])
  return (
    <section class="card">
      <h2>Messages at this offset</h2>
      <VirtualList
        label="Messages at this offset"
        items={rows}
        rowHeight={28}
        height="30vh"
        keyOf={(row) => row.message_id}
        onEnd={more}
        header={<div class="cols state-cols"><span>Message</span><span>Stage</span><span>From → to</span><span>Where</span><span>Attempts</span></div>}
        row={(row) => (
          <div class="cols state-cols">
            <span class="mono ellipsis">{row.message_id}</span>
            <span>{row.stage}{row.dead_letter ? " (dead letter)" : ""}</span>
            <span class="mono ellipsis">{row.producer_id} → {row.to}</span>
            <span>{row.location.replace("_", " ")}</span>
            <span class="num">{row.attempts}</span>
          </div>
        )}
      />
    </section>
  )
}

export const ReplayView = ({ params }: ViewProps) => {
  const { api, go } = useSession()
  // The head is read again now and then, not at each record: following the head means folding as the log grows.
  const head = useLoad(() => api.get<{ offset: number }>("/log/head"), [api], { every: 10_000 })
  const last = head.data?.offset ?? 0
  const at = Math.max(0, Math.min(Number(params.get("at") ?? last) || 0, last))
  const [shown, setShown] = useState<{ at: number; summary: Summary; record: LogRecord | undefined } | undefined>(undefined)
  const [error, setError] = useState<ReturnType<typeof asApiError> | undefined>(undefined)
  const [draft, setDraft] = useState<number | undefined>(undefined)
  const target = draft ?? at
  const moveTo = (offset: number) => go(`replay?at=${Math.max(0, Math.min(offset, last))}`)

  useEffect(() => {
    if (head.data === undefined) return
    let stale = false
    // While the scrubber is dragged, the state is asked for once it rests.
    const timer = window.setTimeout(() => {
      Promise.all([
        api.get<Summary>("/state/summary", { at, limit: 200 }),
        at === 0 ? Promise.resolve(undefined) : api.get<LogPageBody>("/log", { before: at + 1, limit: 1 }).then((page) => page.records[0])
      ]).then(
        ([summary, record]) => {
          if (stale) return
          setShown({ at, summary, record })
          setError(undefined)
        },
        (failure) => !stale && setError(asApiError(failure))
      )
    }, 150)
    return () => {
      stale = true
      window.clearTimeout(timer)
    }
  }, [api, at, head.data !== undefined])

  return (
    <Page title="Replay" actions={<span class="muted">the log has {last} records</span>}>
      <ErrorNote error={head.error ?? error} />
      <div class="scrubber">
        <button type="button" aria-label="The empty state, before the first record" onClick={() => moveTo(0)} disabled={at === 0}>First</button>
        <button type="button" aria-label="One record back" onClick={() => moveTo(at - 1)} disabled={at === 0}>◀</button>
        <input
          type="range"
          aria-label="Offset"
          min={0}
          max={last}
          value={target}
          onInput={(event) => setDraft(Number(event.currentTarget.value))}
          onChange={(event) => {
            setDraft(undefined)
            moveTo(Number(event.currentTarget.value))
          }}
        />
        <button type="button" aria-label="One record on" onClick={() => moveTo(at + 1)} disabled={at >= last}>▶</button>
        <button type="button" aria-label="The last record" onClick={() => moveTo(last)} disabled={at >= last}>Last</button>
        <Field label="Offset">
          <input type="number" name="offset" min={0} max={last} value={target} onChange={(event) => moveTo(Number(event.currentTarget.value))} />
        </Field>
      </div>
      {shown !== undefined && (
        <>
          <h2 data-testid="replay-offset" aria-live="polite">
            State at offset {shown.summary.offset}{shown.at !== at && <span class="muted"> (loading {at}…)</span>}
          </h2>
          {shown.record !== undefined
            ? <p class="record"><span class="num">#{shown.record.offset}</span> <span class="muted">{time(shown.record.committed_at)}</span> <strong>{shown.record.event._tag}</strong> {describeRecord(shown.record.event)}</p>
            : <p class="muted">The empty state, before the first record.</p>}
          <Figures summary={shown.summary} />
          <Messages at={shown.summary.offset} first={shown.summary} />
        </>
      )}
    </Page>
  )
}
