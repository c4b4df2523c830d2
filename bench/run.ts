/**
 * Runs one benchmark by name: `npm run bench -- <name> [flags]`.
 *
 * Each bench is a module exporting `main(args)`; it prints its figures, the
 * baseline each is compared with (measured in the same run), and, as its last
 * line, one JSON object. Adding a bench is one line in `benches`.
 *
 * The script compiles `src` and `bench` with tsc first (to `.bench/`) and runs
 * the output with node: what a user of the package runs is tsc's output, and a
 * loader such as tsx would add its own wrappers (`__name` around every
 * function) to every hot path measured.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import type { Bench } from "./report.js"

const benches: Record<string, () => Promise<Bench>> = {
  arcp: () => import("./arcp.js"),
  eventlog: () => import("./eventlog.js"),
  fold: () => import("./fold.js"),
  gateway: () => import("./gateway.js"),
  grpc: () => import("./grpc.js"),
  policy: () => import("./policy.js"),
  router: () => import("./router.js"),
  server: () => import("./server.js")
}

const [name, ...args] = process.argv.slice(2)
const load = name === undefined ? undefined : benches[name]

if (load === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join("|")}> [flags]`)
  process.exitCode = 2
} else {
  NodeRuntime.runMain(Effect.flatMap(Effect.promise(load), (bench) => bench.main(args)))
}
