/**
 * The scheduler: its tasks (`GET /tasks`) with their priority, status, agent,
 * scope and preemptions, most urgent work first; one task's details, with
 * its preemption's grace or its non-preemptible section counting down; a
 * form to submit one (`POST /tasks`) and, for the operator, a preemption on
 * behalf of a queued task (`POST /tasks/{id}/preempt`). Live as the log
 * shows the scheduler's facts; an agent's key, which cannot follow the log,
 * polls, and sees the tasks the route gives it (its own).
 */
import { useMemo, useState } from "preact/hooks"
import { seg } from "../api.js"
import type { LogRecord, Preempted, Task } from "../types.js"
import { Badge, Done, duration, ErrorNote, Field, isOperator, Page, time, useAction, useLoad, useNow, useSession, VirtualList } from "../ui.js"
import type { ViewProps } from "./registry.js"

const schedulerEvent = (record: LogRecord) => {
  const tag = record.event._tag
  return tag.startsWith("Task") || tag === "AgentStateTimedOut" || tag === "AgentShutdownRequested"
}

const statuses = ["QUEUED", "DISPATCHED", "COMPLETED", "FAILED", "CANCELLED"] as const

/** Running work first, then the queue in the order it is dispatched (priority, then FIFO), then what finished, newest first. */
const order: Record<string, number> = { DISPATCHED: 0, QUEUED: 1, COMPLETED: 2, FAILED: 2, CANCELLED: 2 }
const byUrgency = (a: Task, b: Task) =>
  order[a.status] - order[b.status] ||
  (order[a.status] === 2 ? (b.finished_at ?? 0) - (a.finished_at ?? 0) : a.priority - b.priority || a.submitted_at - b.submitted_at)

const tone = (status: Task["status"]) =>
  status === "COMPLETED" ? "ok" : status === "DISPATCHED" ? "info" : status === "QUEUED" ? "warn" : "bad"

const target = (task: Task) => task.assigned_to ?? task.agent_id ?? (task.capability === undefined ? "" : `capability ${task.capability}`)

const matches = (task: Task, filter: string) => {
  if (filter === "") return true
  const text = `${task.task_id} ${target(task)} ${task.scope ?? ""} ${task.kind} ${task.submitted_by ?? ""}`.toLowerCase()
  return filter.toLowerCase().split(/\s+/).every((word) => text.includes(word))
}

const Countdown = ({ until, label }: { readonly until: number; readonly label: string }) => {
  const now = useNow()
  const left = until - now
  return (
    <span class={left < 10_000 ? "countdown urgent" : "countdown"} role="timer" aria-label={label}>
      {left > 0 ? `${duration(left)} left` : "now"}
    </span>
  )
}

const Preempt = ({ task, onDone }: { readonly task: Task; readonly onDone: () => void }) => {
  const { api } = useSession()
  const [agent, setAgent] = useState(task.agent_id ?? "")
  const [reason, setReason] = useState("")
  const action = useAction()
  const submit = (event: Event) => {
    event.preventDefault()
    void action.run(async () => {
      const answer = await api.post<Preempted>(`/tasks/${seg(task.task_id)}/preempt`, {
        agent_id: agent.trim(),
        ...(reason.trim() === "" ? {} : { reason: reason.trim() })
      })
      onDone()
      return answer.enqueued
        ? `${answer.preempted_task_id ?? "its task"} on ${agent.trim()} is asked to yield to ${task.task_id}`
        : `not preempted: ${answer.reason}`
    })
  }
  return (
    <form class="card" onSubmit={submit} aria-label="Preempt for this task">
      <h3>Preempt for it</h3>
      <p class="muted">The agent is asked to yield its task to this one, if this one is strictly more urgent.</p>
      <div class="row">
        <Field label="Agent">
          <input value={agent} required onInput={(event) => setAgent(event.currentTarget.value)} />
        </Field>
        <Field label="Reason">
          <input value={reason} maxLength={1024} onInput={(event) => setReason(event.currentTarget.value)} />
        </Field>
        <button type="submit" disabled={action.busy || agent.trim() === ""}>Preempt</button>
      </div>
      <ErrorNote error={action.error} />
      <Done text={action.done} />
    </form>
  )
}

