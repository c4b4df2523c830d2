/**
 * What every bench shares: its module shape, its flags, and how it reports.
 */
import { Console, Duration, Effect } from "effect"

export interface Bench {
  readonly main: (args: ReadonlyArray<string>) => Effect.Effect<void, unknown>
}

export const hasFlag = (args: ReadonlyArray<string>, name: string) => args.includes(`--${name}`)

/** A positive integer from `--name N`, `--name=N` or the environment variable `env`. */
export const intOption = (args: ReadonlyArray<string>, name: string, env: string): number | undefined => {
  const at = args.indexOf(`--${name}`)
  const text = at >= 0
    ? args[at + 1]
    : args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3) ?? process.env[env]
  if (text === undefined) return undefined
  const value = Number(text.replaceAll("_", ""))
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`--${name} (${env}) must be a positive integer, got ${text}`)
  }
  return value
}

/** Times `effect` and gives its rate: `count` units over the time it took. */
export const rate = <E, R>(count: number, effect: Effect.Effect<unknown, E, R>) =>
  Effect.map(Effect.timed(effect), ([duration]) => count / Duration.toSeconds(duration))

const number = (value: number) => Math.round(value).toLocaleString("en-US")

export interface Comparison {
  readonly label: string
  readonly figure: number
  readonly baseline: number
  /** The least ratio to the baseline that meets the target, if there is one. */
  readonly target?: number
  readonly unit?: string
}

export const ratioOf = ({ baseline, figure }: Comparison) => Math.round((figure / baseline) * 1000) / 1000

/** One human line: figure, baseline, ratio, and whether it meets its target. */
export const printComparison = (comparison: Comparison) => {
  const unit = comparison.unit ?? "events/s"
  const ratio = ratioOf(comparison)
  const verdict = comparison.target === undefined
    ? ""
    : ratio >= comparison.target
    ? `  (target >= ${comparison.target}: met)`
    : `  (target >= ${comparison.target}: MISSED)`
  return Console.log(
    `${comparison.label.padEnd(20)} ${number(comparison.figure).padStart(11)} ${unit}  baseline ${
      number(comparison.baseline).padStart(11)
    } ${unit}  ratio ${ratio.toFixed(3)}${verdict}`
  )
}

/** The bench's last line: one JSON object. */
export const printResult = (result: {
  readonly bench: string
  readonly figures: Record<string, number>
  readonly ratios: Record<string, number>
}) => Console.log(JSON.stringify(result))

export { number as formatNumber }

/** Milliseconds to three decimals, for the JSON line. */
export const ms = (value: number) => Math.round(value * 1_000) / 1_000
export const perS = (value: number) => `${number(value).padStart(9)} msgs/s`
export const latencies = (f: { readonly p50Ms: number; readonly p99Ms: number }) =>
  `p50 ${f.p50Ms.toFixed(3).padStart(7)} ms, p99 ${f.p99Ms.toFixed(3).padStart(8)} ms`
export const ratio = (figure: number, baseline: number) => Math.round((figure / baseline) * 1000) / 1000

/** `--name VALUE` or `--name=VALUE`. */
export const textOption = (args: ReadonlyArray<string>, name: string): string | undefined => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 ? args[at + 1] : args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
}
