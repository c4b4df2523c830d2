/**
 * Topology: the lineage tree (who spawned whom, from each agent's
 * `parent_agent_id`) as an indented list of any size, and a graph, laid out
 * by dagre, of the typed edges (`GET /topology/edges`) and the lineage
 * around the selected agent: its ancestors, its subtree, its team and the
 * agents its edges reach. Without a selection, small topologies are drawn
 * whole.
 */
import { Graph, layout } from "@dagrejs/dagre"
import { useMemo } from "preact/hooks"
import { seg } from "../api.js"
import type { Edge, LogRecord } from "../types.js"
import { ErrorNote, Page, useLoad, useSession, VirtualList } from "../ui.js"
import { type AgentRow, useAgents } from "./Agents.js"
import type { ViewProps } from "./registry.js"

/** Past this many nodes a graph is no longer readable: draw a neighbourhood instead. */
const maxDrawn = 150

const topologyEvent = (record: LogRecord) =>
  record.event._tag === "TopologyEdgeAdded" || record.event._tag === "AgentRegistered" || record.event._tag === "AgentDeregistered"

interface TreeRow {
  readonly id: string
  readonly depth: number
  readonly children: number
}

/** The lineage as rows, depth first, each root in id order; a parent not registered counts as no parent. */
const treeOf = (rows: ReadonlyArray<AgentRow>): Array<TreeRow> => {
  const known = new Set(rows.map((row) => row.agent.descriptor.agent_id))
  const children = new Map<string, Array<string>>()
  const roots: Array<string> = []
  for (const row of rows) {
    const { agent_id, parent_agent_id } = row.agent.descriptor
    if (parent_agent_id === undefined || !known.has(parent_agent_id)) roots.push(agent_id)
    else children.set(parent_agent_id, [...(children.get(parent_agent_id) ?? []), agent_id])
  }
  const out: Array<TreeRow> = []
  const seen = new Set<string>()
  const stack = roots.sort().reverse().map((id) => ({ id, depth: 0 }))
  while (stack.length > 0) {
    const { id, depth } = stack.pop()!
    if (seen.has(id)) continue
    seen.add(id)
    const kids = (children.get(id) ?? []).sort()
    out.push({ id, depth, children: kids.length })
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ id: kids[i], depth: depth + 1 })
  }
  return out
}

/** The agents drawn around `selected`: its lineage up, its subtree down, its team, and its edges' other ends. */
const neighbourhood = (rows: ReadonlyArray<AgentRow>, edges: ReadonlyArray<Edge>, selected: string | undefined) => {
  const all = rows.map((row) => row.agent.descriptor.agent_id)
  if (selected === undefined) return all.length <= maxDrawn ? new Set(all) : undefined
  const byId = new Map(rows.map((row) => [row.agent.descriptor.agent_id, row.agent.descriptor]))
  const picked = new Set<string>([selected])
  for (let up = byId.get(selected)?.parent_agent_id; up !== undefined && !picked.has(up); up = byId.get(up)?.parent_agent_id) picked.add(up)
  const queue = [selected]
  while (queue.length > 0 && picked.size < maxDrawn) {
    const id = queue.shift()!
    for (const row of rows) {
      const d = row.agent.descriptor
      if (d.parent_agent_id === id && !picked.has(d.agent_id)) {
        picked.add(d.agent_id)
        queue.push(d.agent_id)
      }
    }
  }
  const team = byId.get(selected)?.team_id
  for (const row of rows) if (team !== undefined && row.agent.descriptor.team_id === team && picked.size < maxDrawn) picked.add(row.agent.descriptor.agent_id)
  for (const edge of edges) {
    if (picked.size >= maxDrawn) break
    if (edge.from === selected) picked.add(edge.to)
    if (edge.to === selected) picked.add(edge.from)
  }
  return picked
}

interface Drawn {
  readonly width: number
  readonly height: number
  readonly nodes: ReadonlyArray<{ id: string; x: number; y: number; width: number; height: number }>
  readonly links: ReadonlyArray<{
    key: string
    points: ReadonlyArray<{ x: number; y: number }>
    label: string
    /** Where dagre left room for the label. */
    at: { x: number; y: number }
    /** Only the lineage: drawn dashed. */
    lineage: boolean
  }>
}

/**
 * One arrow per pair of agents, labelled with every edge type between them
 * in that direction ("spawned" for the lineage): the registry records a
 * `delegates_to` and a `messages` edge beside most lineage, and three
 * arrows for one relation would bury the graph.
 */
const draw = (rows: ReadonlyArray<AgentRow>, edges: ReadonlyArray<Edge>, ids: ReadonlySet<string>): Drawn => {
  const pairs = new Map<string, { from: string; to: string; types: Array<string> }>()
  const relate = (from: string, to: string, type: string) => {
    if (!ids.has(from) || !ids.has(to) || from === to) return
    const key = `${from}\u0000${to}`
    const pair = pairs.get(key) ?? { from, to, types: [] }
    if (!pair.types.includes(type)) pair.types.push(type)
    pairs.set(key, pair)
  }
  for (const row of rows) {
    const { agent_id, parent_agent_id } = row.agent.descriptor
    if (parent_agent_id !== undefined) relate(parent_agent_id, agent_id, "spawned")
  }
  for (const edge of edges) relate(edge.from, edge.to, edge.edge_type)
  const graph = new Graph({ multigraph: false })
  graph.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 56, edgesep: 12, marginx: 12, marginy: 12 })
  graph.setDefaultEdgeLabel(() => ({}))
  for (const id of ids) graph.setNode(id, { width: Math.min(220, 24 + id.length * 7.5), height: 30 })
  for (const pair of pairs.values()) {
    const label = pair.types.join(" · ")
    graph.setEdge(pair.from, pair.to, { label, width: label.length * 6.2, height: 14, labelpos: "c" })
  }
  layout(graph)
  const size = graph.graph() as { width?: number; height?: number }
  return {
    width: size.width ?? 0,
    height: size.height ?? 0,
    nodes: graph.nodes().map((id) => {
      const node = graph.node(id) as { x: number; y: number; width: number; height: number }
      return { id, x: node.x, y: node.y, width: node.width, height: node.height }
    }),
    links: graph.edges().map((edge) => {
      const data = graph.edge(edge) as { points: Array<{ x: number; y: number }>; label: string; x: number; y: number }
      return { key: `${edge.v}>${edge.w}`, points: data.points, label: data.label, at: { x: data.x, y: data.y }, lineage: data.label === "spawned" }
    })
  }
}