const Detail = ({ task, onChanged }: { readonly task: Task; readonly onChanged: () => void }) => {
  const { caller } = useSession()
  return (
    <aside class="detail" aria-label={`Task ${task.task_id}`}>
      <h2 class="mono">{task.task_id}</h2>
      <dl>
        <dt>Status</dt><dd><Badge tone={tone(task.status)}>{task.status}</Badge>{task.started && " started"}</dd>
        <dt>Priority</dt><dd>{task.priority}</dd>
        <dt>Target</dt><dd>{task.agent_id ?? `capability ${task.capability ?? "?"}`}</dd>
        <dt>Running on</dt><dd>{task.assigned_to ?? "—"}{task.message_id !== undefined && <> · <a href={`#/messages?message=${seg(task.message_id)}`}>{task.message_id}</a></>}</dd>
        <dt>Scope</dt><dd class="mono">{task.scope ?? "—"}</dd>
        <dt>Kind</dt><dd>{task.kind}{task.max_parallel_instances !== undefined && ` (at most ${task.max_parallel_instances} at once)`}</dd>
        <dt>Submitted</dt><dd>{time(task.submitted_at)}{task.submitted_by !== undefined && ` by ${task.submitted_by}`}</dd>
        <dt>Attempts</dt><dd>{task.attempts} · preempted {task.preemptions === 1 ? "once" : `${task.preemptions} times`}</dd>
        {task.max_wait_ms !== undefined && (<><dt>Waits at most</dt><dd>{duration(task.max_wait_ms)}, then a human decides</dd></>)}
        {task.preemption !== undefined && (
          <>
            <dt>Asked to yield</dt>
            <dd>
              {task.preemption.reason}{task.preemption.for_task_id !== undefined && ` for ${task.preemption.for_task_id}`} · asked {task.preemption.asks} times since {time(task.preemption.requested_at)}
              {task.preemption.grace_deadline !== undefined && <> · taken back in <Countdown until={task.preemption.grace_deadline} label="grace left" /></>}
            </dd>
          </>
        )}
        {task.section_until !== undefined && (<><dt>Non-preemptible</dt><dd><Countdown until={task.section_until} label="section left" /></dd></>)}
        {task.hitl_id !== undefined && (<><dt>Human</dt><dd>asked: <a href="#/approvals">{task.hitl_id}</a></dd></>)}
        {(task.error_code !== undefined || task.reason !== undefined) && (<><dt>Outcome</dt><dd>{task.error_code ?? ""} {task.reason ?? ""}</dd></>)}
        {task.finished_at !== undefined && (<><dt>Finished</dt><dd>{time(task.finished_at)}</dd></>)}
      </dl>
      {isOperator(caller) && task.status === "QUEUED" && <Preempt task={task} onDone={onChanged} />}
    </aside>
  )
}

const Submit = ({ onSubmitted }: { readonly onSubmitted: (task: Task) => void }) => {
  const { api } = useSession()
  const [by, setBy] = useState<"capability" | "agent_id">("capability")
  const [name, setName] = useState("")
  const [priority, setPriority] = useState("0")
  const [scope, setScope] = useState("")
  const [input, setInput] = useState("")
  const action = useAction()
  const submit = (event: Event) => {
    event.preventDefault()
    void action.run(async () => {
      let parsed: unknown = undefined
      if (input.trim() !== "") {
        try {
          parsed = JSON.parse(input)
        } catch {
          throw new Error("the input is not JSON")
        }
      }
      const task = await api.post<Task>("/tasks", {
        [by]: name.trim(),
        priority: Number(priority),
        ...(scope.trim() === "" ? {} : { scope: scope.trim() }),
        ...(parsed === undefined ? {} : { input: parsed })
      })
      onSubmitted(task)
      return `${task.task_id} submitted: ${task.status}`
    })
  }
  return (
    <form class="card" onSubmit={submit} aria-label="Submit a task">
      <h2>Submit a task</h2>
      <div class="row">
        <Field label="To">
          <select value={by} onChange={(event) => setBy(event.currentTarget.value as "capability" | "agent_id")}>
            <option value="capability">any agent with the capability</option>
            <option value="agent_id">the agent</option>
          </select>
        </Field>
        <Field label={by === "capability" ? "Capability" : "Agent"}>
          <input value={name} required onInput={(event) => setName(event.currentTarget.value)} />
        </Field>
        <Field label="Priority (−19 most urgent to 20)">
          <input type="number" min={-19} max={20} step={1} value={priority} onInput={(event) => setPriority(event.currentTarget.value)} />
        </Field>
        <Field label="Scope">
          <input value={scope} placeholder="repo/api" onInput={(event) => setScope(event.currentTarget.value)} />
        </Field>
        <Field label="Input (JSON)">
          <input value={input} placeholder='{"target": "api"}' onInput={(event) => setInput(event.currentTarget.value)} />
        </Field>
        <button type="submit" class="primary" disabled={action.busy || name.trim() === ""}>Submit</button>
      </div>
      <ErrorNote error={action.error} />
      <Done text={action.done} />
    </form>
  )
}

