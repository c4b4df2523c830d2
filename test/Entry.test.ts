/**
 * The main entry (`src/index.ts`) must load wherever Effect does: nothing it
 * reaches, through any chain of imports, may need Node. Node-only parts live
 * behind `src/node.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const src = join(dirname(fileURLToPath(import.meta.url)), "../src")

/** Packages that need Node (or a native addon) to load. */
const nodeOnlyPackages = ["@effect/platform-node", "@effect/sql-sqlite-node", "@effect/sql-pg", "better-sqlite3", "pg"]

const isNodeOnly = (specifier: string) =>
  specifier.startsWith("node:") ||
  builtinModules.includes(specifier.split("/")[0]) ||
  nodeOnlyPackages.some((name) => specifier === name || specifier.startsWith(`${name}/`))

/** Every module specifier `file` imports or re-exports, statically or dynamically (type-only imports too: cheap to keep clean). */
const importsOf = (file: string) =>
  [...readFileSync(file, "utf8").matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g)].map((match) => match[1])

/** The packages reached from `entry`, with the first module that imports each. */
const packagesReached = (entry: string) => {
  const seen = new Set<string>()
  const packages = new Map<string, string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const specifier of importsOf(file)) {
      if (specifier.startsWith(".")) visit(join(dirname(file), specifier.replace(/\.js$/, ".ts")))
      else if (!packages.has(specifier)) packages.set(specifier, file.slice(src.length + 1))
    }
  }
  visit(join(src, entry))
  return packages
}

describe("the main entry", () => {
  it("reaches no Node-only module", () => {
    const reached = packagesReached("index.ts")
    expect(reached.size).toBeGreaterThan(0)
    expect([...reached].filter(([specifier]) => isNodeOnly(specifier)).map(([specifier, by]) => `${specifier} (from ${by})`))
      .toEqual([])
  })

  it("is told apart from the node entry, which does reach Node", () => {
    expect([...packagesReached("node.ts").keys()].some(isNodeOnly)).toBe(true)
  })
})
