/**
 * `switchboard keys create`: how an operator issues an API key.
 *
 *   switchboard keys create --keys FILE (--agent ID | --operator)
 *
 * The key is printed once, alone on the last line, so a script can take it
 * with `tail -n 1`; the file keeps only its hash, so it can never be shown
 * again. The lines before it say what was done, for the person at the
 * terminal.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect, Option, Redacted } from "effect"
import { createKey } from "../layers/KeysLive.js"
import { ValidationError } from "../schema/Errors.js"
import type { InvalidKeysFile, KeysFileError } from "../schema/Keys.js"

/** What `keys create` may fail with, each told in one line by the command line. */
export type KeysCommandError = ValidationError | InvalidKeysFile | KeysFileError

const create = Command.make(
  "create",
  {
    keys: Options.file("keys").pipe(Options.withDescription("the keys file (made, mode 0600, when missing)")),
    agent: Options.text("agent").pipe(Options.optional, Options.withDescription("a key that acts as this agent")),
    operator: Options.boolean("operator").pipe(Options.withDescription("a key that administers the runtime"))
  },
  ({ agent, keys, operator }) =>
    Effect.gen(function*() {
      if (Option.isSome(agent) === operator) {
        return yield* ValidationError.single("command line", "", "give exactly one of --agent ID or --operator")
      }
      const created = yield* createKey(Option.isSome(agent) ? { file: keys, agent_id: agent.value } : { file: keys, operator: true })
      const entry = created.entry
      if (created.createdFile) yield* Console.log(`created ${keys} (readable by its owner only)`)
      yield* Console.log(
        `added ${entry.role === "agent" ? `a key for agent ${entry.agent_id}` : "an operator key"}, id ${entry.id}, ` +
          `to ${keys}. It is shown this once; the file keeps only its hash:`
      )
      yield* Console.log(Redacted.value(created.key))
    })
).pipe(Command.withDescription("issue a new API key and add its hash to a keys file"))

export const keysCommand = Command.make("keys").pipe(
  Command.withDescription("manage the API keys of `switchboard serve`"),
  Command.withSubcommands([create])
)
