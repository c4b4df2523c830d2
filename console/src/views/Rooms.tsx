/**
 * Negotiation rooms: the list (`GET /rooms`, a page at a time in the order
 * opened, more as it scrolls, open or decided), and one room
 * (`GET /rooms/{id}`) with its proposal, its critics and whether each has
 * voted, the votes (score, confidence, passed, what they found), the
 * deadline counting down, and the decision with its aggregated score,
 * reason and a human's resolution. An agent's key lists the rooms it
 * produces or is a critic of, as the route answers it; a room is also
 * opened by its id.
 */
import { useState } from "preact/hooks"
import { seg } from "../api.js"
import type { LogRecord, Room, Rooms } from "../types.js"
import { Badge, duration, ErrorNote, Field, isOperator, Page, time, useLoad, useNow, usePages, useSession, VirtualList } from "../ui.js"
import type { ViewProps } from "./registry.js"

const roomTypes = ["RoomOpened", "VoteCast", "RoomDecided", "RoomResolved"]
const roomEvent = (record: LogRecord) => roomTypes.includes(record.event._tag)

/** A room's last word: a human's resolution, else its decision; none while open. */
const outcomeOf = (room: Room) => room.decision?.resolution?.outcome ?? room.decision?.outcome

const outcomeTone = (outcome: string | undefined) =>
  outcome === "APPROVED" ? "ok" : outcome === "REVISION_REQUESTED" ? "bad" : outcome === undefined ? "info" : "warn"

const figure = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(2))

