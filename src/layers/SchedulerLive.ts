/**
 * The live scheduler: a thin layer over the command loop. Commands are
 * decisions run through the loop; the dispatch is a turn extension that
 * runs the scheduler's pass (`decideSchedule`) whenever anything it depends
 * on changed since its last pass found nothing to do, so a busy router pays
 * one comparison a turn for it.
 */
import { Effect, Either, Layer, Schema } from "effect"
import { inputDecoder } from "../internal/decode.js"
import { deciding } from "../model/Hitl.js"
import { activityEntry, taskView } from "../model/Scheduler.js"
import {
  decideEnterSection,
  decideExitSection,
  decidePurgeActivity,
  decideRequestPreemption,
  decideSchedule,
  decideShutdown,
  decideSubmit,
  decideYield
} from "../model/SchedulerDecide.js"
import type { RuntimeState } from "../model/State.js"
import { NotFound } from "../schema/CoordinationErrors.js"
import { Id } from "../schema/Envelope.js"
import { copyJson } from "../schema/Json.js"
import {
  EnterSection,
  PreemptRequest,
  PurgeActivityRequest,
  ShutdownAgentRequest,
  SubmitTaskRequest,
  TaskId,
  TaskOfAgent,
  TasksFilter
} from "../schema/Scheduler.js"
import { Runtime } from "../services/Runtime.js"
import { Scheduler } from "../services/Scheduler.js"
import { commands } from "./Coordinated.js"
import { fieldOf, idOf, traced } from "./Spans.js"

const strict = { onExcessProperty: "error" } as const
const validSubmit = inputDecoder(SubmitTaskRequest, "task", strict)
const validPreempt = inputDecoder(PreemptRequest, "preemption", strict)
const validTaskOfAgent = inputDecoder(TaskOfAgent, "task", strict)
const validSection = inputDecoder(EnterSection, "section", strict)
const validShutdown = inputDecoder(ShutdownAgentRequest, "shutdown", strict)
const validPurge = inputDecoder(PurgeActivityRequest, "activity", strict)
const validFilter = inputDecoder(Schema.UndefinedOr(TasksFilter), "tasks", strict)
const validTaskId = inputDecoder(TaskId, "task_id")
const validAgentId = inputDecoder(Id, "agent_id")

export const layer: Layer.Layer<Scheduler, never, Runtime> = Layer.scoped(
  Scheduler,
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const { config, extend, query } = runtime

    // The pass finds nothing new until something it depends on changes: it
    // remembers the version it last came back empty-handed at.
    // A state folded again from the log (after a failed append) is another
    // object: its version is not compared with the old one's.
    let idleAt = -1
    let idleIn: RuntimeState | undefined
    yield* extend({
      decide: (state, now) => {
        if (state === idleIn && state.schedulerVersion === idleAt) return []
        const events = decideSchedule(deciding(state, config, now))
        // Its events move the version: the next turn looks again, and the
        // message it dispatched is delivered there.
        idleIn = events.length === 0 ? state : undefined
        idleAt = state.schedulerVersion
        return events
      },
      committed: () => idleIn === undefined
    })

    const command = commands(runtime)

    const find = (id: string) =>
      Effect.flatMap(validTaskId(id), (taskId) =>
        Effect.flatMap(query((state) => {
          const task = state.tasks.get(taskId)
          return task === undefined ? undefined : taskView(state, task)
        }), (view) => view === undefined ? Effect.fail(new NotFound({ what: "task", id: taskId })) : Effect.succeed(view)))

    const ofTask = (request: unknown) => ({ agent_id: idOf(fieldOf(request, "agent_id")), task_id: idOf(fieldOf(request, "task_id")) })

    return Scheduler.of({
      submit: traced("Scheduler.submit", command(
        (input) => Either.map(validSubmit(input), (request) => request.input === undefined ? request : { ...request, input: copyJson(request.input) }),
        decideSubmit
      ), ofTask),
      task: traced("Scheduler.task", find, (id) => ({ task_id: idOf(id) })),
      tasks: traced("Scheduler.tasks", (filter) =>
        Effect.flatMap(validFilter(filter), (valid) =>
          query((state) =>
            [...state.tasks.values()]
              .filter((task) => (valid?.status === undefined || task.status === valid.status) && (valid?.agent_id === undefined || task.agent === valid.agent_id))
              .sort((a, b) => a.order - b.order)
              .map((task) => taskView(state, task))
          ))),
      requestPreemption: traced("Scheduler.requestPreemption", command(validPreempt, decideRequestPreemption), ofTask),
      yieldTask: traced("Scheduler.yieldTask", command(validTaskOfAgent, decideYield), ofTask),
      enterSection: traced("Scheduler.enterSection", command(validSection, decideEnterSection), ofTask),
      exitSection: traced("Scheduler.exitSection", command(validTaskOfAgent, decideExitSection), ofTask),
      shutdownAgent: traced("Scheduler.shutdownAgent", command(validShutdown, decideShutdown), ofTask),
      pollActivity: traced("Scheduler.pollActivity", (agentId) =>
        Effect.flatMap(validAgentId(agentId), (id) =>
          query((state) => ({ entries: [...(state.activity.get(id) ?? [])].map(activityEntry) }))), (id) => ({ agent_id: idOf(id) })),
      purgeActivity: traced("Scheduler.purgeActivity", command(validPurge, decidePurgeActivity), ofTask)
    })
  })
)
