/**
 * The test agent the behaviours beyond `echo` need: a job that runs until
 * told to stop (cancel, timeout, resume and subscribe while it runs), that
 * makes tool calls through its lease, reports costs and delegates (leases,
 * budgets, delegation), and that emits every event kind (event kinds,
 * result chunks).
 *
 * The suite asks for it by name in the welcome's inventory: `script`,
 * version `1.0.0`. Its input is a list of steps, run in order:
 *
 *   { "emit": { "kind": K, "body": B } }        emit one event as given
 *   { "sleep_ms": N }                           wait (cancellable)
 *   { "until_cancelled": true }                 wait for a cancel (or the end of the lease/runtime)
 *   { "tool_call": { "tool": T, "args": A } }   a tool call through the lease; its outcome is not fatal
 *                                               unless the runtime ends the job
 *   { "cost": { "name": N, "value": V, "unit": U } }   report a cost (metric cost.*)
 *   { "delegate": { "delegate_id", "agent", "input", "lease_request"?, "lease_constraints"? } }
 *   { "chunks": { "parts": [S...], "encoding": "utf8" } }   stream the result as result_chunk events
 *   { "fail": { "code": C, "message": M } }     end with job.error C
 *   { "return": R }                             end with job.result R
 *
 * and ends with `null` when the steps run out. `serve` registers no such
 * agent: the files that need it run `fixtures/scriptServer.js`, serve's
 * composition plus this agent through the implementation's in-process agent
 * API. When that fixture cannot start, every test that needs the agent is
 * skipped at run time, saying why.
 */
import { beforeAll, it, type TestContext } from "vitest"
import { agentsOf, type Frame, openSession, type Server } from "./harness.js"

export const SCRIPT_AGENT = "script"

export type Step =
  | { readonly emit: { readonly kind: string; readonly body: unknown } }
  | { readonly sleep_ms: number }
  | { readonly until_cancelled: true }
  | { readonly tool_call: { readonly tool: string; readonly args?: unknown } }
  | { readonly cost: { readonly name: string; readonly value: number; readonly unit: string } }
  | { readonly delegate: Record<string, unknown> }
  | { readonly chunks: { readonly parts: ReadonlyArray<string>; readonly encoding: "utf8" | "base64" } }
  | { readonly fail: { readonly code: string; readonly message: string } }
  | { readonly return: unknown }


export const hasScript = (welcome: Frame) => agentsOf(welcome).has(SCRIPT_AGENT)

export const MISSING = `no "${SCRIPT_AGENT}" test agent in the welcome's inventory (see script.ts)`

/**
 * `it`, skipped at run time (with the reason in the report) when the server
 * lists no script agent. Call once per file, after `useServer`.
 */
export const scriptTests = (server: () => Server) => {
  let available = false
  let reason = MISSING
  beforeAll(async () => {
    const { conn, welcome } = await openSession(server(), { token: server().keys.alice })
    available = hasScript(welcome)
    reason = server().fixtureError === undefined ? MISSING : `${MISSING}: ${server().fixtureError}`
    conn.close()
  }, 60_000)
  return (name: string, fn: (ctx: TestContext) => Promise<void>, timeout?: number) =>
    it(`${name} [needs the script agent]`, async (ctx) => {
      if (!available) {
        ctx.skip(reason)
        return
      }
      await fn(ctx)
    }, timeout)
}

/** A script job's payload for job.submit. */
export const script = (steps: ReadonlyArray<Step>, extra: Record<string, unknown> = {}) => ({ agent: SCRIPT_AGENT, input: steps, ...extra })
