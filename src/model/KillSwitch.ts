/**
 * The kill switch (PROTOCOLS.md §2): suspend, resume or kill one agent, halt
 * or unhalt everything. A suspended agent neither sends nor receives; a
 * killed one never registers again, and its work moves on or times out.
 */
import { ValidationError } from "../schema/Errors.js"
import {
  AgentKilled,
  AgentResumed,
  AgentSuspended,
  GatewayHalted,
  GatewayUnhalted
} from "../schema/GatewayEvents.js"
import { auditor } from "./Governance.js"
import { decideKilledAgentWork } from "./Placement.js"
import { accept, type Decision, refuse, type RuntimeState } from "./State.js"

export type KillSwitchCommand =
  | { readonly _tag: "Suspend"; readonly agent_id: string; readonly reason: string }
  | { readonly _tag: "Resume"; readonly agent_id: string }
  | { readonly _tag: "Kill"; readonly agent_id: string; readonly reason: string }
  | { readonly _tag: "Halt"; readonly reason: string }
  | { readonly _tag: "Unhalt" }

export const decideKillSwitch = (
  state: RuntimeState,
  command: KillSwitchCommand,
  by: string,
  now: number
): Decision<void, ValidationError> => {
  const audit = auditor(state, now)
  const refused = (message: string) => refuse(ValidationError.single("kill_switch", "", message))
  switch (command._tag) {
    case "Suspend":
      if (state.killed.has(command.agent_id)) return refused(`agent ${command.agent_id} was killed`)
      return accept([
        AgentSuspended.make({ agent_id: command.agent_id, reason: command.reason, at: now }, true),
        audit({ agent_id: command.agent_id, action: "agent.suspend", decision: "suspended", reason: `${command.reason} (by ${by})` })
      ])
    case "Resume":
      if (!state.suspended.has(command.agent_id)) return refused(`agent ${command.agent_id} is not suspended`)
      return accept([
        AgentResumed.make({ agent_id: command.agent_id, at: now }, true),
        audit({ agent_id: command.agent_id, action: "agent.resume", decision: "resumed", reason: `resumed by ${by}` })
      ])
    case "Kill":
      if (state.killed.has(command.agent_id)) return refused(`agent ${command.agent_id} was killed already`)
      return accept([
        AgentKilled.make({ agent_id: command.agent_id, reason: command.reason, at: now }, true),
        audit({ agent_id: command.agent_id, action: "agent.kill", decision: "killed", reason: `${command.reason} (by ${by})` }),
        ...decideKilledAgentWork(state, command.agent_id, now)
      ])
    case "Halt":
      if (state.halted !== undefined) return refused("already halted")
      return accept([
        GatewayHalted.make({ reason: command.reason, at: now }, true),
        audit({ agent_id: "*", action: "gateway.halt", decision: "halted", reason: `${command.reason} (by ${by})` })
      ])
    case "Unhalt":
      if (state.halted === undefined) return refused("not halted")
      return accept([
        GatewayUnhalted.make({ at: now }, true),
        audit({ agent_id: "*", action: "gateway.unhalt", decision: "resumed", reason: `halt lifted by ${by}` })
      ])
  }
}
