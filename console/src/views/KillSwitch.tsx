/**
 * The kill switch: suspend, resume or kill one agent, halt and unhalt all.
 * Every action asks for a confirmation (and a reason where the API takes
 * one), then calls the same route as any client (`POST /agents/{id}/suspend`,
 * `/halt`, ...), which the gateway records in the audit trail.
 */
import { useState } from "preact/hooks"
import { seg } from "../api.js"
import type { Agent, KillSwitch, LogRecord } from "../types.js"
import { Confirm, Done, ErrorNote, Field, Page, useAction, useLoad, useSession } from "../ui.js"
import type { ViewProps } from "./registry.js"

type Pending = "suspend" | "resume" | "kill" | "halt" | "unhalt"

const killSwitchEvent = (record: LogRecord) =>
  ["AgentSuspended", "AgentResumed", "AgentKilled", "GatewayHalted", "GatewayUnhalted"].includes(record.event._tag)

/** Suspend, resume and kill buttons for one agent, each confirmed first. */
export const AgentActions = ({ agent_id, blocked, onDone }: { readonly agent_id: string; readonly blocked: string | undefined; readonly onDone?: () => void }) => {
  const { api } = useSession()
  const [pending, setPending] = useState<Pending | undefined>(undefined)
  const action = useAction()
  const path = `/agents/${seg(agent_id)}`
  const act = (what: Pending, reason: string) =>
    action.run(async () => {
      await api.post(`${path}/${what}`, what === "resume" ? { by: "console" } : { reason, by: "console" })
      onDone?.()
      return `${agent_id}: ${what === "suspend" ? "suspended" : what === "resume" ? "resumed" : "killed"}`
    })
  return (
    <div class="actions">
      <div class="row">
        <button type="button" disabled={action.busy} onClick={() => setPending("suspend")}>Suspend</button>
        <button type="button" disabled={action.busy || blocked === undefined} onClick={() => setPending("resume")}>Resume</button>
        <button type="button" class="danger" disabled={action.busy || blocked === "killed"} onClick={() => setPending("kill")}>Kill</button>
      </div>
      <ErrorNote error={action.error} />
      <Done text={action.done} />
      {pending === "suspend" && (
        <Confirm
          title={`Suspend ${agent_id}?`}
          text="It can neither send nor receive until it is resumed; its deliveries wait."
          confirm="Suspend"
          reason
          reasonRequired
          onConfirm={(reason) => act("suspend", reason)}
          onClose={() => setPending(undefined)}
        />
      )}
      {pending === "resume" && (
        <Confirm
          title={`Resume ${agent_id}?`}
          text="It may send and receive again."
          confirm="Resume"
          onConfirm={(reason) => act("resume", reason)}
          onClose={() => setPending(undefined)}
        />
      )}
      {pending === "kill" && (
        <Confirm
          title={`Kill ${agent_id}?`}
          text="For good: it is deregistered and may never register again. This cannot be undone."
          confirm="Kill"
          danger
          reason
          reasonRequired
          onConfirm={(reason) => act("kill", reason)}
          onClose={() => setPending(undefined)}
        />
      )}
    </div>
  )
}

export const KillSwitchView = ({ params }: ViewProps) => {
  const { api } = useSession()
  const loaded = useLoad(() => api.get<KillSwitch>("/kill-switch"), [api], { when: killSwitchEvent, every: 10_000 })
  const agents = useLoad(() => api.get<Array<Agent>>("/agents"), [api])
  const [agent, setAgent] = useState(params.get("agent") ?? "")
  const [pending, setPending] = useState<"halt" | "unhalt" | undefined>(undefined)
  const action = useAction()
  const state = loaded.data
  const known = agents.data?.some((candidate) => candidate.descriptor.agent_id === agent) ?? false
  const blockedOf = (id: string) =>
    state?.killed.includes(id) ? "killed" : state?.suspended.find((entry) => entry.agent_id === id)?.reason
  const haltAll = (what: "halt" | "unhalt", reason: string) =>
    action.run(async () => {
      await api.post(`/${what}`, what === "halt" ? { reason, by: "console" } : { by: "console" })
      loaded.reload()
      return what === "halt" ? "Everything is halted" : "Unhalted"
    })
  return (
    <Page title="Kill switch">
      <ErrorNote error={loaded.error} />
      <section class="card" aria-labelledby="halt-title">
        <h2 id="halt-title">All agents</h2>
        {state?.halted !== undefined
          ? <p class="error" role="status">Halted: {state.halted}</p>
          : <p role="status">Not halted: agents send and receive.</p>}
        <div class="row">
          <button type="button" class="danger" disabled={action.busy || state?.halted !== undefined} onClick={() => setPending("halt")}>Halt all</button>
          <button type="button" disabled={action.busy || state?.halted === undefined} onClick={() => setPending("unhalt")}>Unhalt</button>
        </div>
        <ErrorNote error={action.error} />
        <Done text={action.done} />
      </section>
      <section class="card" aria-labelledby="one-title">
        <h2 id="one-title">One agent</h2>
        <Field label="Agent">
          <input list="kill-agents" value={agent} onInput={(event) => setAgent(event.currentTarget.value.trim())} placeholder="agent id" />
        </Field>
        <datalist id="kill-agents">
          {(agents.data ?? []).slice(0, 2000).map((candidate) => <option key={candidate.descriptor.agent_id} value={candidate.descriptor.agent_id} />)}
        </datalist>
        {agent !== "" && !known && <p class="muted">No agent registered as {agent}.</p>}
        {agent !== "" && known && <AgentActions agent_id={agent} blocked={blockedOf(agent)} onDone={loaded.reload} />}
      </section>
      <section class="card" aria-labelledby="suspended-title">
        <h2 id="suspended-title">Suspended ({state?.suspended.length ?? 0})</h2>
        <table>
          <thead><tr><th>Agent</th><th>Reason</th><th></th></tr></thead>
          <tbody>
            {(state?.suspended ?? []).map((entry) => (
              <tr key={entry.agent_id}>
                <td class="mono">{entry.agent_id}</td>
                <td>{entry.reason}</td>
                <td><button type="button" onClick={() => setAgent(entry.agent_id)}>Select</button></td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>Killed ({state?.killed.length ?? 0})</h2>
        <p class="mono">{(state?.killed ?? []).join(", ") || "none"}</p>
      </section>
      {pending === "halt" && (
        <Confirm
          title="Halt every agent?"
          text="No agent may send, receive or call a tool until you unhalt."
          confirm="Halt all"
          danger
          reason
          reasonRequired
          onConfirm={(reason) => haltAll("halt", reason)}
          onClose={() => setPending(undefined)}
        />
      )}
      {pending === "unhalt" && (
        <Confirm
          title="Unhalt?"
          text="Agents that are not suspended or killed run again."
          confirm="Unhalt"
          onConfirm={(reason) => haltAll("unhalt", reason)}
          onClose={() => setPending(undefined)}
        />
      )}
    </Page>
  )
}
