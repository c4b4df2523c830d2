import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Registry } from "../src/services/Registry.js"
import { routerLayer, sendTo } from "./support/router.js"

const ids = (agents: ReadonlyArray<{ readonly descriptor: { readonly agent_id: string } }>) =>
  agents.map((agent) => agent.descriptor.agent_id)

describe("Registry lineage and topology", () => {
  it.scoped("derives depth from the lineage, answers lineage, subtree and team queries", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* registry.register({ agent_id: "root", name: "root", team_id: "core" })
      const child = yield* registry.register({
        agent_id: "child",
        name: "child",
        parent_agent_id: "root",
        team_id: "core",
        delegation_reason: "split the work",
        spawned_by_tool: "spawn"
      })
      expect(child.descriptor).toMatchObject({ depth: 1, enforcement_mode: "enforce", delegation_reason: "split the work" })
      yield* registry.register({ agent_id: "grandchild", name: "gc", parent_agent_id: "child" })
      yield* registry.register({ agent_id: "sibling", name: "s", parent_agent_id: "root", team_id: "other" })
      expect(ids(yield* registry.lineage("grandchild"))).toEqual(["grandchild", "child", "root"])
      expect(ids(yield* registry.subtree("root"))).toEqual(["root", "child", "sibling", "grandchild"])
      expect(ids(yield* registry.team("core"))).toEqual(["root", "child"])
      expect((yield* registry.edges("child")).map((e) => [e.from, e.edge_type, e.to])).toEqual([
        ["root", "delegates_to", "child"],
        ["child", "delegates_to", "grandchild"]
      ])
      expect(yield* registry.lineage("nobody")).toEqual([])
    }).pipe(Effect.provide(routerLayer())))

  it.scoped("refuses a registration that reaches the depth limit, closes a cycle, or names an unknown parent", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* registry.register({ agent_id: "a0", name: "a0" })
      for (let i = 1; i < 3; i++) yield* registry.register({ agent_id: `a${i}`, name: `a${i}`, parent_agent_id: `a${i - 1}` })
      const tooDeep = yield* Effect.flip(registry.register({ agent_id: "a3", name: "a3", parent_agent_id: "a2" }))
      expect(tooDeep).toMatchObject({ _tag: "PermissionDenied", retryable: false })
      expect(tooDeep.message).toMatch(/depth 3 of a3 reaches the limit 3/)
      const cycle = yield* Effect.flip(registry.register({ agent_id: "a0", name: "a0", parent_agent_id: "a2" }))
      expect(cycle.message).toMatch(/cycle: a0 → a2 → a1 → a0/)
      expect(yield* Effect.flip(registry.register({ agent_id: "x", name: "x", parent_agent_id: "ghost" }))).toMatchObject({
        _tag: "ValidationError"
      })
      expect(yield* Effect.flip(registry.register({ agent_id: "y", name: "y", parent_agent_id: "a0", depth: 5 }))).toMatchObject({
        _tag: "ValidationError"
      })
      expect(ids(yield* registry.list)).toEqual(["a0", "a1", "a2"])
    }).pipe(Effect.provide(routerLayer({ maxDelegationDepth: 3 }))))

  it.scoped("an agent with descendants cannot re-register at another depth: they would move past the limit unchecked", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* registry.register({ agent_id: "d0", name: "d0" })
      yield* registry.register({ agent_id: "d1", name: "d1", parent_agent_id: "d0" })
      yield* registry.register({ agent_id: "a", name: "a" })
      yield* registry.register({ agent_id: "b", name: "b", parent_agent_id: "a" })
      // Moving `a` under d1 would put `b` at depth 3, the limit.
      const moved = yield* Effect.flip(registry.register({ agent_id: "a", name: "a", parent_agent_id: "d1" }))
      expect(moved).toMatchObject({ _tag: "PermissionDenied" })
      expect(moved.message).toMatch(/re-registering a at depth 2 \(it is at 0\) would move its 1 descendant/)
      // At the same depth it may register again (a restart), and so may a leaf anywhere that fits.
      expect((yield* registry.register({ agent_id: "a", name: "a again" })).descriptor).toMatchObject({ depth: 0 })
      expect((yield* registry.register({ agent_id: "b", name: "b", parent_agent_id: "d1" })).descriptor).toMatchObject({ depth: 2 })
      expect(ids(yield* registry.lineage("b"))).toEqual(["b", "d1", "d0"])
      // Deregistered, it still has its registered descendants below it.
      yield* registry.register({ agent_id: "c", name: "c", parent_agent_id: "a" })
      yield* registry.deregister({ agent_id: "a", reason: "gone" })
      expect(yield* Effect.flip(registry.register({ agent_id: "a", name: "a", parent_agent_id: "d1" }))).toMatchObject({
        _tag: "PermissionDenied"
      })
      // So it is through a deregistered agent in between: e → f (gone) → g.
      yield* registry.register({ agent_id: "e", name: "e" })
      yield* registry.register({ agent_id: "f", name: "f", parent_agent_id: "e" })
      yield* registry.register({ agent_id: "g", name: "g", parent_agent_id: "f" })
      yield* registry.deregister({ agent_id: "f", reason: "gone" })
      expect(yield* Effect.flip(registry.register({ agent_id: "e", name: "e", parent_agent_id: "d0" }))).toMatchObject({
        _tag: "PermissionDenied"
      })
    }).pipe(Effect.provide(routerLayer({ maxDelegationDepth: 3 }))))

  it.scoped("records a messages edge the first time one agent messages another, and edges added by hand", () =>
    Effect.gen(function*() {
      const registry = yield* Registry
      yield* registry.register({ agent_id: "a", name: "a" })
      yield* registry.register({ agent_id: "b", name: "b" })
      yield* sendTo("b", { producer_id: "a", payload: 1 })
      yield* sendTo("b", { producer_id: "a", payload: 2 })
      yield* registry.addEdge({ from: "a", to: "web.search", edge_type: "calls" })
      yield* registry.addEdge({ from: "a", to: "web.search", edge_type: "calls" })
      expect((yield* registry.edges("a")).map((e) => [e.from, e.edge_type, e.to])).toEqual([
        ["a", "messages", "b"],
        ["a", "calls", "web.search"]
      ])
    }).pipe(Effect.provide(routerLayer())))
})
