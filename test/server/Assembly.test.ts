/**
 * The four routes Agent Assembly's Python client (`GatewayClient`) calls,
 * with the exact bodies, statuses and failures of PROTOCOLS.md §2: register
 * (empty body, every field, 400, 403 depth and cycle, 409 killed), policy
 * check (tool:, network:, llm: and bare names; 404 unknown agent), topology
 * edges (201 `{ id }`, 400 bad type or ids) and dispatch_tool (200 with the
 * secrets put in, 422 unknown placeholder, 403 denied by policy), over a
 * real socket, with keys: the client's key is its agent's.
 */
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { expect } from "vitest"
import type { RuntimeOptions } from "../../src/schema/Config.js"
import { request, start } from "./harness.js"
import { expectInvalid, expectProblem, keys, keysFile } from "./wire.js"

const SECRET = "sk-live-assembly-4242"

/** Tools, hosts and models for every kind of decision. */
const policy = `
id: assembly
scope: { kind: global }
tools:
  "*": { allow: false }
  http.get: { allow: true }
  deploy: { allow: true, requires_approval_if: "tool == 'deploy'" }
  email.send: { allow: true, redact: ["args.body"] }
network: { allow: ["*.example.com"] }
llm: { allow_models: ["claude-*"] }
`

const server = (runtime: RuntimeOptions = {}) =>
  Effect.gen(function*() {
    const started = yield* start({ keys: keysFile, secrets: { API_KEY: SECRET }, runtime })
    const url = started.url
    const as = (key: string) => ({
      post: (path: string, body?: unknown) => request(`${url}${path}`, { method: "POST", body, key }),
      raw: (path: string, raw: string) => request(`${url}${path}`, { method: "POST", raw, key }),
      get: (path: string) => request(`${url}${path}`, { key })
    })
    const operator = as(keys.operator)
    expect((yield* operator.post("/policies", { yaml: policy })).status).toBe(200)
    return { ...started, operator, a: as(keys.a), b: as(keys.b) }
  })

