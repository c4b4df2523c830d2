/**
 * Agents, live: each one's state, health, availability, mailbox (queued, in
 * flight, dead letters), team, enforcement mode and kill switch, refreshed
 * as the log shows registrations, heartbeats and deliveries (an agent's key,
 * which cannot follow the log, polls). One agent's details and, for the
 * operator, the kill switch's buttons.
 */
import { useMemo, useState } from "preact/hooks"
import { seg } from "../api.js"
import type { Agent, KillSwitch, LogRecord, Mailbox } from "../types.js"
import { Badge, ErrorNote, Field, isOperator, Page, time, useLoad, useSession, VirtualList } from "../ui.js"
import { AgentActions } from "./KillSwitch.js"
import type { ViewProps } from "./registry.js"

export interface AgentRow {
  readonly agent: Agent
  readonly mailbox: Mailbox | undefined
  /** Suspended (with why), killed, or halted with everything else. */
  readonly blocked: string | undefined
}

/** Records after which an agent's row may read differently. */
export const touchesAgents = (record: LogRecord) => {
  const tag = record.event._tag
  return tag.startsWith("Agent") || tag.startsWith("Message") || tag.startsWith("Gateway") || tag === "TopologyEdgeAdded"
}

/** Every agent the caller may see (an agent's key: its own), with its mailbox and kill switch. */
export const useAgents = () => {
  const { api, caller } = useSession()
  return useLoad(async () => {
    const own = caller.agent_id
    const [agents, mailboxes, kill] = await Promise.all([
      own === undefined ? api.get<Array<Agent>>("/agents") : api.get<Agent>(`/agents/${seg(own)}`).then((agent) => [agent], () => []),
      api.get<Array<Mailbox>>("/mailboxes"),
      api.get<KillSwitch>("/kill-switch")
    ])
    const boxes = new Map(mailboxes.map((mailbox) => [mailbox.agent_id, mailbox]))
    const suspended = new Map(kill.suspended.map((entry) => [entry.agent_id, entry.reason]))
    const killed = new Set(kill.killed)
    const rows: Array<AgentRow> = agents
      .map((agent) => {
        const id = agent.descriptor.agent_id
        const blocked = killed.has(id)
          ? "killed"
          : suspended.has(id)
          ? `suspended: ${suspended.get(id)}`
          : kill.halted !== undefined
          ? `halted: ${kill.halted}`
          : undefined
        return { agent, mailbox: boxes.get(id), blocked }
      })
      .sort((a, b) => (a.agent.descriptor.agent_id < b.agent.descriptor.agent_id ? -1 : 1))
    return { rows, kill }
  }, [api, caller], { when: touchesAgents, every: caller.role === "agent" ? 3000 : 15_000 })
}

const healthText = (health: Agent["health"]) =>
  Object.entries(health).map(([name, value]) => `${name}: ${value}`).join(", ")

const matches = (row: AgentRow, filter: string) => {
  if (filter === "") return true
  const d = row.agent.descriptor
  const text = `${d.agent_id} ${d.name} ${d.team_id ?? ""} ${(d.capabilities ?? []).join(" ")} ${row.agent.state}`.toLowerCase()
  return filter.toLowerCase().split(/\s+/).every((word) => text.includes(word))
}

