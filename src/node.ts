/**
 * The Node-only parts of Switchboard's public API: the durable event logs, each
 * a module whose `layer` builds it (`EventLogSqlite.layer({ filename })`,
 * `EventLogPg.layer({ url })`, `EventLogSql.layer()` on the application's own
 * SqlClient), and the network server (`Server.layer(options)`).
 */
export * as EventLogSqlite from "./layers/EventLogSqlite.js"
export * as EventLogPg from "./layers/EventLogPg.js"
export * as EventLogSql from "./layers/EventLogSql.js"
export * as Server from "./server/Server.js"
