/**
 * The console's coordination views in Chromium, against a real server: a
 * task submitted over the API shows in the scheduler (and one submitted
 * from the console reaches the API), a preemption shows with its grace,
 * an agent's key sees its own tasks, binding and rooms only, a room's votes
 * and decision show, a pending worktree switch is approved from the
 * console, a HITL invocation answered from the Approvals view is resolved,
 * as the API then says, and the rooms' list reads its next page as it
 * scrolls. Every wait is on a condition, none a fixed sleep.
 */
import { Chunk, Effect, Stream } from "effect"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { keys, keysFile } from "../server/wire.js"
import { consoleDirectory, gone, launch, noBrowser, requester, type Running, serve, shows } from "./harness.js"

if (noBrowser !== undefined) console.warn(noBrowser)

describe.skipIf(noBrowser !== undefined)("the console's coordination views, in Chromium", () => {
  let server: Running
  let browser: Browser
  let page: Page

  const api = requester(() => server.url, keys.operator)
  const ok = async (path: string, body?: unknown, key?: string) => {
    const answer = await api(path, { body, key })
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    return answer.body
  }
  const open = (view: string) => page.goto(`${server.url}/console#/${view}`)
  const grid = (label: string) => page.getByRole("grid", { name: label })

  beforeAll(async () => {
    const directory = await consoleDirectory()
    server = await serve({ keys: keysFile, directory, runtime: { livenessTimeoutMs: undefined, preemptionGraceMs: 120_000 } })
    browser = await launch()
    page = await browser.newPage()
    for (const [agent_id, capabilities] of [["builder", ["build"]], ["alice", ["review"]], ["bob", ["review"]], ["a", ["lint"]]] as const) {
      await ok("/agents", { agent_id, name: agent_id, capabilities })
    }
    await open("scheduler")
    await page.getByLabel("API key").fill(keys.operator)
    await page.getByRole("button", { name: "Sign in" }).click()
    await shows(page.getByRole("heading", { name: "Scheduler" }))
  })

  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  it("shows a task submitted over the API, and submits one that the API then holds", async () => {
    await ok("/tasks", { task_id: "build-api", capability: "build", priority: -5, scope: "repo/api", input: { target: "api" } })
    const row = grid("Tasks").locator('[data-key="build-api"]')
    await shows(row, "repo/api")
    await shows(row, "-5")
    await row.click()
    await shows(page.getByRole("complementary", { name: "Task build-api" }), "capability build")

    const form = page.getByRole("form", { name: "Submit a task" })
    await form.getByRole("textbox", { name: "Capability" }).fill("deploy")
    await form.getByLabel("Priority (−19 most urgent to 20)").fill("3")
    await form.getByRole("textbox", { name: "Scope" }).fill("repo/web")
    await form.getByRole("button", { name: "Submit" }).click()
    await shows(form.getByRole("status"), /task-\d+ submitted: QUEUED/)
    const tasks = (await ok("/tasks")) as Array<{ task_id: string; capability?: string; priority: number; scope?: string }>
    expect(tasks.find((task) => task.capability === "deploy")).toMatchObject({ priority: 3, scope: "repo/web" })
  })

  it("shows a running task asked to yield to a more urgent one, and its grace counting down", async () => {
    const row = grid("Tasks").locator('[data-key="build-api"]')
    await shows(row, "DISPATCHED")
    // The builder reads its task (one not yet delivered would be taken back at once, not asked to yield).
    await server.run(Effect.scoped(Effect.gen(function*() {
      const inbound = yield* server.router.subscription("builder")
      const [delivery] = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(inbound, 1)))
      if (delivery._tag !== "Delivery") throw new Error("expected a delivery")
      yield* server.router.ack({ agent_id: "builder", message_id: delivery.envelope.message_id, stage: "READ", delivery_seq: delivery.delivery_seq })
    })))
    await ok("/tasks", { task_id: "hotfix", agent_id: "builder", priority: -12, scope: "repo/hotfix" })
    await shows(row, "yield asked")
    await row.click()
    const detail = page.getByRole("complementary", { name: "Task build-api" })
    await shows(detail, "for hotfix")
    await shows(detail.getByRole("timer", { name: "grace left" }), "left")
  })

  it("signed in with an agent's key, shows that agent's tasks only", async () => {
    await ok("/tasks", { task_id: "lint-a", agent_id: "a", priority: 1 }, keys.a)
    const context = await browser.newContext()
    try {
      const own = await context.newPage()
      await own.goto(`${server.url}/console#/scheduler`)
      await own.getByLabel("API key").fill(keys.a)
      await own.getByRole("button", { name: "Sign in" }).click()
      await shows(own.getByRole("grid", { name: "Tasks" }).locator('[data-key="lint-a"]'))
      await gone(own.getByRole("grid", { name: "Tasks" }).locator('[data-key="build-api"]'))
      await own.getByRole("navigation").getByRole("link", { name: "Worktrees" }).click()
      await shows(own.getByRole("grid", { name: "Worktree bindings" }).locator('[data-key="a"]'), "UNBOUND")
      expect(await own.getByRole("grid", { name: "Worktree bindings" }).getByRole("row").count()).toBe(1)
    } finally {
      await context.close()
    }
  })

  it("shows a room's votes and its decision", async () => {
    await ok("/rooms", { negotiation_room_id: "plan-1", artifact_type: "PLAN", producer_id: "builder", requested_critics: ["alice", "bob"], artifact: { steps: 3 } })
    await open("rooms")
    await shows(grid("Rooms").locator('[data-key="plan-1"]'), "open")
    await ok("/rooms/plan-1/votes", { critic_id: "alice", score: 9, confidence: 0.9, passed: true, strengths: ["small steps"] })
    await ok("/rooms/plan-1/votes", { critic_id: "bob", score: 8, confidence: 0.8, passed: true, weaknesses: ["no rollback"] })
    // Live: the list hears of the decision from the log.
    await shows(grid("Rooms").locator('[data-key="plan-1"]'), "APPROVED")
    await grid("Rooms").locator('[data-key="plan-1"]').click()
    const room = page.getByRole("complementary", { name: "Room plan-1" })
    const votes = room.getByRole("table", { name: "Votes" })
    await shows(votes.getByRole("row").filter({ hasText: "alice" }), "small steps")
    await shows(votes.getByRole("row").filter({ hasText: "bob" }), "no rollback")
    await shows(votes.getByRole("row").filter({ hasText: "bob" }), "0.8")
    await shows(room.getByTestId("room-decision"), "APPROVED")
  })

  it("signed in with an agent's key, lists the rooms that agent produces or criticises only", async () => {
    await ok("/rooms", { negotiation_room_id: "lint-plan", artifact_type: "PLAN", producer_id: "a", requested_critics: ["bob"], artifact: {} }, keys.a)
    const context = await browser.newContext()
    try {
      const own = await context.newPage()
      await own.goto(`${server.url}/console#/rooms`)
      await own.getByLabel("API key").fill(keys.a)
      await own.getByRole("button", { name: "Sign in" }).click()
      const rooms = own.getByRole("grid", { name: "Rooms" })
      await shows(rooms.locator('[data-key="lint-plan"]'), "open")
      await gone(rooms.locator('[data-key="plan-1"]'))
      expect(await rooms.getByRole("row").count()).toBe(1)
      await rooms.locator('[data-key="lint-plan"]').click()
      await shows(own.getByRole("complementary", { name: "Room lint-plan" }), "Not decided yet")
    } finally {
      await context.close()
    }
  })

  it("approves a pending worktree switch, with a TTL counting down", async () => {
    await ok("/agents/alice/worktree/bind", { repo_id: "api", worktree_id: "main" })
    await ok("/agents/alice/worktree/switch", { target_worktree_id: "hotfix" })
    await open("worktrees")
    const row = grid("Worktree bindings").locator('[data-key="alice"]')
    await shows(row, "SWITCH_PENDING")
    await row.click()
    const detail = page.getByRole("complementary", { name: "Worktree of alice" })
    await detail.getByLabel("Stay away (minutes)").fill("30")
    await detail.getByRole("button", { name: "Approve the switch" }).click()
    await shows(page.getByRole("status"), "alice: switch approved, now BOUND_NON_HOME")
    const status = await ok("/agents/alice/worktree")
    expect(status).toMatchObject({ state: "BOUND_NON_HOME", repo_id: "api", worktree_id: "hotfix" })
    await shows(row.getByRole("timer"), "away")
  })

  it("answers a HITL invocation from the Approvals view, and the API says it is resolved", async () => {
    const invoked = await ok("/hitl", {
      reason: "MANUAL_OVERRIDE",
      context: { ask: "deploy on a Friday?" },
      proposed_actions: ["deploy now", "wait for Monday"],
      timeout_ms: 600_000
    }) as { hitl_id: string }
    await open("approvals")
    const card = page.getByRole("listitem", { name: `Invocation ${invoked.hitl_id}` })
    await shows(card, "MANUAL_OVERRIDE")
    await shows(card, "wait for Monday")
    await shows(card.getByRole("timer"), "left")
    await card.getByRole("button", { name: "Deny" }).click()
    await shows(card.getByRole("alert"), "needs a rationale")
    await card.getByLabel("Rationale (required to deny or defer)").fill("not on a Friday")
    await card.getByRole("button", { name: "Deny" }).click()
    await shows(page.getByText("No invocation waits for an answer."))
    const answered = await ok(`/hitl/${invoked.hitl_id}`)
    expect(answered).toMatchObject({ status: "decided", decision: { action: "deny", rationale: "not on a Friday", by: "console", automatic: false } })
    await shows(page.getByRole("table", { name: "Invocations closed lately" }).getByRole("row").filter({ hasText: invoked.hitl_id }), "decided")
  })

  it("lists rooms a page at a time, the next one read as the list scrolls to its end", async () => {
    const ids = Array.from({ length: 510 }, (_, i) => `bulk-${String(i).padStart(3, "0")}`)
    for (let i = 0; i < ids.length; i += 30) {
      await Promise.all(ids.slice(i, i + 30).map((negotiation_room_id) =>
        ok("/rooms", { negotiation_room_id, artifact_type: "CODE", producer_id: "builder", requested_critics: ["bob"], artifact: {} })))
    }
    await open("rooms")
    const rooms = grid("Rooms")
    // plan-1 and lint-plan, then the bulk: the first page holds 500 of the 512.
    await shows(page.getByText("500+ rooms"))
    await gone(rooms.locator('[data-key="bulk-509"]'))
    await rooms.focus()
    await page.keyboard.press("End")
    await shows(page.getByText("512 rooms"))
    // The new page is below the row the key reached: the list's end is one more key away.
    await page.keyboard.press("End")
    await shows(rooms.locator('[data-key="bulk-509"]'), "open")
    expect(await rooms.getByRole("row").count()).toBeLessThan(60)
  })
})