const Detail = ({ room_id }: { readonly room_id: string }) => {
  const { api, caller } = useSession()
  const now = useNow()
  const loaded = useLoad(() => api.get<Room>(`/rooms/${seg(room_id)}`), [api, room_id], {
    when: (record) => roomEvent(record) && (record.event as { room_id: string }).room_id === room_id,
    every: isOperator(caller) ? 15_000 : 3000
  })
  const room = loaded.data
  if (room === undefined) return <aside class="detail" aria-label={`Room ${room_id}`}><ErrorNote error={loaded.error} /></aside>
  const voted = new Set(room.votes.map((vote) => vote.critic_id))
  const decision = room.decision
  const left = room.deadline - now
  return (
    <aside class="detail wide" aria-label={`Room ${room.negotiation_room_id}`}>
      <h2>Room <span class="mono">{room.negotiation_room_id}</span></h2>
      <ErrorNote error={loaded.error} />
      <dl>
        <dt>Proposal</dt><dd>{room.artifact_type} <span class="mono">{room.artifact_id}</span> by <span class="mono">{room.producer_id}</span></dd>
        <dt>Opened</dt><dd>{time(room.opened_at)}</dd>
        <dt>Deadline</dt>
        <dd>
          {decision === undefined
            ? <span class={left < 30_000 ? "countdown urgent" : "countdown"} role="timer" aria-label="time left to vote">{left > 0 ? `${duration(left)} left` : "now"}</span>
            : time(room.deadline)}
        </dd>
        <dt>Critics</dt>
        <dd>{room.requested_critics.map((critic) => <span key={critic} class="mono">{critic} {voted.has(critic) ? <Badge tone="ok">voted</Badge> : <Badge>waiting</Badge>} </span>)}</dd>
      </dl>
      {room.artifact !== null && room.artifact !== undefined && <pre class="args">{JSON.stringify(room.artifact, null, 2)}</pre>}
      <h3>Votes ({room.votes.length} of {room.requested_critics.length})</h3>
      <table aria-label="Votes">
        <thead><tr><th>Critic</th><th>Score</th><th>Confidence</th><th>Passed</th><th>Strengths</th><th>Weaknesses</th><th>Recommendations</th><th>When</th></tr></thead>
        <tbody>
          {room.votes.map((vote) => (
            <tr key={vote.critic_id}>
              <td class="mono">{vote.critic_id}</td>
              <td class="num">{vote.score}</td>
              <td class="num">{vote.confidence}</td>
              <td>{vote.passed ? <Badge tone="ok">passed</Badge> : <Badge tone="bad">failed</Badge>}</td>
              <td>{(vote.strengths ?? []).join("; ")}</td>
              <td>{(vote.weaknesses ?? []).join("; ")}</td>
              <td>{(vote.recommendations ?? []).join("; ")}</td>
              <td title={time(vote.voted_at)}>{time(vote.voted_at).slice(11)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Decision</h3>
      {decision === undefined ? <p class="muted">Not decided yet: it decides at the last vote, or at the deadline.</p> : (
        <div data-testid="room-decision">
          <p>
            <Badge tone={outcomeTone(decision.outcome)}>{decision.outcome}</Badge> {decision.reason} · {time(decision.decided_at)}
          </p>
          <p class="muted">
            Weighted mean {figure(decision.aggregated_score.weighted_mean)} · mean {figure(decision.aggregated_score.mean)} · spread{" "}
            {figure(decision.aggregated_score.std_dev)} · mean confidence {figure(decision.aggregated_score.mean_confidence)} · passed{" "}
            {figure(decision.aggregated_score.pass_ratio * 100)}%
          </p>
          {decision.hitl_id !== undefined && decision.resolution === undefined && (
            <p>A human decides: {isOperator(caller) ? <a href="#/approvals">{decision.hitl_id}</a> : <span class="mono">{decision.hitl_id}</span>}</p>
          )}
          {decision.resolution !== undefined && (
            <p>
              Resolved <Badge tone={outcomeTone(decision.resolution.outcome)}>{decision.resolution.outcome}</Badge> by {decision.resolution.by}: {decision.resolution.rationale}
            </p>
          )}
        </div>
      )}
    </aside>
  )
}

export const RoomsView = ({ params }: ViewProps) => {
  const { api, caller, go } = useSession()
  const operator = isOperator(caller)
  const [lookup, setLookup] = useState("")
  const [status, setStatus] = useState("")
  const selected = params.get("room") ?? undefined
  // The operator hears of rooms on the live log; an agent's key has no log to follow, so it asks again.
  const listed = usePages(
    async (after) => {
      const page = await api.get<Rooms>("/rooms", { after, limit: 500, status })
      return { items: page.rooms, next: page.next }
    },
    [api, status],
    operator ? { when: roomEvent } : { every: 3000 }
  )
  const rooms = listed.items
  return (
    <Page
      title="Negotiation rooms"
      actions={<span class="muted" aria-live="polite">{rooms.length}{listed.more ? "+" : ""} rooms</span>}
    >
      <ErrorNote error={listed.error} />
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault()
          if (lookup.trim() !== "") go(`rooms?room=${seg(lookup.trim())}`)
        }}
      >
        <Field label="Status">
          <select value={status} onChange={(event) => setStatus(event.currentTarget.value)}>
            <option value="">any</option>
            <option value="open">open</option>
            <option value="decided">decided</option>
          </select>
        </Field>
        <Field label="Room">
          <input value={lookup} placeholder="a room's id" onInput={(event) => setLookup(event.currentTarget.value)} />
        </Field>
        <button type="submit">Open</button>
      </form>
      <div class="split">
        <VirtualList
          label="Rooms"
          items={rooms}
          rowHeight={34}
          keyOf={(room) => room.negotiation_room_id}
          selected={selected}
          onActivate={(room) => go(`rooms?room=${seg(room.negotiation_room_id)}`)}
          onEnd={listed.loadMore}
          header={<div class="cols room-cols"><span>Room</span><span>Proposal</span><span>Producer</span><span>Votes</span><span>Outcome</span></div>}
          row={(room) => (
            <div class="cols room-cols">
              <span class="mono">{room.negotiation_room_id}</span>
              <span>{room.artifact_type}</span>
              <span class="mono">{room.producer_id}</span>
              <span class="num">{room.votes.length} of {room.requested_critics.length}</span>
              <span><Badge tone={outcomeTone(outcomeOf(room))}>{outcomeOf(room) ?? "open"}</Badge></span>
            </div>
          )}
        />
        {selected !== undefined && <Detail room_id={selected} />}
      </div>
      {!listed.loading && rooms.length === 0 && (
        <p class="muted">{operator ? "No room yet." : "No room of this agent's yet: it lists the rooms it produces or is a critic of."}</p>
      )}
    </Page>
  )
}
