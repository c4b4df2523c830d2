/**
 * Lease rules (ARCP, PROTOCOLS.md §3): may a lease touch a resource, and may
 * a lease be delegated from another.
 *
 * Lease globs (`leaseGlobMatch`), one function for every namespace, in two
 * syntaxes chosen by the namespace (`globSyntaxOf`):
 *
 * - `"path"` (fs.read, fs.write): `*` matches any run of characters except
 *   `/` (within one path segment); `**` (or more stars) matches any run,
 *   `/` included. So `/data/*` matches `/data/a` but not `/data/a/b`;
 *   `/data/**` matches both and `/data/` too, but not `/data`, and
 *   `/a/**\/b` needs at least `/a//b` (there is no "zero directories" rule).
 * - `"flat"` (net.fetch, tool.call, agent.delegate, cost.budget, model.use):
 *   any run of stars matches any run of characters. `*.example.com` matches
 *   `api.example.com` and `a.b.example.com`, not `example.com`.
 *
 * Every other character, `?` and `[` included, matches only itself; there is
 * no escape, so a literal `*` in a resource is matched only by a wildcard.
 * Matching is case-sensitive: callers normalise hosts (lowercase) first.
 * Matching is linear in pattern × resource (no backtracking blow-up).
 *
 * fs resources must be normalised: a path with a `.` or `..` segment is
 * denied whatever the lease says, so `/data/../etc/passwd` never passes as
 * `/data/**`.
 */
import { Either } from "effect"
import { LeaseExpired, LeaseSubsetViolation, PermissionDenied, ValidationError } from "../schema/Errors.js"
import { LeaseGranted } from "../schema/GatewayEvents.js"
import { type Lease, type LeaseNamespace, leaseNamespaces } from "../schema/Lease.js"
import { auditor } from "./Governance.js"
import { accept, type Decision, refuse, type RuntimeState } from "./State.js"

export type GlobSyntax = "path" | "flat"

export const globSyntaxOf = (namespace: LeaseNamespace): GlobSyntax =>
  namespace === "fs.read" || namespace === "fs.write" ? "path" : "flat"

// A pattern is a sequence of tokens: a UTF-16 code unit (≥ 0) matching only
// itself, or one of two wildcards.
const SEGMENT = -1 // any run without `/`
const ANY = -2 // any run
const SLASH = 0x2f

const tokenize = (pattern: string, syntax: GlobSyntax): Array<number> => {
  const tokens: Array<number> = []
  let i = 0
  while (i < pattern.length) {
    if (pattern.charCodeAt(i) !== 0x2a) {
      tokens.push(pattern.charCodeAt(i++))
      continue
    }
    let stars = 0
    while (i < pattern.length && pattern.charCodeAt(i) === 0x2a) {
      stars++
      i++
    }
    tokens.push(syntax === "path" && stars === 1 ? SEGMENT : ANY)
  }
  return tokens
}

const literal = (text: string): Array<number> => {
  const tokens = new Array<number>(text.length)
  for (let i = 0; i < text.length; i++) tokens[i] = text.charCodeAt(i)
  return tokens
}

/**
 * Does `outer` cover every string `inner` can stand for? Both are token
 * sequences; `inner` may hold wildcards. The same table serves matching
 * (`inner` all literals, where it is exact) and the subset test (where it is
 * sound but not complete). `covers[j]` holds for outer[i..] against inner[j..].
 */
const covers = (outer: ReadonlyArray<number>, inner: ReadonlyArray<number>): boolean => {
  const n = inner.length
  let next = new Uint8Array(n + 1)
  next[n] = 1
  for (let i = outer.length - 1; i >= 0; i--) {
    const token = outer[i]
    const current = new Uint8Array(n + 1)
    if (token >= 0) {
      for (let j = 0; j < n; j++) current[j] = inner[j] === token ? next[j + 1] : 0
    } else {
      current[n] = next[n]
      for (let j = n - 1; j >= 0; j--) {
        const consumable = token === ANY || inner[j] === SEGMENT || (inner[j] >= 0 && inner[j] !== SLASH)
        current[j] = next[j] || (consumable ? current[j + 1] : 0)
      }
    }
    next = current
  }
  return next[0] === 1
}

