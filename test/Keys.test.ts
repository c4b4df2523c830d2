/**
 * API keys: a created key authenticates as whom it was made for and nothing
 * else does; the keys file holds hashes only, is refused (and left alone)
 * when it does not decode, and loses no key to concurrent writers; the
 * command line shows the key once, alone on its last line.
 */
import { FileSystem } from "@effect/platform"
import { Command } from "@effect/cli"
import { NodeContext, NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Option, Redacted } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as KeysLive from "../src/layers/KeysLive.js"
import { hashKey, isKeyShaped, keyLength } from "../src/model/Keys.js"
import { InvalidKeysFile, KeysFileError, openKeyId } from "../src/schema/Keys.js"
import { keysCommand } from "../src/server/KeysCommand.js"
import { Keys } from "../src/services/Keys.js"
import { RandomBytes } from "../src/services/RandomBytes.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const keyPattern = /^sb_[A-Za-z0-9_-]{43}$/

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())

const authenticate = (file: string, token: string) =>
  Effect.flatMap(Keys, (keys) => keys.authenticate(token)).pipe(Effect.provide(KeysLive.layerFile(file)))

const loadError = (file: string) => Effect.flip(Effect.provide(Keys, KeysLive.layerFile(file)))

const listing = (dir: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readDirectory(dir))

const entry = (fields: Record<string, unknown>) => ({
  id: "k1",
  hash: `sha256:${"a".repeat(64)}`,
  role: "operator",
  created_at: "2025-01-01T00:00:00Z",
  ...fields
})
const fileOf = (...keys: ReadonlyArray<unknown>) => JSON.stringify({ version: 1, keys })

/** Texts that are not keys files, and the field each must be refused by. */
const malformed: ReadonlyArray<readonly [string, string, string]> = [
  ["an empty file", "", ""],
  ["not JSON", "{ version: 1 ", ""],
  ["an array", "[]", ""],
  ["another version", JSON.stringify({ version: 2, keys: [] }), "version"],
  ["no keys", JSON.stringify({ version: 1 }), "keys"],
  ["an agent key without agent_id", fileOf(entry({ role: "agent" })), "keys.0.agent_id"],
  ["an unknown role", fileOf(entry({ role: "admin" })), "keys.0.role"],
  ["a hash in upper case", fileOf(entry({ hash: `sha256:${"A".repeat(64)}` })), "keys.0.hash"],
  ["a bare hex hash", fileOf(entry({ hash: "a".repeat(64) })), "keys.0.hash"],
  ["a key in the clear", fileOf(entry({ key: `sb_${"A".repeat(43)}` })), "keys.0.key"],
  ["an operator key with an agent_id", fileOf(entry({ agent_id: "a" })), "keys.0.agent_id"],
  ["an empty agent_id", fileOf(entry({ role: "agent", agent_id: "" })), "keys.0.agent_id"],
  ["an id with a space", fileOf(entry({ id: "k 1" })), "keys.0.id"],
  ["a date that is not RFC 3339", fileOf(entry({ created_at: "yesterday" })), "keys.0.created_at"],
  ["a repeated id", fileOf(entry({}), entry({ hash: `sha256:${"b".repeat(64)}` })), "keys.1.id"],
  ["a repeated hash", fileOf(entry({}), entry({ id: "k2" })), "keys.1.hash"],
  ["input nested too deeply", `{"version":1,"keys":[${"[".repeat(5000)}${"]".repeat(5000)}]}`, "keys.0"]
]

