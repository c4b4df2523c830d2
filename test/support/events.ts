import { AgentRegistered } from "../../src/schema/RouterEvents.js"

/** A small, valid event; `name` makes each one recognisable. */
export const registered = (name: string) =>
  AgentRegistered.make({
    agent: {
      agent_id: `agent-${name}`,
      name,
      description: "",
      capabilities: ["test"],
      communication_class: "STANDARD",
      modalities_supported: [],
      enforcement_mode: "enforce"
    },
    at: 0
  })

export const nameOf = (event: { readonly _tag: string }) => (event as AgentRegistered).agent.name
