/**
 * Dead letters, per agent: the agents whose mailbox holds some (from
 * `GET /mailboxes`), and one agent's (`GET /agents/{id}/dead-letters`), each
 * with a redrive (`POST /messages/{id}/redrive`: RECEIVED again, with fresh
 * attempts) and a link to its timeline.
 */
import { useState } from "preact/hooks"
import { seg } from "../api.js"
import type { LogRecord, Mailbox, MessageStatus } from "../types.js"
import { Done, ErrorNote, Page, time, useAction, useLoad, useSession } from "../ui.js"
import type { ViewProps } from "./registry.js"

const deadLetterEvent = (record: LogRecord) =>
  record.event._tag === "MessageTimedOut" || record.event._tag === "MessageRedriven" || record.event._tag === "MessageAcked"

const Letters = ({ agent_id }: { readonly agent_id: string }) => {
  const { api } = useSession()
  const loaded = useLoad(
    () => api.get<Array<MessageStatus>>(`/agents/${seg(agent_id)}/dead-letters`),
    [api, agent_id],
    { when: deadLetterEvent, every: 5000 }
  )
  const action = useAction()
  const [redriving, setRedriving] = useState<string | undefined>(undefined)
  const redrive = (message_id: string) => {
    setRedriving(message_id)
    return action.run(async () => {
      const receipt = await api.post<{ message_id: string; to: string; stage: string }>(`/messages/${seg(message_id)}/redrive`)
      loaded.reload()
      setRedriving(undefined)
      return `${receipt.message_id} redriven to ${receipt.to}: ${receipt.stage}`
    })
  }
  const letters = loaded.data ?? []
  return (
    <section class="card" aria-labelledby="letters-title">
      <h2 id="letters-title">Dead letters of <span class="mono">{agent_id}</span> ({letters.length})</h2>
      <ErrorNote error={loaded.error ?? action.error} />
      <Done text={action.done} />
      <table>
        <thead>
          <tr><th>Message</th><th>From</th><th>Error</th><th>Attempts</th><th>Accepted</th><th></th></tr>
        </thead>
        <tbody>
          {letters.map((letter) => (
            <tr key={letter.message_id}>
              <td class="mono"><a href={`#/messages?message=${seg(letter.message_id)}`}>{letter.message_id}</a></td>
              <td class="mono">{letter.producer_id}</td>
              <td>{letter.error_code ?? ""}</td>
              <td class="num">{letter.attempts}</td>
              <td>{time(letter.accepted_at)}</td>
              <td>
                <button type="button" disabled={action.busy} onClick={() => redrive(letter.message_id)} aria-label={`Redrive ${letter.message_id}`}>
                  {redriving === letter.message_id ? "Redriving…" : "Redrive"}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {letters.length === 0 && !loaded.loading && <p class="muted">None.</p>}
    </section>
  )
}

export const DeadLettersView = ({ params }: ViewProps) => {
  const { api, caller, go } = useSession()
  const mailboxes = useLoad(() => api.get<Array<Mailbox>>("/mailboxes"), [api], { when: deadLetterEvent, every: 10_000 })
  const selected = params.get("agent") ?? caller.agent_id
  const holding = (mailboxes.data ?? []).filter((mailbox) => mailbox.dead_letters > 0)
  return (
    <Page title="Dead letters">
      <ErrorNote error={mailboxes.error} />
      <div class="split">
        <section class="card narrow" aria-labelledby="holding-title">
          <h2 id="holding-title">Agents with dead letters ({holding.length})</h2>
          <ul class="plain">
            {holding.slice(0, 1000).map((mailbox) => (
              <li key={mailbox.agent_id}>
                <a
                  href={`#/dead-letters?agent=${seg(mailbox.agent_id)}`}
                  aria-current={mailbox.agent_id === selected ? "true" : undefined}
                  onClick={(event) => {
                    event.preventDefault()
                    go(`dead-letters?agent=${seg(mailbox.agent_id)}`)
                  }}
                >
                  <span class="mono">{mailbox.agent_id}</span> <span class="badge bad">{mailbox.dead_letters}</span>
                </a>
              </li>
            ))}
          </ul>
          {holding.length === 0 && !mailboxes.loading && <p class="muted">No agent holds dead letters.</p>}
        </section>
        {selected !== undefined && <Letters agent_id={selected} />}
      </div>
    </Page>
  )
}
