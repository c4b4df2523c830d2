/**
 * Refusals at the network edge (PROTOCOLS.md §2, "Audit"). A request whose
 * API key may not do what it asks (act as another agent, reach an operator
 * route) is refused there, before any service sees it; the gateway still
 * records every such attempt in the audit trail, as it records its own
 * denials, so that an operator sees who tried what.
 */
import type { AuditRecorded } from "../schema/GatewayEvents.js"
import type { DeniedAccess } from "../schema/Requests.js"
import { auditor } from "./Governance.js"
import { accept, type Decision, type RuntimeState } from "./State.js"

/**
 * The audit record of a refused request: decision `deny`, rule `api key`
 * (what refused it, as `kill switch` or `registry` name theirs), and the
 * key's id in the reason: an agent may hold several keys, and a key with
 * none has nothing else to name it by. A key with no agent is recorded under
 * `*`, as other records about no single agent are. Recorded whatever the kill switch says: a
 * halted gateway is when attempts matter most.
 */
export const decideDeniedAccess = (
  state: RuntimeState,
  request: DeniedAccess,
  now: number
): Decision<AuditRecorded> => {
  const recorded = auditor(state, now)({
    agent_id: request.agent_id ?? "*",
    action: request.action,
    decision: "deny",
    reason: `${request.reason} (key ${request.key_id})`,
    rule: "api key"
  })
  return accept([recorded], recorded)
}