/** Does lease glob `pattern` match `resource`? See the module comment for the syntax. */
export const leaseGlobMatch = (pattern: string, resource: string, syntax: GlobSyntax = "flat"): boolean =>
  pattern.includes("*") ? covers(tokenize(pattern, syntax), literal(resource)) : pattern === resource

/**
 * Is every resource `child` matches also matched by `parent`? Sound: when it
 * says yes, that holds for every resource. Conservative: a parent wildcard may
 * absorb a child's characters and wildcards only where it could absorb any
 * string they stand for (`*` absorbs `*` and characters other than `/`; `**`
 * absorbs anything); a literal absorbs only the same literal, never a
 * wildcard. Some true subsets are therefore refused, e.g. path glob `**\/*`
 * does not cover `**\/**` although both match exactly the paths holding a `/`.
 */
export const leaseGlobCovers = (parent: string, child: string, syntax: GlobSyntax = "flat"): boolean =>
  covers(tokenize(parent, syntax), tokenize(child, syntax))

const hasDotSegment = (path: string): boolean => path.split("/").some((segment) => segment === "." || segment === "..")

const isExpired = (lease: Lease, now: number): boolean =>
  // Written as "not before" so that a NaN expiry counts as expired
  lease.expires_at !== undefined && !(now < lease.expires_at)

/**
 * May `lease` touch `resource` in `namespace` at `now`? `LeaseExpired` at or
 * after `expires_at` (checked first); `PermissionDenied` when no pattern of
 * that namespace matches, or an fs path is not normalised.
 */
export const checkLease = (
  lease: Lease,
  namespace: LeaseNamespace,
  resource: string,
  now: number
): Either.Either<void, PermissionDenied | LeaseExpired> => {
  if (isExpired(lease, now)) return Either.left(new LeaseExpired({ lease_id: lease.lease_id }))
  const syntax = globSyntaxOf(namespace)
  if (syntax === "path" && hasDotSegment(resource)) {
    return Either.left(
      new PermissionDenied({ reason: `${namespace} ${resource}: paths with . or .. segments are never granted` })
    )
  }
  const patterns = lease.grants[namespace] ?? []
  return patterns.some((pattern) => leaseGlobMatch(pattern, resource, syntax))
    ? Either.void
    : Either.left(new PermissionDenied({ reason: `lease ${lease.lease_id} does not grant ${namespace} ${resource}` }))
}

const knownNamespaces: ReadonlySet<string> = new Set(leaseNamespaces)

/**
 * May `child` be delegated from `parent` at `now`? The parent must not be
 * expired (`LeaseExpired` naming the parent). Then `LeaseSubsetViolation`
 * when the child outlives the parent (a later expiry, or none under a parent
 * that has one; the same instant is fine), or when some child pattern is not
 * covered (`leaseGlobCovers`) by any one parent pattern of its namespace, or
 * the child names a namespace Switchboard does not know. Reports the first
 * fault found: expiry, then namespaces and patterns in the child's order.
 *
 * Accepting means: at any time and for any resource, whatever `checkLease`
 * lets the child do, it lets the parent do too. Which lease the child names
 * as its parent is for the caller to check.
 */
