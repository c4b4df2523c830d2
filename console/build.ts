/**
 * Builds the console (`console/src`) into `console/dist`, which the server
 * serves at `/console` (`src/server/Console.ts`). Run by `npm run
 * build:console`, and by `prepare` on every `npm ci` and `npm install`, so a
 * fresh clone serves the console with no extra step. Without Vite (an
 * install that left out the dev dependencies) it says so and builds nothing:
 * the server then answers `/console` with a page that says how to build it.
 *
 * Preact's JSX is compiled by esbuild, as Vite does by itself: no plugin.
 */
import { fileURLToPath } from "node:url"

export const root = fileURLToPath(new URL(".", import.meta.url))
export const defaultOutDir = fileURLToPath(new URL("./dist", import.meta.url))

/** Builds into `outDir` (default `console/dist`); quiet but for warnings. */
export const build = async (outDir: string = defaultOutDir): Promise<boolean> => {
  let vite: typeof import("vite")
  try {
    vite = await import("vite")
  } catch {
    console.warn("switchboard: Vite is not installed (dev dependencies left out?): the console is not built")
    return false
  }
  await vite.build({
    root,
    base: "/console/",
    configFile: false,
    logLevel: "warn",
    publicDir: false,
    esbuild: { jsx: "automatic", jsxImportSource: "preact" },
    build: { outDir, emptyOutDir: true, target: "es2022", sourcemap: false, reportCompressedSize: false }
  })
  return true
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await build(process.argv[2])
}
