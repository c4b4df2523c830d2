/** The envelope's ids and headers, each bounded to `maxIdLength` (README, "Envelopes on the wire"). */
export const boundedHeaders = [
  "message_id",
  "idempotency_token",
  "producer_id",
  "correlation_id",
  "content_type",
  "repo_id",
  "worktree_id",
  "hlc_timestamp"
] as const
