/**
 * The README's screenshots of the console (`docs/console-*.png`), taken
 * from a real server with a small world in it: a planner that spawned
 * researchers and writers in two teams, messages settled, one dead letter,
 * a tool call waiting for a human, a suspended agent, an ARCP job, tasks,
 * negotiation rooms, worktree bindings and a question for a human. Run with
 * `npm run console:screenshots` after changing a view.
 */
import { NodeSocket } from "@effect/platform-node"
import { Chunk, Effect, Schema, Stream } from "effect"
import { mkdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { Page } from "playwright-core"
import { ArcpClient } from "../../src/index.js"
import { buildEnvelope } from "../../src/model/Envelopes.js"
import { hashKey, keyIdOf } from "../../src/model/Keys.js"
import { Envelope } from "../../src/schema/Envelope.js"
import { KeysFile } from "../../src/schema/Keys.js"
import { consoleDirectory, launch, noBrowser, requester, serve, shows } from "./harness.js"

// The keys and envelopes of `test/server/wire.ts`, which this script cannot import: it runs outside Vitest.
const keys = { operator: `sb_${"O".repeat(43)}` }
const keysFile = Schema.decodeUnknownSync(KeysFile)({
  version: 1,
  keys: [{ id: keyIdOf(hashKey(keys.operator)), hash: hashKey(keys.operator), role: "operator", created_at: "2025-01-01T00:00:00.000Z" }]
})
let sent = 0
const envelope = (producer_id: string, fields: { readonly payload?: unknown; readonly ttl_ms?: number } = {}) =>
  Schema.encodeSync(Envelope)(buildEnvelope({ payload: { n: 1 }, ...fields, producer_id }, `msg-${++sent}`, Date.now()))

const out = fileURLToPath(new URL("../../docs/", import.meta.url))

const policy = `
id: fleet
scope: { kind: global }
tools:
  "*": { allow: true }
  shell.exec: { allow: false }
  payments.send: { allow: true, requires_approval_if: "args.amount > 100" }
`

const main = async () => {
  if (noBrowser !== undefined) throw new Error(noBrowser)
  mkdirSync(out, { recursive: true })
  const server = await serve({ keys: keysFile, directory: await consoleDirectory(), runtime: { livenessTimeoutMs: undefined }, echoAgent: true })
  const request = requester(() => server.url, keys.operator)
  const api = async (path: string, body?: unknown) => {
    const answer = await request(path, { body })
    if (answer.status < 200 || answer.status >= 300) throw new Error(`${path}: ${answer.status} ${JSON.stringify(answer.body)}`)
    return answer.body
  }
  try {
    await api("/policies", { yaml: policy })
    const agents: Array<[string, string | undefined, string | undefined, Array<string>]> = [
      ["planner", undefined, "core", ["plan"]],
      ["researcher-1", "planner", "research", ["search"]],
      ["researcher-2", "planner", "research", ["search"]],
      ["researcher-3", "researcher-1", "research", ["search", "read"]],
      ["writer-1", "planner", "writing", ["summarize"]],
      ["writer-2", "planner", "writing", ["summarize"]],
      ["reviewer", "writer-1", "writing", ["review"]],
      ["archiver", undefined, "ops", ["archive"]],
      ["billing", undefined, "ops", ["pay"]]
    ]
    for (const [agent_id, parent_agent_id, team_id, capabilities] of agents) {
      await api("/agents", { agent_id, name: agent_id.replace(/-/g, " "), parent_agent_id, team_id, capabilities })
    }
    await api("/agents/researcher-2/heartbeat", { state: "RUNNING", health: { cpu: "ok", queue: "12" } })
    for (const [from, to, edge_type] of [["planner", "writer-1", "delegates_to"], ["writer-1", "reviewer", "calls"], ["reviewer", "archiver", "writes"], ["researcher-1", "researcher-3", "reads"], ["billing", "planner", "approves"]]) {
      await api("/topology/edges", { source_agent_id: from, target_agent_id: to, edge_type })
    }
    // Work, settled by its recipients in process.
    const settle = (to: string, n: number) =>
      server.run(Effect.scoped(Effect.gen(function*() {
        const inbound = yield* server.router.subscription(to)
        const taken = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(inbound, n)))
        for (const item of taken) {
          if (item._tag !== "Delivery") continue
          yield* server.router.ack({ agent_id: to, message_id: item.envelope.message_id, stage: "READ", delivery_seq: item.delivery_seq })
          yield* server.router.ack({ agent_id: to, message_id: item.envelope.message_id, stage: "FULFILLED", delivery_seq: item.delivery_seq })
        }
      })))
    for (let i = 0; i < 4; i++) await api("/messages", { to: { capability: "search" }, envelope: envelope("planner") })
    await api("/messages", { to: "writer-1", envelope: envelope("planner", { payload: { text: "draft the report" } }) })
    await settle("writer-1", 1)
    await settle("researcher-1", 2)
    await api("/messages", { to: "archiver", envelope: envelope("reviewer", { ttl_ms: 100 }) })
    const late = (await api("/messages", { to: "archiver", envelope: envelope("writer-2", { ttl_ms: 100 }) })).message_id
    await api(`/messages/${late}/await?stage=TIMED_OUT&wait_ms=5000`)
    await api("/check", { kind: "tool_call", agent_id: "researcher-3", tool: "shell.exec", args: {} })
    await api("/tools/dispatch", { agent_id: "billing", tool: "payments.send", args: { amount: 250, to: "ACME" } })
    await api("/agents/writer-2/suspend", { reason: "drafts off topic", by: "ops" })
    await server.run(Effect.scoped(Effect.gen(function*() {
      const session = yield* ArcpClient.connect({ url: `${server.url.replace("http", "ws")}/arcp`, token: keys.operator })
      const job = yield* session.submit({ agent: "echo", input: { hello: "world" } })
      yield* job.result
    })).pipe(Effect.provide(NodeSocket.layerWebSocketConstructor)))
    await api("/messages", { to: "writer-1", envelope: envelope("planner", { payload: { text: "one more section" } }) })
    // Coordination: tasks by priority, a room decided and one still voting, worktrees (one switch
    // waiting for the operator, one agent away from home), and a question for a human.
    const tasks: Array<[string, string, number, string | undefined]> = [
      ["plan-q3", "plan", -5, "repo/roadmap"],
      ["search-papers", "search", 0, "corpus/papers"],
      ["search-patents", "search", 2, "corpus/patents"],
      ["summarize-week", "summarize", 5, undefined],
      ["archive-logs", "archive", 10, "store/logs"],
      ["review-draft", "review", -2, "docs/report"],
      // The planner is busy: one waits, and a more urgent one asks plan-q3 to yield to it.
      ["plan-q4", "plan", 3, "repo/roadmap-q4"],
      ["plan-incident", "plan", -12, "repo/incident"]
    ]
    for (const [task_id, capability, priority, scope] of tasks) await api("/tasks", { task_id, capability, priority, scope, input: { task_id } })
    await api("/rooms", {
      negotiation_room_id: "report-outline",
      artifact_type: "PLAN",
      producer_id: "writer-1",
      requested_critics: ["reviewer", "planner"],
      artifact: { sections: ["context", "findings", "next steps"] }
    })
    await api("/rooms/report-outline/votes", { critic_id: "reviewer", score: 8, confidence: 0.9, passed: true, strengths: ["clear order"], recommendations: ["cite the sources"] })
    await api("/rooms/report-outline/votes", { critic_id: "planner", score: 7.5, confidence: 0.8, passed: true, weaknesses: ["findings too long"] })
    await api("/rooms", { negotiation_room_id: "release-plan", artifact_type: "DEPLOYMENT", producer_id: "planner", requested_critics: ["reviewer", "archiver"] })
    await api("/rooms/release-plan/votes", { critic_id: "archiver", score: 6, confidence: 0.7, passed: true })
    for (const [agent_id, repo_id] of [["writer-1", "report"], ["reviewer", "report"], ["researcher-1", "corpus"], ["planner", "roadmap"]]) {
      await api(`/agents/${agent_id}/worktree/bind`, { repo_id, worktree_id: "main" })
    }
    await api("/agents/reviewer/worktree/switch", { target_worktree_id: "hotfix-12" })
    await api("/agents/researcher-1/worktree/switch", { target_worktree_id: "patents" })
    await api("/agents/researcher-1/worktree/approve", { ttl_ms: 45 * 60_000, by: "ops" })
    await api("/hitl", {
      reason: "MANUAL_OVERRIDE",
      context: { question: "publish the report before the review ends?" },
      proposed_actions: ["publish now", "wait for the review"],
      invoked_by: "writer-1",
      timeout_ms: 15 * 60_000
    })

    const browser = await launch()
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, colorScheme: "light" })
      await page.goto(`${server.url}/console`)
      await page.getByLabel("API key").fill(keys.operator)
      await page.getByRole("button", { name: "Sign in" }).click()
      const shot = async (view: string, name: string, ready: (page: Page) => Promise<void>) => {
        await page.goto(`${server.url}/console#/${view}`)
        await ready(page)
        await page.screenshot({ path: `${out}console-${name}.png` })
        console.log(`docs/console-${name}.png`)
      }
      await shot("agents?agent=researcher-2", "agents", (p) => shows(p.getByRole("complementary", { name: "Agent researcher-2" })))
      await shot("topology?agent=planner", "topology", (p) => shows(p.getByRole("group", { name: "Topology graph" })))
      const message = (await api(`/log?type=MessageAcked&stage=FULFILLED&limit=1`)).records[0].event.message_id
      await shot(`messages?message=${message}`, "messages", (p) => shows(p.getByRole("list", { name: "Timeline" }).getByRole("listitem")))
      await shot("dead-letters?agent=archiver", "dead-letters", (p) => shows(p.getByRole("button", { name: `Redrive ${late}` })))
      await shot("approvals", "approvals", (p) => shows(p.getByRole("timer")))
      await shot("kill-switch?agent=writer-2", "kill-switch", (p) => shows(p.getByRole("cell", { name: "drafts off topic" })))
      await page.goto(`${server.url}/console#/audit`)
      await page.getByRole("button", { name: "Verify the chain" }).click()
      await shot("audit", "audit", (p) => shows(p.getByTestId("audit-verdict")))
      await shot("replay?at=30", "replay", (p) => shows(p.getByTestId("replay-offset"), /State at offset 30$/))
      await shot("arcp", "arcp", (p) => shows(p.getByRole("cell", { name: "success" })))
      await shot("scheduler?task=plan-q3", "scheduler", (p) => shows(p.getByRole("complementary", { name: "Task plan-q3" })))
      await shot("worktrees?agent=reviewer", "worktrees", (p) => shows(p.getByRole("complementary", { name: "Worktree of reviewer" })))
      await shot("rooms?room=report-outline", "rooms", (p) => shows(p.getByTestId("room-decision")))
      await page.emulateMedia({ colorScheme: "dark" })
      await shot("agents", "agents-dark", (p) => shows(p.getByRole("grid", { name: "Agents" }).locator('[data-key="planner"]')))
    } finally {
      await browser.close()
    }
  } finally {
    await server.close()
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
