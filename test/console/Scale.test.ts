/**
 * The console with a large fleet: 1,000 agents in a lineage and 100,000
 * messages in the log (a SQLite store). Lists stay virtualized (a few dozen
 * rows in the document whatever their length), the log is read a page at a
 * time as one scrolls, and a message's timeline, the audit and the replay
 * answer without reading the world into the browser.
 */
import { Effect } from "effect"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildEnvelope } from "../../src/model/Envelopes.js"
import { keys, keysFile } from "../server/wire.js"
import { consoleDirectory, launch, noBrowser, type Running, serve, shows } from "./harness.js"

const agentCount = 1_000
const messageCount = 100_000

describe.skipIf(noBrowser !== undefined)("the console at scale", () => {
  let server: Running
  let browser: Browser
  let page: Page
  let lastMessage = ""

  beforeAll(async () => {
    server = await serve({ keys: keysFile, directory: await consoleDirectory(), runtime: { livenessTimeoutMs: undefined, mailboxCapacity: 1_000 } })
    await server.run(Effect.gen(function*() {
      for (let i = 0; i < agentCount; i++) {
        // A tree: each agent past the first ten was spawned by one of the agents before it.
        yield* server.registry.register({
          agent_id: `agent-${i}`,
          name: `Agent ${i}`,
          parent_agent_id: i < 10 ? undefined : `agent-${Math.floor(i / 10) - 1}`,
          team_id: `team-${i % 25}`
        })
      }
      const now = Date.now()
      for (let batch = 0; batch < messageCount / 1000; batch++) {
        const sends = Array.from({ length: 1000 }, (_, i) => {
          const n = batch * 1000 + i
          return {
            to: `agent-${(n * 7) % agentCount}`,
            envelope: buildEnvelope({ producer_id: `agent-${n % agentCount}`, payload: { n } }, `m-${n}`, now)
          }
        })
        const results = yield* server.router.sendMany(sends)
        if (results.some((result) => result._tag === "Left")) throw new Error("a send was refused")
      }
      lastMessage = `m-${messageCount - 1}`
    }))
    browser = await launch()
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    await page.goto(`${server.url}/console#/agents`)
    await page.getByLabel("API key").fill(keys.operator)
    await page.getByRole("button", { name: "Sign in" }).click()
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  const rowsInDocument = (label: string) => page.getByRole("grid", { name: label }).getByRole("row").count()

  it("lists 1,000 agents with a few dozen rows in the document", async () => {
    await shows(page.getByText(`${agentCount} agents`))
    expect(await rowsInDocument("Agents")).toBeLessThan(60)
    // The keyboard reaches the last one; the list renders it alone with its neighbours.
    await page.getByRole("grid", { name: "Agents" }).focus()
    await page.keyboard.press("End")
    await shows(page.getByRole("grid", { name: "Agents" }).locator('[data-key="agent-999"]'))
    expect(await rowsInDocument("Agents")).toBeLessThan(60)
  })

  it("draws the lineage of 1,000 agents as a list, and a graph only around one", async () => {
    await page.goto(`${server.url}/console#/topology`)
    await shows(page.getByText("1000 agents are too many to draw at once"))
    await page.goto(`${server.url}/console#/topology?agent=agent-5`)
    await shows(page.getByRole("group", { name: "Topology graph" }).getByRole("button", { name: "agent agent-60" }))
    expect(await rowsInDocument("Lineage tree")).toBeLessThan(60)
  })

  it("reads the log of 100,000 messages a page at a time, newest first", async () => {
    await page.goto(`${server.url}/console#/messages`)
    const grid = page.getByRole("grid", { name: "Log records, newest first" })
    await shows(grid.getByText(`${lastMessage} DATA from agent-999 accepted for agent-993`))
    await shows(page.getByText("200 records shown"))
    await grid.focus()
    await page.keyboard.press("End")
    await shows(page.getByText("700 records shown"))
    expect(await rowsInDocument("Log records, newest first")).toBeLessThan(80)
  })

  it("shows one message's timeline, and the state at an offset", async () => {
    await page.goto(`${server.url}/console#/messages?message=m-50000`)
    await shows(page.getByRole("list", { name: "Timeline" }), "m-50000 DATA from agent-0 accepted for agent-0")
    // The fifth message's acceptance: the state there holds the first five, and not one more.
    const timeline = await fetch(`${server.url}/messages/m-4/timeline`, { headers: { authorization: `Bearer ${keys.operator}` } })
    const at = ((await timeline.json()) as { entries: Array<{ offset: number }> }).entries[0].offset
    await page.goto(`${server.url}/console#/replay?at=${at}`)
    await shows(page.getByTestId("replay-offset"), new RegExp(`^State at offset ${at}$`))
    await shows(page.getByTestId("replay-stages"), /^5 RECEIVED$/)
  })
})