describe("POST /agents/{agent_id}/register", () => {
  it.scoped("with no body, an empty body or {}, is a plain registration: 200 with agent_id, depth and enforcement_mode", () =>
    Effect.gen(function*() {
      const { a, operator, url } = yield* server()
      // As the client sends it with no fields: no body at all, no content type.
      const bare = yield* Effect.promise(() =>
        fetch(`${url}/agents/a/register`, { method: "POST", headers: { authorization: `Bearer ${keys.a}` } })
          .then(async (response) => ({ status: response.status, body: await response.json() }))
      )
      expect(bare).toEqual({
        status: 200,
        body: { agent_id: "a", depth: 0, enforcement_mode: "enforce", available: true, registered_at: expect.any(Number) }
      })
      expect(yield* a.raw("/agents/a/register", "")).toMatchObject({ status: 200, body: { agent_id: "a", depth: 0 } })
      expect(yield* a.post("/agents/a/register", {})).toMatchObject({ status: 200, body: { agent_id: "a", depth: 0 } })
      expect(yield* a.raw("/agents/a/register", "null")).toMatchObject({ status: 200, body: { agent_id: "a", depth: 0 } })
      // Every field null, as a Python client sends its defaults: still a plain registration.
      const nulls = yield* operator.post("/agents/n/register", {
        parent_agent_id: null,
        team_id: null,
        delegation_reason: null,
        spawned_by_tool: null,
        depth: null,
        enforcement_mode: null
      })
      expect(nulls).toMatchObject({ status: 200, body: { agent_id: "n", depth: 0, enforcement_mode: "enforce" } })
      // The registry knows it, under its id as name.
      expect(yield* operator.get("/agents/a")).toMatchObject({ status: 200, body: { descriptor: { agent_id: "a", name: "a" } } })
    }))

  it.scoped("with every field: 200 describing the agent with its lineage, and the mode applies", () =>
    Effect.gen(function*() {
      const { operator } = yield* server()
      yield* operator.post("/agents/root/register", { team_id: "research" })
      const child = yield* operator.post("/agents/child/register", {
        parent_agent_id: "root",
        team_id: "research",
        delegation_reason: "summarise the findings",
        spawned_by_tool: "spawn_agent",
        depth: 1,
        enforcement_mode: "observe"
      })
      expect(child).toEqual({
        status: 200,
        type: expect.stringMatching(/^application\/json/),
        headers: expect.anything(),
        body: {
          agent_id: "child",
          depth: 1,
          enforcement_mode: "observe",
          parent_agent_id: "root",
          team_id: "research",
          delegation_reason: "summarise the findings",
          spawned_by_tool: "spawn_agent",
          available: true,
          registered_at: expect.any(Number)
        }
      })
      expect((yield* operator.get("/agents/child/lineage")).body.map((agent: any) => agent.descriptor.agent_id)).toEqual(["child", "root"])
      expect((yield* operator.get("/teams/research/agents")).body.map((agent: any) => agent.descriptor.agent_id).sort()).toEqual(["child", "root"])
      // observe: a tool the policy denies is allowed, as a dry run.
      expect(yield* operator.post("/agents/child/policy/check", { action: "shell.exec" })).toMatchObject({ status: 200, body: { decision: "allow" } })
      expect(yield* operator.post("/agents/root/policy/check", { action: "shell.exec" })).toMatchObject({ status: 200, body: { decision: "deny" } })
    }))

  it.scoped("keeps what the agent registered before (name, capabilities): Agent Assembly only adds lineage and a mode", () =>
    Effect.gen(function*() {
      const { a } = yield* server()
      yield* a.post("/agents", { agent_id: "a", name: "Agent A", capabilities: ["search"] })
      expect((yield* a.post("/agents/a/register", { team_id: "t1" })).status).toBe(200)
      expect(yield* a.get("/agents/a")).toMatchObject({
        status: 200,
        body: { descriptor: { agent_id: "a", name: "Agent A", capabilities: ["search"], team_id: "t1" } }
      })
    }))

  it.scoped("400 for a bad body, naming the field", () =>
    Effect.gen(function*() {
      const { operator } = yield* server()
      expectInvalid(yield* operator.post("/agents/x/register", { depth: "two" }), "depth")
      expectInvalid(yield* operator.post("/agents/x/register", { depth: -1 }), "depth")
      expectInvalid(yield* operator.post("/agents/x/register", { enforcement_mode: "bogus" }), "enforcement_mode")
      expectInvalid(yield* operator.post("/agents/x/register", { team_id: 7 }), "team_id")
      expectInvalid(yield* operator.post("/agents/x/register", { parent_agent_id: "nobody" }), "parent_agent_id")
      // A depth the lineage contradicts: the registry gives the depth, the caller's is checked.
      expectInvalid(yield* operator.post("/agents/x/register", { depth: 3 }), "depth")
      expectProblem(yield* operator.raw("/agents/x/register", "[]"), 400, "VALIDATION_ERROR")
      expectProblem(yield* operator.raw("/agents/x/register", '{"depth":'), 400, "VALIDATION_ERROR")
      expect((yield* operator.get("/agents/x")).status).toBe(404)
    }))

  it.scoped("403 past the delegation depth, and for a registration that would close a cycle", () =>
    Effect.gen(function*() {
      const { operator } = yield* server({ maxDelegationDepth: 3 })
      yield* operator.post("/agents/d0/register", {})
      expect((yield* operator.post("/agents/d1/register", { parent_agent_id: "d0" })).body.depth).toBe(1)
      expect((yield* operator.post("/agents/d2/register", { parent_agent_id: "d1" })).body.depth).toBe(2)
      const tooDeep = yield* operator.post("/agents/d3/register", { parent_agent_id: "d2" })
      expectProblem(tooDeep, 403, "PERMISSION_DENIED")
      expect(tooDeep.body).toMatchObject({ retryable: false, reason: expect.stringContaining("depth") })
      // d0 under d2 would make d0 its own ancestor.
      const cycle = yield* operator.post("/agents/d0/register", { parent_agent_id: "d2" })
      expectProblem(cycle, 403, "PERMISSION_DENIED")
      expect(cycle.body.reason).toContain("cycle")
      expect((yield* operator.get("/agents/d3")).status).toBe(404)
      expect((yield* operator.get("/agents/d0/lineage")).body.map((agent: any) => agent.descriptor.agent_id)).toEqual(["d0"])
    }))

  it.scoped("409 for a killed agent, here and on POST /agents: PERMISSION_DENIED, not retryable", () =>
    Effect.gen(function*() {
      const { a, operator } = yield* server()
      yield* a.post("/agents/a/register", {})
      expect((yield* operator.post("/agents/a/kill", { reason: "compromised" })).status).toBe(204)
      const again = yield* a.post("/agents/a/register", {})
      expectProblem(again, 409, "PERMISSION_DENIED")
      expect(again.body).toMatchObject({ _tag: "AgentKilled", agent_id: "a", retryable: false })
      const native = yield* a.post("/agents", { agent_id: "a", name: "A" })
      expectProblem(native, 409, "PERMISSION_DENIED")
      expect(yield* operator.get("/agents/a")).toMatchObject({ status: 200, body: { available: false } })
    }))
})

