/**
 * Negotiation rooms: one room (`GET /rooms/{id}`) with its proposal, its
 * critics and whether each has voted, the votes (score, confidence, passed,
 * what they found), the deadline counting down, and the decision with its
 * aggregated score, reason and a human's resolution.
 *
 * There is no route that lists rooms, so the operator's list is the log's
 * room records, newest first (`GET /log?type=`), a page of records at a
 * time; a room is also opened by its id, which is how an agent's key (a
 * producer's, a critic's) reaches the rooms the route lets it read.
 */
import { useMemo, useState } from "preact/hooks"
import { scanLog, seg } from "../api.js"
import type { LogEvent, LogRecord, Room } from "../types.js"
import { Badge, duration, ErrorNote, Field, isOperator, Page, time, useLoad, useNow, useSession, VirtualList } from "../ui.js"
import type { ViewProps } from "./registry.js"

const roomTypes = ["RoomOpened", "VoteCast", "RoomDecided", "RoomResolved"]
const roomEvent = (record: LogRecord) => roomTypes.includes(record.event._tag)

/** A room as the log's records tell it, for the list. */
interface RoomLine {
  readonly room_id: string
  artifact_type?: string
  producer_id?: string
  critics?: number
  votes: number
  outcome?: string
  at: number
}

type Of<T extends LogEvent["_tag"]> = Extract<LogEvent, { _tag: T }>

/** The rooms the records name, the most recently active first. */
const linesOf = (records: ReadonlyArray<LogRecord>): Array<RoomLine> => {
  const rooms = new Map<string, RoomLine>()
  // Oldest first, so that a later fact (a decision, a resolution) wins.
  for (const record of [...records].reverse()) {
    const event = record.event as Of<"RoomOpened"> | Of<"VoteCast"> | Of<"RoomDecided"> | Of<"RoomResolved">
    const line = rooms.get(event.room_id) ?? { room_id: event.room_id, votes: 0, at: record.committed_at }
    line.at = record.committed_at
    if (event._tag === "RoomOpened") {
      line.artifact_type = event.artifact_type
      line.producer_id = event.producer_id
      line.critics = event.critics.length
    } else if (event._tag === "VoteCast") line.votes++
    else line.outcome = event.outcome
    rooms.set(event.room_id, line)
  }
  return [...rooms.values()].sort((a, b) => b.at - a.at)
}

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
  const [depth, setDepth] = useState(2000)
  const [lookup, setLookup] = useState("")
  const selected = params.get("room") ?? undefined
  const listed = useLoad(
    async () => {
      if (!operator) return { lines: [] as Array<RoomLine>, more: false }
      const { records, next } = await scanLog(api, roomTypes, { want: depth })
      return { lines: linesOf(records), more: next !== undefined }
    },
    [api, operator, depth],
    { when: roomEvent }
  )
  const lines = useMemo(() => listed.data?.lines ?? [], [listed.data])
  return (
    <Page title="Negotiation rooms" actions={operator && <span class="muted" aria-live="polite">{lines.length} rooms</span>}>
      <ErrorNote error={listed.error} />
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault()
          if (lookup.trim() !== "") go(`rooms?room=${seg(lookup.trim())}`)
        }}
      >
        <Field label="Room">
          <input value={lookup} placeholder="a room's id" onInput={(event) => setLookup(event.currentTarget.value)} />
        </Field>
        <button type="submit">Open</button>
        {operator && listed.data?.more === true && <button type="button" onClick={() => setDepth(depth * 2)}>Read older records</button>}
      </form>
      <div class="split">
        {operator && (
          <VirtualList
            label="Rooms"
            items={lines}
            rowHeight={34}
            keyOf={(line) => line.room_id}
            selected={selected}
            onActivate={(line) => go(`rooms?room=${seg(line.room_id)}`)}
            header={<div class="cols room-cols"><span>Room</span><span>Proposal</span><span>Producer</span><span>Votes</span><span>Outcome</span></div>}
            row={(line) => (
              <div class="cols room-cols">
                <span class="mono">{line.room_id}</span>
                <span>{line.artifact_type ?? ""}</span>
                <span class="mono">{line.producer_id ?? ""}</span>
                <span class="num">{line.votes}{line.critics === undefined ? "" : ` of ${line.critics}`}</span>
                <span><Badge tone={outcomeTone(line.outcome)}>{line.outcome ?? "open"}</Badge></span>
              </div>
            )}
          />
        )}
        {selected !== undefined && <Detail room_id={selected} />}
      </div>
      {!operator && selected === undefined && <p class="muted">Open a room by its id: a producer's or a critic's key reads its rooms.</p>}
    </Page>
  )
}
