/**
 * What the tests that run `switchboard serve` in a child process share: the
 * server bundled once with esbuild (started through tsx, each restart would
 * spend several times as long transpiling), started on a store and a port,
 * killed with SIGKILL; and every child killed when the file ends, however it
 * ends. esbuild is the one tsx depends on.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { cpSync } from "node:fs"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { expect } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))

const children = new Set<ChildProcess>()
export const track = (child: ChildProcess) => {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}
export const killAll = () => {
  for (const child of children) child.kill("SIGKILL")
}

export const exitOf = (child: ChildProcess) =>
  new Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode })
    else child.once("exit", (code, signal) => resolve({ code, signal }))
  })

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

/**
 * The server as one ES module; better-sqlite3 (native) stays where it is
 * installed, and SW4RM's `.proto` files are copied beside the bundle, where
 * the gRPC edge looks for them.
 */
export const bundleServer = async (dir: string) => {
  const outfile = join(dir, "switchboard.mjs")
  const requireHere = createRequire(join(root, "package.json"))
  const sqlite = requireHere.resolve("better-sqlite3")
  await build({
    entryPoints: [join(root, "src/bin.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "error",
    // The CommonJS modules in the bundle require Node's own modules.
    banner: {
      js: `import { createRequire as __switchboardRequire } from "node:module"; ` +
        `const require = __switchboardRequire(${JSON.stringify(join(root, "package.json"))});`
    },
    plugins: [{
      name: "native-sqlite",
      setup: (builder) => {
        builder.onResolve({ filter: /^better-sqlite3$/ }, () => ({ path: sqlite, external: true }))
      }
    }]
  })
  cpSync(join(root, "proto"), join(dir, "proto"), { recursive: true })
  return outfile
}

export interface Server {
  readonly child: ChildProcess
  readonly output: () => string
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * `switchboard serve` on the store (and `extra` options), answering /health;
 * fails with what it printed if it never does.
 */
export const startServer = async (
  command: ReadonlyArray<string>,
  store: string,
  port: number,
  extra: ReadonlyArray<string> = []
): Promise<Server> => {
  const child = track(spawn(process.execPath, [...command, "serve", "--store", `sqlite:${store}`, "--port", String(port), ...extra], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"]
  }))
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000)
  }
  child.stdout!.on("data", keep)
  child.stderr!.on("data", keep)
  const url = `http://127.0.0.1:${port}`
  const guard = Date.now() + 45_000
  while (true) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the server exited (code ${child.exitCode}, signal ${child.signalCode}) before answering /health:\n${output}`)
    }
    if (Date.now() > guard) {
      child.kill("SIGKILL")
      throw new Error(`the server did not answer /health within 45 s:\n${output}`)
    }
    const healthy = await fetch(`${url}/health`).then((response) => response.ok, () => false)
    if (healthy) return { child, output: () => output }
    await sleep(50)
  }
}

export const killServer = async (server: Server) => {
  server.child.kill("SIGKILL")
  const { signal } = await exitOf(server.child)
  expect(signal, `the server died of ${signal}, not of the kill:\n${server.output()}`).toBe("SIGKILL")
}
