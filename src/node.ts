/**
 * The Node-only parts of Switchboard's public API: the durable event logs, each
 * a module whose `layer` builds it (`EventLogSqlite.layer({ filename })`,
 * `EventLogPg.layer({ url })`, `EventLogSql.layer()` on the application's own
 * SqlClient); the network server (`Server.layer(options)`); and
 * `Telemetry.layerFromEnv`, which exports traces over OTLP/HTTP when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
export * as EventLogSqlite from "./layers/EventLogSqlite.js"
export * as EventLogPg from "./layers/EventLogPg.js"
export * as EventLogSql from "./layers/EventLogSql.js"
export * as Server from "./server/Server.js"
export * as Telemetry from "./layers/Telemetry.js"
