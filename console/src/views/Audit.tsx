/**
 * The audit trail (`GET /audit`, a page at a time from any offset, filtered
 * by agent and decision) and the chain's verification (`GET /audit/verify`):
 * valid with its count of records, or the first record where it breaks,
 * which the trail then shows.
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks"
import type { AuditEntry, AuditPage, ChainVerification, LogRecord } from "../types.js"
import { asApiError, Badge, Done, ErrorNote, Field, Page, time, useAction, useSession, VirtualList } from "../ui.js"
import type { ViewProps } from "./registry.js"

/** The decisions `knownAuditDecisions` (src/schema/Audit.ts) lists; a value typed by hand finds later ones. */
const decisions = [
  "allow", "deny", "pending", "redact", "approved", "rejected", "timed_out", "charged", "budget_exhausted", "lease_denied",
  "lease_expired", "suspended", "resumed", "killed", "halted", "dispatched"
]

const auditEvent = (record: LogRecord) => record.event._tag === "AuditRecorded"

const Verification = ({ result, onShow }: { readonly result: ChainVerification; readonly onShow: (offset: number) => void }) =>
  result.ok
    ? <p class="done" role="status" data-testid="audit-verdict">The chain is valid: {result.count} records.</p>
    : (
      <div class="error" role="alert" data-testid="audit-verdict">
        The chain breaks{result.offset !== undefined ? <> at the record at offset <strong>{result.offset}</strong></> : null}: {result.reason}
        {result.offset !== undefined && <button type="button" onClick={() => onShow(result.offset!)}>Show that record</button>}
      </div>
    )

export const AuditView = ({ params }: ViewProps) => {
  const { api, live, go } = useSession()
  const agent = params.get("agent") ?? ""
  const decision = params.get("decision") ?? ""
  const from = Number(params.get("from") ?? "1") || 1
  const [entries, setEntries] = useState<ReadonlyArray<AuditEntry>>([])
  const [next, setNext] = useState<number | undefined>(undefined)
  const [error, setError] = useState<ReturnType<typeof asApiError> | undefined>(undefined)
  const [verdict, setVerdict] = useState<ChainVerification | undefined>(undefined)
  const loading = useRef(false)
  const verify = useAction()
  const query = { agent_id: agent, decision }
  const navigate = (changes: Record<string, string | undefined>) => {
    const search = new URLSearchParams(params)
    for (const [name, value] of Object.entries(changes)) {
      if (value === undefined || value === "") search.delete(name)
      else search.set(name, value)
    }
    go(`audit?${search}`)
  }

  const load = useCallback((start: number, append: boolean) => {
    loading.current = true
    api.get<AuditPage>("/audit", { ...query, from: start, limit: 500 }).then(
      (page) => {
        setEntries((previous) => (append ? [...previous, ...page.entries] : page.entries))
        setNext(page.next)
        setError(undefined)
        loading.current = false
      },
      (failure) => {
        setError(asApiError(failure))
        loading.current = false
      }
    )
  }, [api, agent, decision])

  useEffect(() => load(from, false), [load, from])
  // The trail grows at its end: once the last page is read, new records are read as the log shows them.
  useEffect(() => {
    if (live === undefined) return
    return live.listen((records) => {
      if (!records.some(auditEvent) || next !== undefined || loading.current) return
      const last = entries[entries.length - 1]
      if (last === undefined) load(from, false)
      else api.get<AuditPage>("/audit", { ...query, from: last.offset + 1, limit: 500 }).then((page) => {
        setEntries((previous) => [...previous, ...page.entries.filter((entry) => entry.offset > (previous[previous.length - 1]?.offset ?? 0))])
        setNext(page.next)
      }, () => undefined)
    })
  }, [live, entries, next, load])

  const more = useCallback(() => {
    if (!loading.current && next !== undefined) load(next, true)
  }, [load, next])

  const broken = verdict !== undefined && !verdict.ok ? verdict.offset : undefined
  return (
    <Page
      title="Audit"
      actions={
        <button
          type="button"
          class="primary"
          disabled={verify.busy}
          onClick={() => verify.run(async () => void setVerdict(await api.get<ChainVerification>("/audit/verify")))}
        >
          Verify the chain
        </button>
      }
    >
      <ErrorNote error={verify.error} />
      <Done text={verify.done} />
      {verdict !== undefined && <Verification result={verdict} onShow={(offset) => navigate({ from: String(offset), agent: "", decision: "" })} />}
      <div class="toolbar">
        <Field label="Agent">
          <input value={agent} onChange={(event) => navigate({ agent: event.currentTarget.value.trim(), from: undefined })} placeholder="any" />
        </Field>
        <Field label="Decision">
          <select value={decision} onChange={(event) => navigate({ decision: event.currentTarget.value, from: undefined })}>
            <option value="">any</option>
            {decisions.map((value) => <option key={value} value={value}>{value}</option>)}
          </select>
        </Field>
        <Field label="From offset">
          <input type="number" min={1} value={from} onChange={(event) => navigate({ from: event.currentTarget.value })} />
        </Field>
      </div>
      <ErrorNote error={error} />
      <VirtualList
        label="Audit records"
        items={entries}
        rowHeight={30}
        keyOf={(entry) => String(entry.offset)}
        selected={broken === undefined ? undefined : String(broken)}
        onEnd={more}
        header={<div class="cols audit-cols"><span>Offset</span><span>Time</span><span>Agent</span><span>Action</span><span>Decision</span><span>Reason</span></div>}
        row={(entry) => (
          <div class="cols audit-cols" data-offset={entry.offset}>
            <span class="num">{entry.offset}</span>
            <span class="muted">{time(entry.record.at)}</span>
            <span class="mono">{entry.record.agent_id}</span>
            <span class="mono ellipsis" title={entry.record.action}>{entry.record.action}</span>
            <span>
              <Badge tone={entry.record.decision === "allow" || entry.record.decision === "approved" ? "ok" : entry.record.decision === "deny" || entry.record.decision === "rejected" ? "bad" : "info"}>
                {entry.record.decision}
              </Badge>
              {entry.offset === broken && <Badge tone="bad">chain breaks here</Badge>}
            </span>
            <span class="ellipsis" title={entry.record.reason}>{entry.record.reason}</span>
          </div>
        )}
      />
    </Page>
  )
}
