/**
 * The Node-only parts of Switchboard's public API: the durable event logs, each
 * a module whose `layer` builds it (`EventLogSqlite.layer({ filename })`,
 * `EventLogPg.layer({ url })`, `EventLogSql.layer()` on the application's own
 * SqlClient); the network server (`Server.layer(options)`) and SW4RM's gRPC
 * services (`Grpc.layer(options)`); `Telemetry.layerFromEnv`,
 * which exports traces over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set;
 * and the remote client with Node's HTTP and WebSocket clients included: the
 * same modules as the main entry's `SwitchboardClient`, `Consumer` and
 * `Remote`, each with a `layerNode` besides.
 */
export * as EventLogSqlite from "./layers/EventLogSqlite.js"
export * as EventLogPg from "./layers/EventLogPg.js"
export * as EventLogSql from "./layers/EventLogSql.js"
export * as Server from "./server/Server.js"
export * as Grpc from "./server/Grpc.js"
export * as Telemetry from "./layers/Telemetry.js"
export * as SwitchboardClient from "./client/SwitchboardClientNode.js"
export * as Consumer from "./client/ConsumerNode.js"
export * as Remote from "./client/RemoteNode.js"
