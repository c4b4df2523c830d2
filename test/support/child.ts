/**
 * What the crash tests share: a script of `test/support` run in a child
 * process (through tsx), read line by line, and killed with SIGKILL when the
 * test has seen enough.
 */
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

/**
 * Runs `script` (relative to the project root) with `args` and hands each
 * complete line of its output to `onLine`, which answers whether to kill the
 * child now. Resolves once the child died of that kill; rejects when it exits
 * on its own, or when no kill came within `timeoutMs`. `name` and `progress`
 * say whose failure it was and how far it got.
 */
export const runUntilKilled = (options: {
  readonly script: string
  readonly args: ReadonlyArray<string>
  readonly timeoutMs: number
  readonly onLine: (line: string) => boolean
  readonly name: string
  readonly progress: () => string
}) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", options.script, ...options.args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    let killed = false
    const kill = () => {
      if (!killed) {
        killed = true
        child.kill("SIGKILL")
      }
    }
    const guard = setTimeout(() => {
      kill()
      reject(new Error(`${options.name}: ${options.progress()} after ${options.timeoutMs / 1_000} s; stderr: ${stderr}`))
    }, options.timeoutMs)
    child.stderr.on("data", (chunk) => (stderr += chunk))
    // readline hands over complete lines only: a line cut by the kill is never read.
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (options.onLine(line)) kill()
    })
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(guard)
      if (signal === "SIGKILL" && killed) resolve()
      else reject(new Error(`${options.name} exited on its own (code ${code}, signal ${signal}); stderr: ${stderr}`))
    })
  })

export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Starts `script` (relative to the project root) with `args`, stdin open for
 * the test to write to. `lines` hands over each complete line of its output;
 * `finished` resolves once it exits, with all it printed, and rejects when it
 * runs longer than `timeoutMs` (it is then killed).
 */
export const start = (options: {
  readonly script: string
  readonly args: ReadonlyArray<string>
  readonly timeoutMs: number
  readonly onLine?: (line: string) => void
}) => {
  const child = spawn(process.execPath, ["--import", "tsx", options.script, ...options.args], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stderr.on("data", (chunk) => (stderr += chunk))
  createInterface({ input: child.stdout }).on("line", (line) => {
    stdout += line + "\n"
    options.onLine?.(line)
  })
  const finished = new Promise<Finished>((resolve, reject) => {
    const guard = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${options.script} ran longer than ${options.timeoutMs / 1_000} s; stderr: ${stderr}`))
    }, options.timeoutMs)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(guard)
      resolve({ code, stdout, stderr })
    })
  })
  return { child, finished }
}

/**
 * The crash writer (test/support/crash-writer.ts) appending to the SQLite
 * store `filename` from `fibers` fibers (default 20) in the background, while
 * a test does its part. `acknowledged(n)` resolves once it has acknowledged
 * `n` appends; `kill()` kills it with SIGKILL and resolves once it died of it.
 * Both reject when it exits on its own.
 */
export const writeInBackground = (options: {
  readonly filename: string
  readonly run: string
  readonly fibers?: number
  readonly timeoutMs: number
}) => {
  let acks = 0
  let kill = false
  let waiting: Array<{ readonly n: number; readonly resolve: () => void }> = []
  const died = runUntilKilled({
    script: "test/support/crash-writer.ts",
    args: [options.filename, options.run, String(options.fibers ?? 20)],
    timeoutMs: options.timeoutMs,
    onLine: () => {
      acks++
      for (const waiter of waiting) if (waiter.n <= acks) waiter.resolve()
      waiting = waiting.filter((waiter) => waiter.n > acks)
      return kill
    },
    name: "the writer",
    progress: () => `acknowledged only ${acks} appends`
  })
  return {
    acknowledged: (n: number) =>
      Promise.race([new Promise<void>((resolve) => (n <= acks ? resolve() : waiting.push({ n, resolve }))), died]),
    kill: () => {
      kill = true
      return died
    }
  }
}