export const checkDelegation = (
  parent: Lease,
  child: Lease,
  now: number
): Either.Either<void, LeaseSubsetViolation | LeaseExpired> => {
  if (isExpired(parent, now)) return Either.left(new LeaseExpired({ lease_id: parent.lease_id }))
  const violation = (reason: string, namespace?: string, pattern?: string) =>
    Either.left(
      new LeaseSubsetViolation({
        lease_id: child.lease_id,
        parent_lease_id: parent.lease_id,
        namespace,
        pattern,
        reason
      })
    )
  if (parent.expires_at !== undefined) {
    if (child.expires_at === undefined) {
      return violation(`it never expires, but its parent expires at ${parent.expires_at}`)
    }
    if (!(child.expires_at <= parent.expires_at)) {
      return violation(`it expires at ${child.expires_at}, after its parent (${parent.expires_at})`)
    }
  }
  const childGrants = child.grants as Readonly<Record<string, ReadonlyArray<string> | undefined>>
  for (const namespace of Object.keys(childGrants)) {
    const patterns = childGrants[namespace] ?? []
    if (!knownNamespaces.has(namespace)) {
      if (patterns.length > 0) return violation(`unknown namespace ${namespace}`, namespace, patterns[0])
      continue
    }
    const syntax = globSyntaxOf(namespace as LeaseNamespace)
    const parentPatterns = parent.grants[namespace as LeaseNamespace] ?? []
    for (const pattern of patterns) {
      if (!parentPatterns.some((parentPattern) => leaseGlobCovers(parentPattern, pattern, syntax))) {
        return violation(`${namespace} ${pattern} is not covered by any pattern of the parent`, namespace, pattern)
      }
    }
  }
  return Either.void
}

// ---------------------------------------------------------------------------
// Decisions

export const decideGrantLease = (state: RuntimeState, lease: Lease, now: number): Decision<Lease, ValidationError> =>
  state.leases.has(lease.lease_id)
    ? refuse(ValidationError.single("lease", "lease_id", `lease ${lease.lease_id} exists already`))
    : accept([LeaseGranted.make({ lease, at: now }, true)], lease)

/** Whether the lease covers the operation; a refusal is audited. */
export const decideCheckLease = (
  state: RuntimeState,
  request: { readonly lease_id: string; readonly namespace: LeaseNamespace; readonly resource: string },
  now: number
): Decision<void, PermissionDenied | LeaseExpired> => {
  const lease = state.leases.get(request.lease_id)
  const audit = auditor(state, now)
  const action = `lease.${request.namespace}:${request.resource}`
  if (lease === undefined) {
    const error = new PermissionDenied({ reason: `no lease ${request.lease_id}` })
    return refuse(error, [audit({ agent_id: "*", action, decision: "lease_denied", reason: error.reason })])
  }
  const checked = checkLease(lease, request.namespace, request.resource, now)
  if (Either.isRight(checked)) return accept([])
  const error = checked.left
  return refuse(error, [
    audit({
      agent_id: lease.agent_id,
      action,
      decision: error._tag === "LeaseExpired" ? "lease_expired" : "lease_denied",
      reason: error.message,
      rule: `lease ${lease.lease_id}`
    })
  ])
}

/** A child lease, which must be a subset of its parent; a refusal is audited. */
export const decideDelegateLease = (
  state: RuntimeState,
  request: { readonly parent_lease_id: string; readonly lease: Lease },
  now: number
): Decision<Lease, ValidationError | LeaseSubsetViolation | LeaseExpired> => {
  const parent = state.leases.get(request.parent_lease_id)
  if (parent === undefined) {
    return refuse(ValidationError.single("lease", "parent_lease_id", `no lease ${request.parent_lease_id}`))
  }
  if (state.leases.has(request.lease.lease_id)) {
    return refuse(ValidationError.single("lease", "lease_id", `lease ${request.lease.lease_id} exists already`))
  }
  const child: Lease = { ...request.lease, parent_lease_id: parent.lease_id }
  const checked = checkDelegation(parent, child, now)
  if (Either.isRight(checked)) return accept([LeaseGranted.make({ lease: child, at: now }, true)], child)
  const error = checked.left
  return refuse(error, [
    auditor(state, now)({
      agent_id: child.agent_id,
      action: `lease.delegate:${parent.lease_id}`,
      decision: error._tag === "LeaseExpired" ? "lease_expired" : "lease_denied",
      reason: error.message,
      rule: `lease ${parent.lease_id}`
    })
  ])
}
