/**
 * ARCP jobs run by remote agents (PROTOCOLS.md §3, "who runs a job"): a
 * router agent that registers the capability `arcp:NAME@VERSION` serves that
 * agent's jobs. Each job goes to it as a router message (so it has the ACK
 * lifecycle, redelivery and dead letters), and the agent reports the job's
 * events and its end over the API, decided here like an in-process
 * handler's. The job's message carries the job's id as its correlation id.
 */
import { failure, isTerminal, type JobOutcome } from "../schema/Arcp.js"
import type { ArcpJobAccepted } from "../schema/ArcpEvents.js"
import { JobEnded, JobNotFound, PermissionDenied } from "../schema/Errors.js"
import type { Event } from "../schema/Event.js"
import { arcpEndpointId, isAvailable } from "./Agents.js"
import { type AgentVersions, type ArcpJob, decideFinish } from "./ArcpJobs.js"
import { decideEmit, type EmitAnswer, type EmitItem } from "./ArcpEmit.js"
import { accept, type Decision, refuse, type RuntimeState } from "./State.js"

/** The content type of a job's message. */
export const jobContentType = "application/vnd.switchboard.arcp-job+json;v=1"

/** Who sends the jobs' messages: the runtime's ARCP endpoint, an id no agent may register. */
export const jobProducer = arcpEndpointId

const prefix = "arcp:"

/** The capability an agent registers to serve `name` at `version`. */
export const arcpCapability = (name: string, version: string) => `${prefix}${name}@${version}`

/** Every agent name remote agents serve, with its versions. */
export const remoteAgents = (state: RuntimeState): ReadonlyMap<string, ReadonlyArray<string>> => {
  const agents = new Map<string, Array<string>>()
  for (const agent of state.agents.values()) {
    if (!isAvailable(agent)) continue
    for (const capability of agent.descriptor.capabilities) {
      if (!capability.startsWith(prefix)) continue
      const at = capability.lastIndexOf("@")
      if (at <= prefix.length || at === capability.length - 1) continue
      const name = capability.slice(prefix.length, at)
      const versions = agents.get(name) ?? []
      if (!versions.includes(capability.slice(at + 1))) versions.push(capability.slice(at + 1))
      agents.set(name, versions)
    }
  }
  return agents
}

/** The versions of `name` that live, available remote agents serve, in the order they registered. */
export const remoteVersions = (state: RuntimeState, name: string): ReadonlyArray<string> => remoteAgents(state).get(name) ?? []

/**
 * The catalogue of `name`: the in-process handlers' versions, and the
 * remote agents' besides. A version both serve runs in process; the default
 * is the in-process one, else the first remote version.
 */
export const withRemote = (local: AgentVersions | undefined, remote: ReadonlyArray<string>): AgentVersions | undefined => {
  const only = remote.filter((version) => local === undefined || !local.versions.includes(version))
  if (only.length === 0) return local
  return {
    versions: [...(local?.versions ?? []), ...only],
    default: local?.default ?? only[0],
    remote: new Set(only)
  }
}

/** What a job's message carries: all its agent needs to run it. */
export const jobDescription = (accepted: ArcpJobAccepted) => ({
  job_id: accepted.job_id,
  agent: accepted.agent,
  version: accepted.version,
  input: accepted.input,
  lease: accepted.grants,
  ...(accepted.expires_at === undefined ? {} : { lease_expires_at: accepted.expires_at }),
  ...(accepted.budget === undefined ? {} : { budget: accepted.budget }),
  ...(accepted.max_runtime_sec === undefined ? {} : { max_runtime_sec: accepted.max_runtime_sec }),
  ...(accepted.trace_id === undefined ? {} : { trace_id: accepted.trace_id })
})

