/**
 * §3: "the lease is granted by the gateway (policy may narrow or refuse
 * it)": a submit whose lease the policy refuses is a job.error
 * PERMISSION_DENIED with a fresh job_id; one it narrows is accepted with the
 * narrowed lease. `switchboard serve --policy FILE` loads a global policy
 * (PROTOCOLS.md §2's YAML) that denies the tool `shell.exec` and allows
 * every other (an unlisted tool without a `*` rule is denied: the gateway
 * fails closed).
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { echo, JOB_ID, openSession, submit, useServer } from "./harness.js"

const policyFile = join(mkdtempSync(join(tmpdir(), "arcp-policy-")), "deny-shell.yaml")
writeFileSync(
  policyFile,
  `id: deny-shell
scope: { kind: global }
tools:
  "*": { allow: true }
  shell.exec: { allow: false }
`
)

const server = useServer({ serveArgs: ["--policy", policyFile] })

describe("the gateway's policy on a submit's lease", () => {
  it("a lease whose only tool the policy denies is job.error PERMISSION_DENIED with a fresh job_id", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, { agent: "echo", input: 1, lease_request: { "tool.call": ["shell.exec"] } })
    expect(submitted.answer.type).toBe("job.error")
    expect(submitted.answer.payload.code).toBe("PERMISSION_DENIED")
    expect(submitted.answer.payload.final_status).toBe("error")
    expect(submitted.answer.payload.retryable).toBe(false)
    expect(submitted.answer.job_id).toMatch(JOB_ID)
    expect(conn.violations).toEqual([])
  })

  it("a lease the policy narrows is accepted without the denied tool", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const submitted = await submit(conn, { agent: "echo", input: 1, lease_request: { "tool.call": ["shell.exec", "search.web"] } })
    expect(submitted.answer.type).toBe("job.accepted")
    expect(submitted.answer.payload.lease["tool.call"]).toEqual(["search.web"])
  })

  it("a lease the policy does not touch is granted as asked, and the job runs", async () => {
    const { conn } = await openSession(server(), { token: server().keys.alice })
    const job = await echo(conn, "fine", { lease_request: { "tool.call": ["search.web"], "fs.read": ["/data/**"] } })
    expect(job.answer.payload.lease).toEqual({ "tool.call": ["search.web"], "fs.read": ["/data/**"] })
    expect(job.terminal.payload.result).toBe("fine")
  })
})
