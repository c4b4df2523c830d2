/**
 * An idempotent consumer's own durable memory, in its own SQLite file
 * (better-sqlite3, written synchronously before the handler returns, so it
 * survives a SIGKILL of the process).
 *
 * - `handled`: one row per handler call, redeliveries included.
 * - `processed`: the idempotency tokens already processed; a token found here
 *   is skipped (the handler still succeeds).
 * - `effects`: the work itself, one row each time a message is really
 *   processed. No constraint stops a second row: only the check on
 *   `processed` does, and the test counts the rows.
 */
import Database from "better-sqlite3"

export interface ProcessedTokens {
  /** Records the call, and processes the token unless it already was; true when it did. */
  readonly handle: (row: {
    readonly token: string
    readonly message_id: string
    readonly agent_id: string
    readonly attempt: number
    readonly run: string
  }) => boolean
  readonly effects: () => ReadonlyArray<{ readonly token: string; readonly message_id: string; readonly count: number }>
  /** Handler calls for the token. */
  readonly handledCount: (token: string) => number
  readonly close: () => void
}

export const openProcessed = (filename: string): ProcessedTokens => {
  const db = new Database(filename)
  db.pragma("journal_mode = WAL")
  // A process crash loses nothing even with NORMAL: committed pages are in the OS's hands.
  db.pragma("synchronous = NORMAL")
  db.exec(`
    CREATE TABLE IF NOT EXISTS handled (token TEXT NOT NULL, message_id TEXT NOT NULL, agent_id TEXT NOT NULL,
      attempt INTEGER NOT NULL, run TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS processed (token TEXT PRIMARY KEY, message_id TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS effects (token TEXT NOT NULL, message_id TEXT NOT NULL, agent_id TEXT NOT NULL, run TEXT NOT NULL);
  `)
  const insertHandled = db.prepare(
    "INSERT INTO handled (token, message_id, agent_id, attempt, run) VALUES (@token, @message_id, @agent_id, @attempt, @run)"
  )
  const findProcessed = db.prepare("SELECT 1 FROM processed WHERE token = ?")
  const insertProcessed = db.prepare("INSERT INTO processed (token, message_id) VALUES (@token, @message_id)")
  const insertEffect = db.prepare(
    "INSERT INTO effects (token, message_id, agent_id, run) VALUES (@token, @message_id, @agent_id, @run)"
  )
  const handle = db.transaction((row: Parameters<ProcessedTokens["handle"]>[0]) => {
    insertHandled.run(row)
    if (findProcessed.get(row.token) !== undefined) return false
    insertEffect.run(row)
    insertProcessed.run(row)
    return true
  })
  return {
    handle: (row) => handle(row),
    effects: () =>
      db.prepare("SELECT token, min(message_id) AS message_id, count(*) AS count FROM effects GROUP BY token ORDER BY token")
        .all() as Array<{ token: string; message_id: string; count: number }>,
    handledCount: (token) => (db.prepare("SELECT count(*) AS n FROM handled WHERE token = ?").get(token) as { n: number }).n,
    close: () => db.close()
  }
}