it.layer(NodeFileSystem.layer)("Keys", (it) => {
  describe("a created key", () => {
    it.scoped("authenticates as the agent or the operator it was made for", () =>
      Effect.gen(function*() {
        const file = `${yield* tempDir}/keys.json`
        const agent = yield* KeysLive.createKey({ file, agent_id: "worker-1" })
        const operator = yield* KeysLive.createKey({ file, operator: true })
        expect(agent.createdFile).toBe(true)
        expect(operator.createdFile).toBe(false)
        expect(Redacted.value(agent.key)).toMatch(keyPattern)
        expect(Redacted.value(operator.key)).toMatch(keyPattern)

        expect(yield* authenticate(file, Redacted.value(agent.key))).toEqual(
          Option.some({ _tag: "Agent", agent_id: "worker-1", key_id: agent.entry.id })
        )
        expect(yield* authenticate(file, Redacted.value(operator.key))).toEqual(
          Option.some({ _tag: "Operator", key_id: operator.entry.id })
        )
        expect(yield* Effect.provide(Keys, KeysLive.layerFile(file)).pipe(Effect.map((keys) => keys.open))).toBe(false)
      }))

    it.scoped("is stored as its hash only, in a file only its owner can read", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const file = `${yield* tempDir}/keys.json`
        const created = yield* KeysLive.createKey({ file, agent_id: "worker-1" })
        const key = Redacted.value(created.key)
        const text = yield* fs.readFileString(file)
        expect(text).not.toContain(key)
        expect(text).not.toContain(key.slice(3))
        expect(JSON.parse(text)).toEqual({
          version: 1,
          keys: [{
            id: hashKey(key).slice(7, 19),
            hash: hashKey(key),
            role: "agent",
            agent_id: "worker-1",
            created_at: "1970-01-01T00:00:00.000Z"
          }]
        })
        expect((yield* fs.stat(file)).mode & 0o777).toBe(0o600)
        expect(String(created.key)).not.toContain(key)
      }))

    it.scoped("keeps the mode of an existing file, and leaves no temporary file behind", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDir
        const file = `${dir}/keys.json`
        yield* KeysLive.createKey({ file, operator: true })
        yield* fs.chmod(file, 0o640)
        yield* KeysLive.createKey({ file, agent_id: "a" })
        expect((yield* fs.stat(file)).mode & 0o777).toBe(0o640)
        expect(yield* listing(dir)).toEqual(["keys.json"])
      }))

    it.scoped("replaces the file a symbolic link points to, and keeps the link", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDir
        yield* KeysLive.createKey({ file: `${dir}/real.json`, operator: true })
        yield* fs.symlink(`${dir}/real.json`, `${dir}/link.json`)
        const created = yield* KeysLive.createKey({ file: `${dir}/link.json`, agent_id: "a" })
        expect(yield* fs.readLink(`${dir}/link.json`)).toBe(`${dir}/real.json`)
        expect(Option.isSome(yield* authenticate(`${dir}/real.json`, Redacted.value(created.key)))).toBe(true)
      }))

    it.scoped("comes from the RandomBytes service", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const make = (file: string) =>
          KeysLive.createKey({ file, operator: true }).pipe(
            Effect.map((created) => Redacted.value(created.key)),
            Effect.provide(RandomBytes.layerSeeded("seed"))
          )
        const first = yield* make(`${dir}/one.json`)
        expect(yield* make(`${dir}/two.json`)).toBe(first)
        expect(first).toMatch(keyPattern)
      }))
  })

  describe("a token that is not a key", () => {
    it.scoped("authenticates as nobody: wrong, empty, garbage, huge or nearly right", () =>
      Effect.gen(function*() {
        const file = `${yield* tempDir}/keys.json`
        const key = Redacted.value((yield* KeysLive.createKey({ file, operator: true })).key)
        const flipped = key.slice(0, -1) + (key.endsWith("A") ? "B" : "A")
        const keys = yield* Effect.provide(Keys, KeysLive.layerFile(file))
        const refused = [
          "",
          " ",
          "garbage",
          `sb_${"A".repeat(43)}`,
          flipped,
          key.slice(0, -1),
          `${key}A`,
          `${key}\n`,
          ` ${key}`,
          `Bearer ${key}`,
          key.toUpperCase(),
          key.slice(3),
          hashKey(key),
          hashKey(key).slice(7, 19),
          "x".repeat(10_000_000),
          `sb_${"é".repeat(43)}`,
          null as unknown as string,
          42 as unknown as string
        ]
        for (const token of refused) expect(yield* keys.authenticate(token)).toEqual(Option.none())
        expect(Option.isSome(yield* keys.authenticate(key))).toBe(true)
      }))

    it.effect("is the operator anyway when keys are open", () =>
      Effect.gen(function*() {
        const keys = yield* Keys
        expect(keys.open).toBe(true)
        for (const token of ["", "anything", `sb_${"A".repeat(43)}`]) {
          expect(yield* keys.authenticate(token)).toEqual(Option.some({ _tag: "Operator", key_id: openKeyId }))
        }
      }).pipe(Effect.provide(KeysLive.layerOpen)))
  })

  describe("a keys file that does not decode", () => {
    for (const [name, text, path] of malformed) {
      it.scoped(`is refused, naming the field, and left unchanged: ${name}`, () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDir
          const file = `${dir}/keys.json`
          yield* fs.writeFileString(file, text)

          const error = yield* loadError(file)
          expect(error).toBeInstanceOf(InvalidKeysFile)
          const invalid = error as InvalidKeysFile
          // A path through deep nesting goes on below `path`, clipped.
          expect(invalid.issues.some((issue) => issue.path === path || issue.path.startsWith(`${path}.`))).toBe(true)
          expect(invalid.message.startsWith(`invalid keys file ${file}: `)).toBe(true)
          expect(invalid.message.length).toBeLessThan(2_000)

          const refused = yield* Effect.flip(KeysLive.createKey({ file, operator: true }))
          expect(refused).toEqual(invalid)
          expect(yield* fs.readFileString(file)).toBe(text)
          expect(yield* listing(dir)).toEqual(["keys.json"])
        }))
    }

    it("is read without a throw, whatever the text", () =>
      fc.assert(
        fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((value) => JSON.stringify({ version: 1, keys: [value] }))), (text) => {
          const parsed = KeysLive.parseKeysFile("f", text)
          expect(Either.isLeft(parsed) ? parsed.left : parsed.right).toBeDefined()
        })
      ))
  })

  describe("a missing file", () => {
    it.scoped("fails the layer, saying how to make one", () =>
      Effect.gen(function*() {
        const file = `${yield* tempDir}/keys.json`
        const error = yield* loadError(file)
        expect(error).toBeInstanceOf(KeysFileError)
        expect(error.message).toContain("no such file")
        expect(error.message).toContain("switchboard keys create")
      }))

    it.scoped("in a missing directory is not made", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const error = yield* Effect.flip(KeysLive.createKey({ file: `${dir}/no/keys.json`, operator: true }))
        expect(error).toBeInstanceOf(KeysFileError)
        expect(error.message).toContain("no such directory")
      }))
  })

  it.scoped("an agent id that is not one is refused before anything is written", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      for (const agent_id of ["", "x".repeat(257)]) {
        const error = yield* Effect.flip(KeysLive.createKey({ file: `${dir}/keys.json`, agent_id }))
        expect(error._tag).toBe("ValidationError")
      }
      expect(yield* listing(dir)).toEqual([])
    }))

  it.scoped("concurrent creates lose no key", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = `${dir}/keys.json`
      const created = yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => KeysLive.createKey(i % 3 === 0 ? { file, operator: true } : { file, agent_id: `agent-${i}` }),
        { concurrency: "unbounded" }
      )
      const keys = yield* Effect.provide(Keys, KeysLive.layerFile(file))
      const principals = yield* Effect.forEach(created, (one) => keys.authenticate(Redacted.value(one.key)))
      expect(principals.every(Option.isSome)).toBe(true)
      expect(new Set(created.map((one) => one.entry.id)).size).toBe(30)
      expect(created.filter((one) => one.createdFile)).toHaveLength(1)
      expect(JSON.parse(yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file))).keys).toHaveLength(30)
      expect(yield* listing(dir)).toEqual(["keys.json"])
    }))
})

