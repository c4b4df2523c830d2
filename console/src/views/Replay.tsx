/**
 * Replay: a scrubber over the log's offsets. At each offset the server folds
 * the log up to it (`GET /state?at=N`, the same `evolve` as the live
 * runtime) and the console shows that state and the record that led to it
 * (`GET /log?before=N+1&limit=1`); the buttons and the arrow keys step one
 * event at a time.
 */
import { useEffect, useMemo, useState } from "preact/hooks"
import type { LogPageBody, LogRecord, StateAt } from "../types.js"
import { asApiError, Badge, ErrorNote, Field, Page, time, useLoad, useSession, VirtualList } from "../ui.js"
import { describeRecord } from "./Messages.js"
import type { ViewProps } from "./registry.js"

const count = <A,>(values: Iterable<A>, key: (value: A) => string) => {
  const counts = new Map<string, number>()
  for (const value of values) counts.set(key(value), (counts.get(key(value)) ?? 0) + 1)
  return [...counts].sort(([a], [b]) => (a < b ? -1 : 1))
}

const Summary = ({ state }: { readonly state: StateAt["state"] }) => {
  const agents = Object.entries(state.agents)
  const messages = useMemo(() => Object.entries(state.messages), [state])
  const boxes = Object.values(state.mailboxes)
  const gateway = state.gateway
  return (
    <div class="grid">
      <section class="card">
        <h2>Agents ({agents.length})</h2>
        <p>{agents.filter(([, agent]) => agent.live).length} live · {count(agents, ([, agent]) => agent.state).map(([state, n]) => `${n} ${state}`).join(", ") || "none"}</p>
        <h2>Messages ({messages.length})</h2>
        <p data-testid="replay-stages">{count(messages, ([, message]) => message.stage).map(([stage, n]) => `${n} ${stage}`).join(", ") || "none"}</p>
        <p>
          {boxes.reduce((sum, box) => sum + box.queued.PRIVILEGED.length + box.queued.STANDARD.length + box.queued.BULK.length, 0)} queued ·{" "}
          {boxes.reduce((sum, box) => sum + box.in_flight, 0)} in flight · {boxes.reduce((sum, box) => sum + box.dead_letters.length, 0)} dead letters
        </p>
      </section>
      <section class="card">
        <h2>Gateway</h2>
        <p>{gateway.halted !== undefined ? <Badge tone="bad">halted: {gateway.halted}</Badge> : "not halted"}</p>
        <p>Suspended: {Object.keys(gateway.suspended).join(", ") || "none"} · killed: {gateway.killed.join(", ") || "none"}</p>
        <p>Approvals: {count(Object.values(gateway.approvals), (approval) => approval.status).map(([status, n]) => `${n} ${status}`).join(", ") || "none"}</p>
        <p>{Object.keys(gateway.policies).length} policies · {gateway.audits} audit records · {state.edges.length} edges</p>
      </section>
      <section class="card wide">
        <h2>Messages at this offset</h2>
        <VirtualList
          label="Messages at this offset"
          items={messages}
          rowHeight={28}
          height="30vh"
          keyOf={([id]) => id}
          header={<div class="cols state-cols"><span>Message</span><span>Stage</span><span>From → to</span><span>Where</span><span>Attempts</span></div>}
          row={([id, message]) => (
            <div class="cols state-cols">
              <span class="mono ellipsis">{id}</span>
              <span>{message.stage}{message.dead_letter ? " (dead letter)" : ""}</span>
              <span class="mono ellipsis">{message.producer_id} → {message.to}</span>
              <span>{message.location.replace("_", " ")}</span>
              <span class="num">{message.attempts}</span>
            </div>
          )}
        />
      </section>
    </div>
  )
}

export const ReplayView = ({ params }: ViewProps) => {
  const { api, go } = useSession()
  // The head is read again now and then, not at each record: a move of the head may mean a fold of the whole log.
  const head = useLoad(() => api.get<{ offset: number }>("/log/head"), [api], { every: 10_000 })
  const last = head.data?.offset ?? 0
  const at = Math.max(0, Math.min(Number(params.get("at") ?? last) || 0, last))
  const [shown, setShown] = useState<{ at: number; state: StateAt; record: LogRecord | undefined } | undefined>(undefined)
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
        api.get<StateAt>("/state", { at }),
        at === 0 ? Promise.resolve(undefined) : api.get<LogPageBody>("/log", { before: at + 1, limit: 1 }).then((page) => page.records[0])
      ]).then(
        ([state, record]) => {
          if (stale) return
          setShown({ at, state, record })
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
            State at offset {shown.state.offset}{shown.at !== at && <span class="muted"> (loading {at}…)</span>}
          </h2>
          {shown.record !== undefined
            ? <p class="record"><span class="num">#{shown.record.offset}</span> <span class="muted">{time(shown.record.committed_at)}</span> <strong>{shown.record.event._tag}</strong> {describeRecord(shown.record.event)}</p>
            : <p class="muted">The empty state, before the first record.</p>}
          <Summary state={shown.state.state} />
        </>
      )}
    </Page>
  )
}