describe("POST /agents/{agent_id}/policy/check", () => {
  it.scoped("decides tool:, network:, llm: and bare names: 200 with decision, reason, rule and approval_id", () =>
    Effect.gen(function*() {
      const { a } = yield* server()
      yield* a.post("/agents/a/register", {})
      const check = (action: string) => Effect.map(a.post("/agents/a/policy/check", { action }), (answer) => {
        expect(answer.status).toBe(200)
        // Exactly the client's fields, nothing of ours.
        expect(Object.keys(answer.body).filter((key) => !["decision", "reason", "rule", "approval_id"].includes(key))).toEqual([])
        expect(answer.body).toMatchObject({ reason: expect.any(String), rule: expect.any(String) })
        return answer.body
      })
      expect(yield* check("http.get")).toMatchObject({ decision: "allow", rule: "policy assembly: tools.http.get" })
      expect(yield* check("tool:http.get")).toMatchObject({ decision: "allow", rule: "policy assembly: tools.http.get" })
      expect(yield* check("tool:shell.exec")).toMatchObject({ decision: "deny" })
      expect(yield* check("shell.exec")).toMatchObject({ decision: "deny" })
      expect(yield* check("tool:email.send")).toMatchObject({ decision: "redact" })
      const pending = yield* check("tool:deploy")
      expect(pending).toMatchObject({ decision: "pending", approval_id: expect.any(String) })
      expect(yield* check("network:api.example.com")).toMatchObject({ decision: "allow" })
      expect(yield* check("network:evil.test")).toMatchObject({ decision: "deny" })
      expect(yield* check("llm:claude-3-opus")).toMatchObject({ decision: "allow" })
      expect(yield* check("llm:gpt-4o")).toMatchObject({ decision: "deny" })
      // An unknown kind is a tool of that whole name: no rule but `*`, so denied.
      expect(yield* check("vault:read")).toMatchObject({ decision: "deny" })
      expect((yield* check("http.get")).approval_id).toBeUndefined()
    }))

  it.scoped("404 for an unknown agent, 400 for a missing, empty or non-string action", () =>
    Effect.gen(function*() {
      const { operator } = yield* server()
      const unknown = yield* operator.post("/agents/nobody/policy/check", { action: "http.get" })
      expectProblem(unknown, 404, "NO_ROUTE")
      yield* operator.post("/agents/a/register", {})
      expectInvalid(yield* operator.post("/agents/a/policy/check", {}), "action")
      expectInvalid(yield* operator.post("/agents/a/policy/check", { action: "" }), "action")
      expectInvalid(yield* operator.post("/agents/a/policy/check", { action: 7 }), "action")
      expectInvalid(yield* operator.post("/agents/a/policy/check", { action: "x".repeat(513) }), "action")
    }))
})

describe("POST /topology/edges", () => {
  it.scoped("201 with an id, the same for the same edge; the edge is in the topology", () =>
    Effect.gen(function*() {
      const { a } = yield* server()
      yield* a.post("/agents/a/register", {})
      const edge = { source_agent_id: "a", target_agent_id: "b", edge_type: "calls", metadata_json: JSON.stringify({ via: "http" }) }
      const first = yield* a.post("/topology/edges", edge)
      expect(first).toMatchObject({ status: 201, body: { id: expect.stringMatching(/^[0-9a-f]{32}$/) } })
      expect(Object.keys(first.body)).toEqual(["id"])
      expect((yield* a.post("/topology/edges", edge)).body).toEqual(first.body)
      const other = yield* a.post("/topology/edges", { ...edge, edge_type: "reads", metadata_json: undefined })
      expect(other.status).toBe(201)
      expect(other.body.id).not.toBe(first.body.id)
      expect((yield* a.get("/agents/a/edges")).body).toEqual(expect.arrayContaining([
        expect.objectContaining({ from: "a", to: "b", edge_type: "calls" }),
        expect.objectContaining({ from: "a", to: "b", edge_type: "reads" })
      ]))
    }))

  it.scoped("400 for a bad type, bad ids or metadata_json that is no JSON string", () =>
    Effect.gen(function*() {
      const { operator } = yield* server()
      const edge = { source_agent_id: "a", target_agent_id: "b", edge_type: "calls" }
      expectInvalid(yield* operator.post("/topology/edges", { ...edge, edge_type: "befriends" }), "edge_type")
      expectInvalid(yield* operator.post("/topology/edges", { ...edge, source_agent_id: "" }), "source_agent_id")
      expectInvalid(yield* operator.post("/topology/edges", { ...edge, target_agent_id: "x".repeat(300) }), "target_agent_id")
      expectInvalid(yield* operator.post("/topology/edges", { source_agent_id: "a", edge_type: "calls" }), "target_agent_id")
      expectInvalid(yield* operator.post("/topology/edges", { ...edge, metadata_json: "{not json" }), "metadata_json")
      expectInvalid(yield* operator.post("/topology/edges", { ...edge, metadata_json: { via: "http" } }), "metadata_json")
      expect((yield* operator.get("/agents/a/edges")).body).toEqual([])
    }))
})

