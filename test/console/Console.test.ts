/**
 * The console in a real browser (Debian's Chromium, driven by
 * playwright-core) against a real server on 127.0.0.1 over a SQLite store:
 * sign in, watch agents register live, follow a message to FULFILLED,
 * redrive a dead letter, approve a held tool call and see its caller go on,
 * suspend an agent, verify the audit chain and find a record tampered with
 * in the file, scrub the replay. One server and one browser for the file;
 * every wait is on a condition (Playwright's auto-waiting `expect`), none is
 * a fixed sleep.
 */
import Database from "better-sqlite3"
import { Chunk, Effect, Stream } from "effect"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { envelope, keys, keysFile } from "../server/wire.js"
import { consoleDirectory, gone, launch, noBrowser, requester, type Running, serve, shows } from "./harness.js"

const policy = `
id: console
scope: { kind: global }
tools:
  "*": { allow: true }
  deploy: { allow: true, requires_approval_if: "tool == 'deploy'" }
`

if (noBrowser !== undefined) console.warn(noBrowser)

describe.skipIf(noBrowser !== undefined)("the console, in Chromium", () => {
  let server: Running
  let browser: Browser
  let page: Page

  const api = requester(() => server.url, keys.operator)
  const send = async (from: string, to: string, fields: Parameters<typeof envelope>[1] = {}, key: string = keys.operator) => {
    const answer = await api("/messages", { body: { to, envelope: envelope(from, fields) }, key })
    expect(answer.status).toBe(200)
    return answer.body as { message_id: string; offset: number }
  }
  const open = (view: string) => page.goto(`${server.url}/console#/${view}`)
  const grid = (label: string) => page.getByRole("grid", { name: label })

  beforeAll(async () => {
    const directory = await consoleDirectory()
    server = await serve({ keys: keysFile, directory, runtime: { livenessTimeoutMs: undefined } })
    browser = await launch()
    page = await browser.newPage()
    expect((await api("/policies", { body: { yaml: policy } })).status).toBe(200)
  })

  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  it("signs in with a key (a wrong one is refused) and shows agents as they register, live", async () => {
    await open("agents")
    await page.getByLabel("API key").fill("sb_not-a-key")
    await page.getByRole("button", { name: "Sign in" }).click()
    await shows(page.getByRole("alert"), "UNAUTHENTICATED")
    await page.getByLabel("API key").fill(keys.operator)
    await page.getByRole("button", { name: "Sign in" }).click()
    await shows(page.getByRole("heading", { name: "Agents" }))
    await shows(page.getByText("● live"))

    expect((await api("/agents", { body: { agent_id: "a", name: "A", team_id: "blue" }, key: keys.a })).status).toBe(200)
    await shows(grid("Agents").locator('[data-key="a"]'))
    for (const id of ["b", "c"]) expect((await api("/agents", { body: { agent_id: id, name: id.toUpperCase(), parent_agent_id: "a", team_id: "blue" } })).status).toBe(200)
    await shows(grid("Agents").locator('[data-key="c"]'))
    await shows(page.getByText("3 agents, 3 available"))
  })

  it("signed in with an agent's key, shows that agent alone and no operator's view", async () => {
    const context = await browser.newContext()
    try {
      const own = await context.newPage()
      await own.goto(`${server.url}/console#/agents`)
      await own.getByLabel("API key").fill(keys.a)
      await own.getByRole("button", { name: "Sign in" }).click()
      await shows(own.getByRole("grid", { name: "Agents" }).locator('[data-key="a"]'))
      await gone(own.getByRole("grid", { name: "Agents" }).locator('[data-key="b"]'))
      await gone(own.getByRole("navigation").getByRole("link", { name: "Audit" }))
      await shows(own.getByRole("navigation"), "Agent a")
    } finally {
      await context.close()
    }
  })

  it("follows a message in the live log and its timeline to FULFILLED", async () => {
    await open("messages")
    const sent = await send("a", "b", {}, keys.a)
    await shows(grid("Log records, newest first").getByText(`${sent.message_id} DATA from a accepted for b`))
    await grid("Log records, newest first").getByText(`${sent.message_id} DATA from a accepted for b`).click()
    await shows(page.getByTestId("message-stage"), "RECEIVED")

    // Agent b takes it and settles it, in process; the console sees each step as the log does.
    await server.run(Effect.scoped(Effect.gen(function*() {
      const inbound = yield* server.router.subscription("b")
      const [delivery] = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(inbound, 1)))
      if (delivery._tag !== "Delivery") throw new Error("expected a delivery")
      yield* server.router.ack({ agent_id: "b", message_id: sent.message_id, stage: "READ", delivery_seq: delivery.delivery_seq })
      yield* server.router.ack({ agent_id: "b", message_id: sent.message_id, stage: "FULFILLED", delivery_seq: delivery.delivery_seq })
    })))
    await shows(page.getByTestId("message-stage"), "FULFILLED")
    await shows(page.getByRole("list", { name: "Timeline" }), `${sent.message_id} FULFILLED by b`)
  })

  it("redrives a dead letter", async () => {
    const expired = await send("c", "b", { ttl_ms: 200 })
    const settled = await api(`/messages/${expired.message_id}/await?stage=TIMED_OUT&wait_ms=10000`)
    expect(settled.body).toMatchObject({ stage: "TIMED_OUT", dead_letter: true })
    await open("dead-letters?agent=b")
    await page.getByRole("button", { name: `Redrive ${expired.message_id}` }).click()
    await shows(page.getByRole("status"), `${expired.message_id} redriven to b: RECEIVED`)
    const timeline = await api(`/messages/${expired.message_id}/timeline`)
    expect(timeline.body.entries.map((entry: { event: { _tag: string } }) => entry.event._tag)).toContain("MessageRedriven")
  })

  it("approves a held tool call, and the caller waiting on it goes on", async () => {
    // The caller, as an agent in process would: dispatch, wait for a human, dispatch again with the approval.
    const caller = server.run(Effect.gen(function*() {
      const first = yield* server.gateway.dispatchTool({ agent_id: "a", tool: "deploy", args: { version: 7 } })
      if (first._tag !== "AwaitingApproval") return first._tag
      const answered = yield* server.gateway.awaitApproval(first.approval_id)
      if (answered.status !== "approved") return answered.status
      return (yield* server.gateway.dispatchTool({ agent_id: "a", tool: "deploy", args: { version: 7 }, approval_id: first.approval_id }))._tag
    }))
    await open("approvals")
    const card = page.getByRole("listitem").filter({ hasText: "tool_call deploy" })
    await shows(card)
    await shows(card.getByRole("timer"), "left")
    await card.getByRole("button", { name: "Approve" }).click()
    expect(await caller).toBe("Dispatched")
    await shows(page.getByText("Nothing waits for a human."))
  })

  it("suspends an agent after a confirmation with a reason", async () => {
    await open("agents?agent=b")
    await page.getByRole("complementary", { name: "Agent b" }).getByRole("button", { name: "Suspend" }).click()
    const dialog = page.getByRole("dialog", { name: "Suspend b?" })
    await dialog.getByLabel("Reason (required)").fill("looks stuck")
    await dialog.getByRole("button", { name: "Suspend" }).click()
    await shows(page.getByRole("status"), "b: suspended")
    expect((await api("/kill-switch")).body.suspended).toEqual([{ agent_id: "b", reason: "looks stuck" }])
    await shows(grid("Agents").locator('[data-key="b"]'), "suspended")
  })

  it("scrubs the replay to an offset, and steps back one record", async () => {
    const head = (await api("/log/head")).body.offset as number
    const sent = await send("a", "c", {}, keys.a)
    await open("replay")
    await shows(page.getByTestId("replay-offset"), /State at offset \d+/)
    const offset = page.getByRole("spinbutton", { name: "Offset" })
    await offset.fill(String(sent.offset))
    await offset.press("Enter")
    await shows(page.getByTestId("replay-offset"), new RegExp(`^State at offset ${sent.offset}$`))
    await shows(page.locator(".record"), `${sent.message_id} DATA from a accepted for c`)
    await page.getByRole("button", { name: "One record back" }).click()
    await shows(page.getByTestId("replay-offset"), new RegExp(`^State at offset ${sent.offset - 1}$`))
    expect(sent.offset).toBeGreaterThan(head)
  })

  it("verifies the audit chain, and reports a store tampered with at the record edited", async () => {
    await open("audit")
    await page.getByRole("button", { name: "Verify the chain" }).click()
    await shows(page.getByTestId("audit-verdict"), /The chain is valid: \d+ records/)

    const entries = (await api("/audit?limit=10")).body.entries as Array<{ offset: number }>
    expect(entries.length).toBeGreaterThan(2)
    const target = entries[1].offset
    // A hand with a SQLite shell rewrites one record's reason in the file the server writes.
    const db = new Database(server.filename)
    try {
      const { payload } = db.prepare("SELECT payload FROM switchboard_events WHERE log_offset = ?").get(target) as { payload: string }
      const event = JSON.parse(payload)
      db.prepare("UPDATE switchboard_events SET payload = ? WHERE log_offset = ?").run(
        JSON.stringify({ ...event, record: { ...event.record, reason: "nothing to see here" } }),
        target
      )
    } finally {
      db.close()
    }
    await page.getByRole("button", { name: "Verify the chain" }).click()
    await shows(page.getByTestId("audit-verdict"), `The chain breaks at the record at offset ${target}`)
    await page.getByRole("button", { name: "Show that record" }).click()
    await shows(grid("Audit records").locator(`[data-offset="${target}"]`), "chain breaks here")
  })
})
