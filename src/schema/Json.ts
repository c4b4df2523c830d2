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
  message: () => "must be JSON data: null, booleans, finite numbers, strings, arrays and plain objects",
  arbitrary: () => (fc) => fc.jsonValue({ noUnicodeString: false }).map((value) => value as Json)
})