/** The job `reporter` may report for: it exists, runs remotely, has not ended, and `reporter` serves its agent. */
const reportable = (
  state: RuntimeState,
  job_id: string,
  reporter: string | undefined
): ArcpJob | JobNotFound | JobEnded | PermissionDenied => {
  const job = state.arcpJobs.get(job_id)
  if (job === undefined || job.accepted.remote !== true) return new JobNotFound({ job_id })
  // An operator (`reporter` undefined) may report for any job; an agent, for a job of an agent it serves.
  if (reporter !== undefined) {
    const capability = arcpCapability(job.accepted.agent, job.accepted.version)
    if (state.agents.get(reporter)?.descriptor.capabilities.includes(capability) !== true) {
      return new PermissionDenied({ reason: `agent ${reporter} does not serve ${job.accepted.agent}@${job.accepted.version}` })
    }
  }
  if (isTerminal(job.status)) return new JobEnded({ job_id, job_status: job.status })
  return job
}

type ReportError = JobNotFound | JobEnded | PermissionDenied

/** A remote agent's events for its job: each decided as an in-process handler's would be. */
export const decideReport = (
  state: RuntimeState,
  request: { readonly job_id: string; readonly reporter: string | undefined; readonly items: ReadonlyArray<EmitItem> },
  catalog: (name: string) => AgentVersions | undefined,
  now: number
): Decision<EmitAnswer, ReportError> => {
  const job = reportable(state, request.job_id, request.reporter)
  if (!("accepted" in job)) return refuse(job)
  const emitted = decideEmit(state, { job_id: request.job_id, items: request.items }, catalog, now)
  return emitted._tag === "Accepted" ? emitted : accept(emitted.events, [])
}

/** A remote agent's end of its job: a result, or an error with its code. */
export const decideReportEnd = (
  state: RuntimeState,
  request: { readonly job_id: string; readonly reporter: string | undefined; readonly outcome: JobOutcome },
  now: number
): Decision<void, ReportError> => {
  const job = reportable(state, request.job_id, request.reporter)
  if (!("accepted" in job)) return refuse(job)
  return accept(decideFinish(state, request.job_id, request.outcome, now).events, undefined)
}


/**
 * The job's message finished while the job still runs: its agent gave up
 * on it (REJECTED: AGENT_NOT_AVAILABLE; FAILED: INTERNAL_ERROR, retryable),
 * acknowledged it without reporting an end (INTERNAL_ERROR), or it became a
 * dead letter, no agent having run it to the end within its attempts or its
 * TTL (INTERNAL_ERROR, retryable).
 */
export const decideMessageEnded = (
  state: RuntimeState,
  message_id: string,
  stage: string,
  now: number
): ReadonlyArray<Event> => {
  const message = state.messages.get(message_id)
  // A late ACK of an earlier delivery ends nothing: only a message that finished does.
  if (message === undefined || message.producerId !== jobProducer || message.location !== "done") return []
  const job = state.arcpJobs.get(message.correlationId)
  if (job === undefined || job.accepted.remote !== true || isTerminal(job.status)) return []
  const outcome = stage === "REJECTED"
    ? failure("error", "AGENT_NOT_AVAILABLE", `the agent refused job ${job.accepted.job_id}`)
    : stage === "TIMED_OUT"
    ? failure("error", "INTERNAL_ERROR", `no agent ran job ${job.accepted.job_id} to its end (${message.errorCode ?? "timed out"})`)
    : failure("error", "INTERNAL_ERROR", `the agent ended job ${job.accepted.job_id}'s message (${stage}) without reporting its end`)
  return decideFinish(state, job.accepted.job_id, outcome, now).events
}

/** Running remote jobs whose message the router does not hold: their dispatch was lost with the process. */
export const undispatched = (state: RuntimeState): ReadonlyArray<ArcpJobAccepted> => {
  const running = new Map<string, ArcpJobAccepted>()
  for (const job of state.arcpJobs.values()) {
    if (job.accepted.remote === true && !isTerminal(job.status)) running.set(job.accepted.job_id, job.accepted)
  }
  if (running.size === 0) return []
  for (const message of state.messages.values()) {
    if (message.producerId === jobProducer) running.delete(message.correlationId)
  }
  return [...running.values()]
}
