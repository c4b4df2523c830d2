/**
 * Wildcard patterns for tool names, hosts, models and ids: `*` matches any run
 * of characters (also an empty one); every other character matches itself.
 * `*.example.com` matches `a.example.com` and `a.b.example.com`, not
 * `example.com`.
 *
 * Matching splits the pattern at its stars once and then only uses
 * `startsWith`, `endsWith` and `indexOf`: no regular expression, so no
 * escaping mistakes and no catastrophic backtracking on patterns like `a*a*a*b`.
 */

export type GlobMatcher = (value: string) => boolean

const matchAll: GlobMatcher = () => true

/** A matcher for `pattern`, built once and reused for every value. */
export const compileGlob = (pattern: string): GlobMatcher => {
  if (!pattern.includes("*")) return (value) => value === pattern
  const parts = pattern.split("*")
  const prefix = parts[0]!
  const suffix = parts[parts.length - 1]!
  const middle = parts.slice(1, -1).filter((part) => part !== "")
  const fixedLength = prefix.length + suffix.length
  if (middle.length === 0) {
    if (fixedLength === 0) return matchAll
    return (value) => value.length >= fixedLength && value.startsWith(prefix) && value.endsWith(suffix)
  }
  const minimumLength = middle.reduce((length, part) => length + part.length, fixedLength)
  return (value) => {
    if (value.length < minimumLength || !value.startsWith(prefix) || !value.endsWith(suffix)) return false
    // Taking each middle part at its leftmost place leaves the most room for the rest,
    // so a greedy scan finds a match whenever there is one.
    const end = value.length - suffix.length
    let from = prefix.length
    for (const part of middle) {
      const at = value.indexOf(part, from)
      if (at === -1 || at + part.length > end) return false
      from = at + part.length
    }
    return true
  }
}

/** Whether `value` matches `pattern`. Compiles the pattern on every call: keep `compileGlob` for hot paths. */
export const globMatch = (pattern: string, value: string): boolean => compileGlob(pattern)(value)

/** How many characters of `pattern` are not wildcards: the more, the more specific the pattern. */
export const globSpecificity = (pattern: string): number => pattern.replaceAll("*", "").length

/**
 * Host names compare case-insensitively and without the root's trailing dot
 * (`API.Example.com.` is `api.example.com`).
 */
export const normalizeHost = (host: string): string => {
  const lower = host.toLowerCase()
  return lower.endsWith(".") ? lower.slice(0, -1) : lower
}

/** A matcher for a host pattern, applied to the normalized host. */
export const compileHostGlob = (pattern: string): GlobMatcher => {
  const matches = compileGlob(normalizeHost(pattern))
  return (host) => matches(normalizeHost(host))
}
