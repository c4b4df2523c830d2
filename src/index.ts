/**
 * Switchboard's public API. Node-only parts (the SQLite and PostgreSQL event
 * logs) come from `switchboard/node`.
 */
export * from "./schema/Agent.js"
export * from "./schema/Envelope.js"
export * from "./schema/Errors.js"
export * from "./schema/Event.js"
export * from "./schema/RouterEvents.js"
export * as EventLogMemory from "./layers/EventLogMemory.js"
export { EventLog, type ReadRange } from "./services/EventLog.js"
export type { EventLogOptions } from "./layers/EventLogStore.js"
