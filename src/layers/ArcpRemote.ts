/**
 * The machinery of remote ARCP agents (`model/ArcpRemote.ts` has the rules):
 * a job accepted for one is sent, once its acceptance is durable, as a
 * router message to the capability `arcp:NAME@VERSION` (any live agent that
 * serves it; redelivered to another if its agent dies); its
 * `max_runtime_sec` is watched here; when its message ends while the job
 * runs (a dead letter, a REJECTED or FAILED ACK), the job fails; and what
 * the agent reports over the API is decided through the command loop.
 *
 * Remote jobs outlive a restart: their messages are in the log. At start,
 * one whose message never got sent (the process died between the two
 * commits) is sent now, and every running one's timeout is armed again.
 */
import { Duration, Effect } from "effect"
import { type ArcpJobAccepted } from "../schema/ArcpEvents.js"
import { decideFinish } from "../model/ArcpJobs.js"
import {
  arcpCapability,
  decideMessageEnded,
  decideReport,
  decideReportEnd,
  jobContentType,
  jobDescription,
  jobProducer,
  undispatched
} from "../model/ArcpRemote.js"
import type { EmitItem } from "../model/ArcpEmit.js"
import { accept, type RuntimeState } from "../model/State.js"
import { failure, isTerminal, type JobOutcome } from "../schema/Arcp.js"
import { ValidationError } from "../schema/Errors.js"
import type { Event } from "../schema/Event.js"
import type { Arcp } from "../services/Arcp.js"
import type { Router } from "../services/Router.js"
import type { Runtime } from "../services/Runtime.js"
import type { AgentRunner } from "./ArcpAgents.js"
import { sdkForm, validBody } from "./ArcpAgents.js"
import { newEnvelope } from "./Envelopes.js"
import { ulid } from "./Ulid.js"

const terminalAck: ReadonlySet<string> = new Set(["FULFILLED", "REJECTED", "FAILED"])

export const makeRemote = (deps: {
  readonly runtime: Runtime["Type"]
  readonly router: Router["Type"]
  readonly runner: AgentRunner
  /** Forks on the layer's scope. */
  readonly run: (effect: Effect.Effect<void>) => unknown
  readonly now: () => number
}) => {
  const { runner, runtime, router } = deps
  const run = (effect: Effect.Effect<unknown, unknown>) => deps.run(Effect.ignoreLogged(effect))

  const finish = (job_id: string, outcome: JobOutcome) => runtime.run((state, now) => decideFinish(state, job_id, outcome, now))

  const dispatch = (accepted: ArcpJobAccepted) =>
    run(
      Effect.gen(function*() {
        const envelope = yield* newEnvelope({
          producer_id: jobProducer,
          message_type: "DATA",
          content_type: jobContentType,
          correlation_id: accepted.job_id,
          payload: jobDescription(accepted)
        })
        yield* router.send({ to: { capability: arcpCapability(accepted.agent, accepted.version) }, envelope })
      }).pipe(
        Effect.catchAll((error) =>
          finish(accepted.job_id, failure("error", "AGENT_NOT_AVAILABLE", `no agent takes ${accepted.agent}@${accepted.version}: ${error.message}`))
        )
      )
    )

  /** Ends the job with TIMEOUT at its `max_runtime_sec`, if nothing ended it before. */
  const armTimeout = (accepted: ArcpJobAccepted) => {
    if (accepted.max_runtime_sec === undefined) return
    const left = Math.max(0, accepted.at + accepted.max_runtime_sec * 1000 - deps.now())
    run(Effect.zipRight(
      Effect.sleep(Duration.millis(left)),
      finish(accepted.job_id, failure("timed_out", "TIMEOUT", "the job ran past its max_runtime_sec"))
    ))
  }

  /** Whether `events` hold the end of a job message: then its job, if it still runs, fails. */
  const committed = (events: ReadonlyArray<Event>, state: RuntimeState) => {
    let ended: Array<readonly [string, string]> | undefined
    for (const event of events) {
      const stage = event._tag === "MessageTimedOut"
        ? "TIMED_OUT"
        : event._tag === "MessageAcked" && terminalAck.has(event.stage)
        ? event.stage
        : undefined
      if (stage === undefined) continue
      const message_id = (event as { readonly message_id: string }).message_id
      if (state.messages.get(message_id)?.producerId !== jobProducer) continue
      ;(ended ??= []).push([message_id, stage])
    }
    if (ended !== undefined) {
      const all = ended
      run(runtime.run((current, now) => accept(all.flatMap(([message_id, stage]) => decideMessageEnded(current, message_id, stage, now)), undefined)))
    }
  }

  const accepted = (event: ArcpJobAccepted) => {
    dispatch(event)
    armTimeout(event)
  }

  const atStart = runtime.query((state) => {
    const running: Array<ArcpJobAccepted> = []
    for (const job of state.arcpJobs.values()) if (job.accepted.remote === true && !isTerminal(job.status)) running.push(job.accepted)
    return { running, orphans: undispatched(state) }
  }).pipe(Effect.map(({ orphans, running }) => {
    for (const job of orphans) dispatch(job)
    for (const job of running) armTimeout(job)
  }))

  const report: Arcp["Type"]["report"] = ({ events, job_id, reporter }) =>
    Effect.gen(function*() {
      const ts = new Date(deps.now()).toISOString()
      const items: Array<EmitItem> = []
      for (let i = 0; i < events.length; i++) {
        const event = sdkForm(events[i] as never)
        if (!validBody(event.kind, event.body)) {
          return yield* ValidationError.single("arcp.report", `events[${i}].body`, `not a valid ${String(event.kind).slice(0, 64)} body`)
        }
        const child = event.kind === "delegate" ? yield* Effect.map(ulid, (id) => ({ job_id: `job_${id}`, lease_id: `lease_job_${id}` })) : undefined
        items.push({ kind: event.kind, body: event.body as never, ts, ...(child === undefined ? {} : { child }) })
      }
      const answers = yield* runtime.run(
        (state, now) => decideReport(state, { job_id, reporter, items }, runner.catalogIn(state), now),
        (value) => value
      )
      return answers.map((answer) =>
        answer._tag === "Right"
          ? { ok: true as const, ...(answer.right.child_job_id === undefined ? {} : { child_job_id: answer.right.child_job_id }) }
          : { ok: false as const, code: answer.left.code, message: answer.left.message })
    })

  const end: Arcp["Type"]["end"] = ({ job_id, outcome, reporter }) =>
    runtime.run((state, now) => decideReportEnd(state, { job_id, reporter, outcome }, now), () => undefined)

  return { accepted, committed, atStart, report, end }
}