const GraphView = ({ drawn, selected, onSelect }: { readonly drawn: Drawn; readonly selected: string | undefined; readonly onSelect: (id: string) => void }) => (
  <div class="graph" role="group" aria-label="Topology graph">
    <svg width={drawn.width} height={drawn.height} viewBox={`0 0 ${drawn.width} ${drawn.height}`}>
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
        </marker>
      </defs>
      {drawn.links.map((link) => (
        <g key={link.key} class={link.lineage ? "link lineage" : "link"}>
          <polyline points={link.points.map((p) => `${p.x},${p.y}`).join(" ")} marker-end="url(#arrow)" />
          <text x={link.at.x} y={link.at.y + 4} text-anchor="middle">{link.label}</text>
        </g>
      ))}
      {drawn.nodes.map((node) => (
        <g
          key={node.id}
          class={node.id === selected ? "node selected" : "node"}
          tabIndex={0}
          role="button"
          aria-label={`agent ${node.id}`}
          onClick={() => onSelect(node.id)}
          onKeyDown={(event) => event.key === "Enter" && onSelect(node.id)}
        >
          <rect x={node.x - node.width / 2} y={node.y - node.height / 2} width={node.width} height={node.height} rx={6} />
          <text x={node.x} y={node.y + 4} text-anchor="middle">{node.id}</text>
        </g>
      ))}
    </svg>
  </div>
)

export const TopologyView = ({ params }: ViewProps) => {
  const { api, caller, go } = useSession()
  const agents = useAgents()
  const loadedEdges = useLoad(() => api.get<Array<Edge>>("/topology/edges"), [api], { when: topologyEvent, every: caller.role === "agent" ? 5000 : undefined })
  const rows = agents.data?.rows ?? []
  const own = caller.agent_id
  const edges = (loadedEdges.data ?? []).filter((edge) => own === undefined || edge.from === own || edge.to === own)
  const selected = params.get("agent") ?? own
  const tree = useMemo(() => treeOf(rows), [agents.data])
  const ids = useMemo(() => neighbourhood(rows, edges, selected), [agents.data, loadedEdges.data, selected])
  const drawn = useMemo(() => (ids === undefined || ids.size === 0 ? undefined : draw(rows, edges, ids)), [ids])
  const select = (id: string) => go(`topology?agent=${seg(id)}`)
  const team = rows.find((row) => row.agent.descriptor.agent_id === selected)?.agent.descriptor.team_id
  return (
    <Page title="Topology">
      <ErrorNote error={agents.error ?? loadedEdges.error} />
      <div class="split">
        <section class="card narrow" aria-labelledby="tree-title">
          <h2 id="tree-title">Lineage ({tree.length})</h2>
          <VirtualList
            label="Lineage tree"
            items={tree}
            rowHeight={26}
            keyOf={(row) => row.id}
            selected={selected}
            onActivate={(row) => select(row.id)}
            row={(row) => (
              <div class="tree-row" style={{ paddingLeft: `${row.depth * 16 + 4}px` }}>
                <span class="mono">{row.depth > 0 ? "└ " : ""}{row.id}</span>
                {row.children > 0 && <span class="muted"> ({row.children})</span>}
              </div>
            )}
          />
        </section>
        <section class="card wide" aria-labelledby="graph-title">
          <h2 id="graph-title">{selected === undefined ? "Graph" : <>Around <span class="mono">{selected}</span></>}</h2>
          <p class="legend muted">Arrows are labelled with their edge types; "spawned" is the lineage, dashed when it is the only relation.</p>
          {drawn !== undefined
            ? <GraphView drawn={drawn} selected={selected} onSelect={select} />
            : <p class="muted">{rows.length} agents are too many to draw at once: select one to draw its lineage, subtree, team and edges.</p>}
          {selected !== undefined && (
            <div class="grid">
              <div>
                <h3>Team {team ?? "—"}</h3>
                <p class="mono">{team === undefined ? "no team" : rows.filter((row) => row.agent.descriptor.team_id === team).map((row) => row.agent.descriptor.agent_id).join(", ")}</p>
              </div>
              <div>
                <h3>Edges</h3>
                <ul class="plain">
                  {edges.filter((edge) => edge.from === selected || edge.to === selected).slice(0, 200).map((edge) => (
                    <li key={`${edge.from}>${edge.to}>${edge.edge_type}`} class="mono">{edge.from} —{edge.edge_type}→ {edge.to}</li>
                  ))}
                </ul>
              </div>
            </div>
          )}
        </section>
      </div>
    </Page>
  )
}