describe("POST /dispatch_tool", () => {
  it.scoped("200 with the args' placeholders resolved and the names put in; the acting agent is the key's", () =>
    Effect.gen(function*() {
      const { a, operator } = yield* server()
      yield* a.post("/agents/a/register", {})
      const args = {
        url: "https://api.example.com/v1",
        headers: { authorization: "Bearer ${API_KEY}" },
        retries: 3,
        tags: ["${API_KEY}", "plain", null, true],
        note: "not a placeholder: $API_KEY, ${lower}"
      }
      const answer = yield* a.post("/dispatch_tool", { tool: "http.get", args })
      expect(answer).toMatchObject({ status: 200 })
      expect(answer.body).toEqual({
        resolved_args: {
          url: "https://api.example.com/v1",
          headers: { authorization: `Bearer ${SECRET}` },
          retries: 3,
          tags: [SECRET, "plain", null, true],
          note: "not a placeholder: $API_KEY, ${lower}"
        },
        names_substituted: ["API_KEY"]
      })
      // The audit says who called and what, in the placeholder form only.
      const audit = yield* operator.get("/audit?agent_id=a")
      expect(JSON.stringify(audit.body)).not.toContain(SECRET)
      expect(audit.body.entries).toEqual(expect.arrayContaining([expect.objectContaining({ record: expect.objectContaining({ agent_id: "a", decision: "allow" }) })]))
    }))

  it.scoped("422 Unknown placeholder: ${NAME} for a name the store does not hold; 403 when the policy denies", () =>
    Effect.gen(function*() {
      const { a } = yield* server()
      yield* a.post("/agents/a/register", {})
      const unknown = yield* a.post("/dispatch_tool", { tool: "http.get", args: { token: "${NOPE}", key: "${API_KEY}" } })
      expectProblem(unknown, 422, "VALIDATION_ERROR")
      expect(unknown.body).toMatchObject({ detail: "Unknown placeholder: ${NOPE}", names: ["NOPE"], retryable: false })
      expect(JSON.stringify(unknown.body)).not.toContain(SECRET)
      const denied = yield* a.post("/dispatch_tool", { tool: "shell.exec", args: { cmd: "rm -rf /" } })
      expectProblem(denied, 403, "PERMISSION_DENIED")
      expect(denied.body.retryable).toBe(false)
    }))

  it.scoped("202 pending when a human must approve; approved, the same call goes through with the approval's id", () =>
    Effect.gen(function*() {
      const { a, operator } = yield* server()
      yield* a.post("/agents/a/register", {})
      const call = { tool: "deploy", args: { target: "prod", token: "${API_KEY}" } }
      const pending = yield* a.post("/dispatch_tool", call)
      expect(pending).toMatchObject({ status: 202, body: { decision: "pending", approval_id: expect.any(String), reason: expect.any(String) } })
      const approval_id = pending.body.approval_id
      // Not before a human said yes.
      expectProblem(yield* a.post("/dispatch_tool", { ...call, approval_id }), 403, "PERMISSION_DENIED")
      expect((yield* operator.post(`/approvals/${approval_id}/approve`, { by: "alice" })).status).toBe(200)
      expect(yield* a.post("/dispatch_tool", { ...call, approval_id })).toMatchObject({
        status: 200,
        body: { resolved_args: { target: "prod", token: SECRET }, names_substituted: ["API_KEY"] }
      })
    }))

  it.scoped("another agent's name is refused (403); an operator names the agent, and must (400 without agent_id)", () =>
    Effect.gen(function*() {
      const { a, operator } = yield* server()
      yield* a.post("/agents/a/register", {})
      expectProblem(yield* a.post("/dispatch_tool", { tool: "http.get", args: {}, agent_id: "b" }), 403, "PERMISSION_DENIED")
      expect(yield* operator.post("/dispatch_tool", { tool: "http.get", args: { k: "${API_KEY}" }, agent_id: "a" })).toMatchObject({
        status: 200,
        body: { resolved_args: { k: SECRET } }
      })
      expectInvalid(yield* operator.post("/dispatch_tool", { tool: "http.get", args: {} }), "agent_id")
      expectInvalid(yield* a.post("/dispatch_tool", { args: {} }), "tool")
      expectInvalid(yield* a.post("/dispatch_tool", { tool: "", args: {} }), "tool")
    }))
})