export const SchedulerView = ({ params }: ViewProps) => {
  const { api, caller, go } = useSession()
  const status = params.get("status") ?? ""
  const [filter, setFilter] = useState("")
  const tasks = useLoad(
    () => api.get<Array<Task>>("/tasks", { status }),
    [api, status],
    { when: schedulerEvent, every: isOperator(caller) ? 10_000 : 3000 }
  )
  const rows = useMemo(() => [...(tasks.data ?? [])].filter((task) => matches(task, filter)).sort(byUrgency), [tasks.data, filter])
  const selectedId = params.get("task") ?? undefined
  const selected = tasks.data?.find((task) => task.task_id === selectedId)
  const counts = statuses.map((value) => `${(tasks.data ?? []).filter((task) => task.status === value).length} ${value.toLowerCase()}`)
  const open = (next: Record<string, string | undefined>) => {
    const query = new URLSearchParams(params)
    for (const [name, value] of Object.entries(next)) {
      if (value === undefined || value === "") query.delete(name)
      else query.set(name, value)
    }
    go(`scheduler?${query}`)
  }
  return (
    <Page title="Scheduler" actions={<span class="muted" aria-live="polite">{status === "" ? counts.join(", ") : `${rows.length} ${status.toLowerCase()}`}</span>}>
      <ErrorNote error={tasks.error} />
      <Submit onSubmitted={(task) => {
        tasks.reload()
        open({ task: task.task_id })
      }} />
      <div class="toolbar">
        <Field label="Status">
          <select value={status} onChange={(event) => open({ status: event.currentTarget.value })}>
            <option value="">any</option>
            {statuses.map((value) => <option key={value} value={value}>{value}</option>)}
          </select>
        </Field>
        <Field label="Filter">
          <input type="search" placeholder="task, agent, scope, kind" value={filter} onInput={(event) => setFilter(event.currentTarget.value)} />
        </Field>
      </div>
      <div class="split">
        <VirtualList
          label="Tasks"
          items={rows}
          rowHeight={34}
          keyOf={(task) => task.task_id}
          selected={selectedId}
          onActivate={(task) => open({ task: task.task_id })}
          header={
            <div class="cols task-cols">
              <span>Task</span><span>Priority</span><span>Status</span><span>Agent</span><span>Scope</span><span>Preempted</span><span>Submitted</span>
            </div>
          }
          row={(task) => (
            <div class="cols task-cols">
              <span class="mono">{task.task_id}</span>
              <span class="num">{task.priority}</span>
              <span>
                <Badge tone={tone(task.status)}>{task.status}</Badge>
                {task.preemption !== undefined && <Badge tone="warn">yield asked</Badge>}
              </span>
              <span class="mono">{target(task)}</span>
              <span class="mono">{task.scope ?? ""}</span>
              <span class="num">{task.preemptions}</span>
              <span title={time(task.submitted_at)}>{time(task.submitted_at).slice(11)}</span>
            </div>
          )}
        />
        {selected !== undefined && <Detail task={selected} onChanged={tasks.reload} />}
      </div>
      {!tasks.loading && rows.length === 0 && <p class="muted">No task{status === "" ? "" : ` ${status.toLowerCase()}`}.</p>}
    </Page>
  )
}
