/**
 * Reading a policy: what reading and compiling one costs at the size limit
 * (256 KiB) and at a sixteenth of it, for shapes that once cost time growing
 * with the square of the text (many keys in one mapping, many rules, one long
 * condition). The baseline is the `yaml` package alone parsing the same text,
 * in the same run: the ratio says what Switchboard adds on top, and the
 * growth of each figure from 1/16 to the whole says whether it stays linear
 * (about 16; quadratic work would be about 256).
 *
 * Flags: `--rounds N` (or BENCH_ROUNDS), the best of N runs per figure, default 5.
 */
import { Console, Effect } from "effect"
import { parseAllDocuments } from "yaml"
import { compilePolicy } from "../src/model/Policy.js"
import { maxPolicyBytes, parsePolicy } from "../src/schema/Policy.js"
import { formatNumber, intOption, printResult } from "./report.js"

const filled = (head: string, line: (i: number) => string, bytes: number) => {
  const lines = [head]
  for (let i = 0, size = head.length; size + 40 < bytes; i++) size += lines[lines.push(line(i)) - 1]!.length + 1
  return lines.join("\n") + "\n"
}

const shapes: Record<string, (bytes: number) => string> = {
  tool_rules: (bytes) =>
    filled("id: p\nscope: { kind: global }\ntools:", (i) => `  t${i}: {allow: true, requires_approval_if: "a > ${i}"}`, bytes),
  message_rules: (bytes) =>
    filled("id: p\nscope: { kind: global }\nmessages:", (i) => `  - { from: { team: "t${i}*" }, to: "*", allow: true }`, bytes),
  one_long_condition: (bytes) =>
    filled(
      "id: p\nscope: { kind: global }\ntools:\n  pay:\n    allow: true\n    requires_approval_if: >-\n      a == 0",
      (i) => `      OR args.x${i} == 'v${i}'`,
      bytes
    )
}

/** The best of `rounds` runs of `work`, in ms. */
const best = (rounds: number, work: () => void) => {
  let fastest = Infinity
  for (let round = 0; round < rounds; round++) {
    const start = performance.now()
    work()
    fastest = Math.min(fastest, performance.now() - start)
  }
  return fastest
}

const read = (text: string) => {
  const parsed = parsePolicy(text)
  if (parsed._tag === "Left") throw new Error(`the bench's policy does not read: ${parsed.left.message}`)
  compilePolicy(parsed.right)
}

export const main = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const rounds = intOption(args, "rounds", "BENCH_ROUNDS") ?? 5
    yield* Console.log(`policy: read and compile, best of ${rounds}; baseline: the yaml package parsing the same text`)
    const figures: Record<string, number> = {}
    const ratios: Record<string, number> = {}
    for (const [shape, make] of Object.entries(shapes)) {
      const whole = make(maxPolicyBytes)
      const part = make(maxPolicyBytes / 16)
      read(whole)
      const wholeMs = best(rounds, () => read(whole))
      const partMs = best(rounds, () => read(part))
      const yamlMs = best(rounds, () => parseAllDocuments(whole, { uniqueKeys: false }))
      figures[`${shape}_ms`] = Math.round(wholeMs * 100) / 100
      figures[`${shape}_yaml_ms`] = Math.round(yamlMs * 100) / 100
      ratios[`${shape}_vs_yaml`] = Math.round((wholeMs / yamlMs) * 1000) / 1000
      ratios[`${shape}_growth_x16`] = Math.round((wholeMs / partMs) * 10) / 10
      yield* Console.log(
        `${shape.padEnd(20)} ${formatNumber(wholeMs).padStart(6)} ms at 256 KiB  baseline yaml ${
          formatNumber(yamlMs).padStart(6)
        } ms  ratio ${(wholeMs / yamlMs).toFixed(2)}  growth from 1/16: ${(wholeMs / partMs).toFixed(1)}x`
      )
    }
    yield* printResult({ bench: "policy", figures, ratios })
  })
