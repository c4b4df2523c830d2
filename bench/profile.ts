/**
 * Where a CPU profile's time went, as text: the share of the samples each
 * function takes on its own (self), the share each is on the stack for
 * (total, a function counted once per sample however deep it recurses), and
 * the share of each package (self time by where the code comes from: a
 * package in node_modules, Switchboard's own `src/`, node's internals, or
 * V8 itself: garbage collection, idle, compiled code without a script).
 */
import { readFile } from "node:fs/promises"

interface Frame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: Frame
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
}

const short = (url: string) => {
  const at = url.lastIndexOf("node_modules/")
  if (at >= 0) return url.slice(at + "node_modules/".length)
  const bench = url.indexOf("/.bench/")
  if (bench >= 0) return url.slice(bench + "/.bench/".length)
  return url.replace(/^file:\/\//, "")
}

const keyOf = ({ functionName, lineNumber, url }: Frame) =>
  `${functionName === "" ? "(anonymous)" : functionName} ${url === "" ? "" : `${short(url)}:${lineNumber + 1}`}`.trim()

/** The package a frame's code belongs to. */
export const packageOf = ({ functionName, url }: Frame) => {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)"
  if (url.startsWith("node:")) return "node:" + url.slice(5).split("/")[0]
  const at = url.lastIndexOf("node_modules/")
  if (at >= 0) {
    const parts = url.slice(at + "node_modules/".length).split("/")
    return parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]
  }
  const src = url.indexOf("/src/")
  if (src >= 0) return "switchboard " + url.slice(src + 1).split("/").slice(0, 2).join("/")
  return short(url)
}

const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1).padStart(5)}%`

/** The profile in `file`, summarized: its `top` functions by self and by total time, and every package's share. */
export const summarize = async (file: string, top: number) => {
  const profile = JSON.parse(await readFile(file, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  const packages = new Map<string, number>()
  let whole = 0
  let idle = 0
  // Each sample counts once, whatever the time since the one before: on a
  // busy machine the thread is off the CPU between some samples, and a time
  // weight would charge that wait to whatever runs next.
  profile.samples.forEach((id) => {
    const dt = 1
    const node = byId.get(id)!
    whole += dt
    if (node.callFrame.functionName === "(idle)") idle += dt
    const key = keyOf(node.callFrame)
    self.set(key, (self.get(key) ?? 0) + dt)
    const pkg = packageOf(node.callFrame)
    packages.set(pkg, (packages.get(pkg) ?? 0) + dt)
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame
      if (frame.functionName === "(root)") continue
      seen.add(keyOf(frame))
    }
    for (const key of seen) total.set(key, (total.get(key) ?? 0) + dt)
  })
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1])
  const busy = whole - idle
  const lines = [
    `  profile: ${whole} samples, ${pct(busy, whole)} busy (shares below are of all samples)`,
    `  self time, top ${top}:`,
    ...sorted(self).slice(0, top).map(([key, t]) => `    ${pct(t, whole)}  ${key}`),
    `  total time (on the stack), top ${top}:`,
    ...sorted(total).slice(0, top).map(([key, t]) => `    ${pct(t, whole)}  ${key}`),
    `  self time by package:`,
    ...sorted(packages).slice(0, 20).map(([key, t]) => `    ${pct(t, whole)}  ${key}`)
  ]
  return lines.join("\n")
}