const Detail = ({ row }: { readonly row: AgentRow }) => {
  const { caller } = useSession()
  const d = row.agent.descriptor
  const id = d.agent_id
  return (
    <aside class="detail" aria-label={`Agent ${id}`}>
      <h2>{d.name} <span class="muted">({id})</span></h2>
      <dl>
        <dt>State</dt><dd>{row.agent.state} {row.agent.available ? <Badge tone="ok">available</Badge> : <Badge tone="warn">unavailable</Badge>}</dd>
        <dt>Health</dt><dd>{healthText(row.agent.health) || "—"}</dd>
        <dt>Kill switch</dt><dd>{row.blocked ?? "running"}</dd>
        <dt>Mailbox</dt>
        <dd>{row.mailbox === undefined ? "—" : `${row.mailbox.queued} queued, ${row.mailbox.in_flight} in flight, ${row.mailbox.dead_letters} dead letters`}</dd>
        <dt>Capabilities</dt><dd>{(d.capabilities ?? []).join(", ") || "—"}</dd>
        <dt>Team</dt><dd>{d.team_id ?? "—"}</dd>
        <dt>Parent</dt><dd>{d.parent_agent_id ?? "— (a root)"}{d.depth !== undefined && ` · depth ${d.depth}`}</dd>
        <dt>Enforcement</dt><dd>{d.enforcement_mode ?? "enforce"}</dd>
        <dt>Lane</dt><dd>{d.communication_class ?? "STANDARD"}</dd>
        <dt>Registered</dt><dd>{time(row.agent.registered_at)}</dd>
        {d.description !== undefined && d.description !== "" && (<><dt>Description</dt><dd>{d.description}</dd></>)}
      </dl>
      <p class="row">
        <a href={`#/topology?agent=${seg(id)}`}>Topology</a>
        {isOperator(caller) && <a href={`#/messages?agent=${seg(id)}`}>Messages</a>}
        <a href={`#/dead-letters?agent=${seg(id)}`}>Dead letters</a>
      </p>
      {isOperator(caller) && <AgentActions agent_id={id} blocked={row.blocked} />}
    </aside>
  )
}

export const AgentsView = ({ params }: ViewProps) => {
  const { go } = useSession()
  const loaded = useAgents()
  const [filter, setFilter] = useState("")
  const rows = useMemo(() => (loaded.data?.rows ?? []).filter((row) => matches(row, filter)), [loaded.data, filter])
  const selectedId = params.get("agent") ?? undefined
  const selected = loaded.data?.rows.find((row) => row.agent.descriptor.agent_id === selectedId)
  const all = loaded.data?.rows ?? []
  return (
    <Page
      title="Agents"
      actions={<span class="muted" aria-live="polite">{all.length} agents, {all.filter((row) => row.agent.available).length} available</span>}
    >
      {loaded.data?.kill.halted !== undefined && <p class="error" role="alert">Everything is halted: {loaded.data.kill.halted}</p>}
      <ErrorNote error={loaded.error} />
      <div class="toolbar">
        <Field label="Filter">
          <input type="search" placeholder="id, name, team, capability, state" value={filter} onInput={(event) => setFilter(event.currentTarget.value)} />
        </Field>
      </div>
      <div class="split">
        <VirtualList
          label="Agents"
          items={rows}
          rowHeight={34}
          keyOf={(row) => row.agent.descriptor.agent_id}
          selected={selectedId}
          onActivate={(row) => go(`agents?agent=${seg(row.agent.descriptor.agent_id)}`)}
          header={
            <div class="cols agents-cols">
              <span>Agent</span><span>State</span><span>Health</span><span>Queued</span><span>In flight</span><span>Dead</span><span>Team</span><span>Mode</span><span>Kill switch</span>
            </div>
          }
          row={(row) => (
            <div class="cols agents-cols">
              <span class="mono" title={row.agent.descriptor.name}>{row.agent.descriptor.agent_id}</span>
              <span>{row.agent.available ? <Badge tone="ok">{row.agent.state}</Badge> : <Badge tone="warn">{row.agent.state}</Badge>}</span>
              <span class="muted" title={healthText(row.agent.health)}>{healthText(row.agent.health) || "—"}</span>
              <span class="num">{row.mailbox?.queued ?? 0}</span>
              <span class="num">{row.mailbox?.in_flight ?? 0}</span>
              <span class="num">{row.mailbox?.dead_letters ?? 0}</span>
              <span>{row.agent.descriptor.team_id ?? ""}</span>
              <span>{row.agent.descriptor.enforcement_mode ?? "enforce"}</span>
              <span>{row.blocked === undefined ? "" : <Badge tone="bad">{row.blocked.split(":")[0]}</Badge>}</span>
            </div>
          )}
        />
        {selected !== undefined && <Detail row={selected} />}
      </div>
    </Page>
  )
}