describe("the key's shape", () => {
  it("is sb_ and 43 base64url characters", () => {
    expect(keyLength).toBe(46)
    expect(isKeyShaped(`sb_${"A".repeat(43)}`)).toBe(true)
    expect(isKeyShaped(`sb_${"A".repeat(42)}=`)).toBe(false)
    expect(isKeyShaped(`sb_${"A".repeat(42)}+`)).toBe(false)
    expect(isKeyShaped(`SB_${"A".repeat(43)}`)).toBe(false)
  })
})

// ---------------------------------------------------------------------------
// The command line

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const run = (...args: ReadonlyArray<string>) =>
  new Promise<Run>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/bin.ts", "keys", "create", ...args], { cwd: root })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

const lines = (text: string) => text.split("\n").filter((line) => line !== "")

it.layer(NodeFileSystem.layer)("switchboard keys create", (it) => {
  it.scoped("prints what it did, then the key once, alone on the last line", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const file = `${yield* tempDir}/keys.json`
      const first = yield* Effect.promise(() => run("--keys", file, "--operator"))
      const second = yield* Effect.promise(() => run("--keys", file, "--agent", "worker-1"))
      for (const result of [first, second]) {
        expect(result).toMatchObject({ code: 0, stderr: "" })
        const out = lines(result.stdout)
        const key = out[out.length - 1]
        expect(key).toMatch(keyPattern)
        expect(result.stdout.split(key)).toHaveLength(2)
        expect(out.length).toBeLessThanOrEqual(3)
      }
      expect(first.stdout).toContain(`created ${file}`)
      expect(second.stdout).not.toContain(`created ${file}`)
      expect(second.stdout).toContain("worker-1")
      expect((yield* fs.stat(file)).mode & 0o777).toBe(0o600)

      const operatorKey = lines(first.stdout).at(-1)!
      const agentKey = lines(second.stdout).at(-1)!
      expect(yield* authenticate(file, operatorKey)).toMatchObject(Option.some({ _tag: "Operator" }))
      expect(yield* authenticate(file, agentKey)).toMatchObject(Option.some({ _tag: "Agent", agent_id: "worker-1" }))
    }))

  it.scoped("refuses a broken file in one line, without a key, and leaves it alone", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      const bad = `${dir}/bad.json`
      yield* fs.writeFileString(bad, fileOf(entry({ role: "admin" })))
      const result = yield* Effect.promise(() => run("--keys", bad, "--operator"))
      expect(result.code).not.toBe(0)
      expect(result.stdout).toBe("")
      expect(lines(result.stderr)).toEqual([
        `switchboard: invalid keys file ${bad}: keys.0.role: Expected "agent" | "operator", actual "admin"`
      ])
      expect(yield* listing(dir)).toEqual(["bad.json"])
      expect(yield* fs.readFileString(bad)).toBe(fileOf(entry({ role: "admin" })))
    }))

  // In this process: a child costs seconds, and what is checked is the command's own logic.
  const inProcess = Command.run(Command.make("switchboard").pipe(Command.withSubcommands([keysCommand])), {
    name: "switchboard",
    version: "0"
  })

  it.scoped("asks for exactly one role, and a valid agent id, before it writes anything", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = `${dir}/keys.json`
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [[], "invalid command line: give exactly one of --agent ID or --operator"],
        [["--agent", "a", "--operator"], "invalid command line: give exactly one of --agent ID or --operator"],
        [["--agent", ""], "invalid agent_id: must not be empty"]
      ]
      for (const [args, message] of cases) {
        const error = yield* Effect.flip(inProcess(["node", "switchboard", "keys", "create", "--keys", file, ...args]))
        expect(error).toMatchObject({ _tag: "ValidationError", message })
      }
      expect(yield* listing(dir)).toEqual([])
    }).pipe(Effect.provide(NodeContext.layer)))
})
