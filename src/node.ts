/**
 * The Node-only parts of Switchboard's public API.
 */
export { layerSqlite, openStore, type SqliteEventLogOptions } from "./layers/EventLogSqlite.js"
export { layerPg, type PgEventLogOptions } from "./layers/EventLogPg.js"
