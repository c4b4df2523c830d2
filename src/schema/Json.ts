/**
 * JSON values: what can be stored in the log and read back unchanged. Input
 * from outside that ends up in an event (a tool call's args) is checked
 * against it at the edge, so nothing reaches the log that JSON would quietly
 * change: undefined, NaN or Infinity, a Date, a Map, a class instance (which
 * a structural check would pass as an empty record).
 */
import { Schema } from "effect"

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

export const isJson = (value: unknown): value is Json => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(value)
    case "object": {
      if (value === null) return true
      if (Array.isArray(value)) return value.every(isJson)
      const prototype = Object.getPrototypeOf(value)
      return (prototype === Object.prototype || prototype === null) && Object.values(value).every(isJson)
    }
    default:
      return false
  }
}

export const Json: Schema.Schema<Json> = Schema.declare(isJson, {
  identifier: "Json",
  description: "any JSON value",
  jsonSchema: { anyOf: [{ type: "null" }, { type: "boolean" }, { type: "number" }, { type: "string" }, { type: "array" }, { type: "object" }] },
  message: () => "must be JSON data: null, booleans, finite numbers, strings, arrays and plain objects",
  arbitrary: () => (fc) => fc.jsonValue({ noUnicodeString: false }).map((value) => value as Json)
})

/**
 * A copy of JSON data, as the log will give it back: `-0` becomes `0` (JSON
 * writes both as `0`). Input from outside is copied at the edge, so that a
 * caller who changes its object afterwards changes nothing the runtime
 * decided on, and the live state equals its replay.
 */
export const copyJson = (value: Json): Json => {
  if (typeof value === "number") return value === 0 ? 0 : value
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) return value.map(copyJson)
  // Defined, not assigned: a key `__proto__` stays a key.
  return Object.fromEntries(
    Object.keys(value).map((key) => [key, copyJson((value as { readonly [key: string]: Json })[key])])
  )
}
