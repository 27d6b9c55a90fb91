//! The file's tables, and the migration that brings a file made by an older rrstitch up to
//! them: every step checks for itself, so a file of any age goes through the same code.

use rusqlite::{params, Connection};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    guid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    environment TEXT NOT NULL,
    chunk_count INTEGER NOT NULL,
    first_chunk_time TEXT NOT NULL,
    last_chunk_time TEXT NOT NULL,
    last_chunk_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease_until INTEGER,
    claim_token TEXT,
    claimed_version INTEGER,
    result_object TEXT,
    finalized_at INTEGER,
    finalize_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS chunks (
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    generation TEXT NOT NULL,
    guid TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    environment TEXT NOT NULL,
    size INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (bucket, name, generation)
);
CREATE INDEX IF NOT EXISTS chunks_by_session ON chunks (guid);
CREATE TABLE IF NOT EXISTS rejected (
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    generation TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (bucket, name, generation)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bookmarks (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// The `meta` key of the shard high-water mark.
pub(super) const SHARD_MARK: &str = "shard_mark";

pub(super) fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
        .exists(params![table, column])
}

/// Brings a file made by an older rrstitch up to the current schema. Each step checks for
/// itself, so a file of any age (and a current one) goes through the same code.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    if !has_column(conn, "chunks", "content_hash")? {
        conn.execute_batch("ALTER TABLE chunks ADD COLUMN content_hash TEXT NOT NULL DEFAULT ''")?;
    }
    // The same bytes under the same name are one upload, whatever their generation.
    conn.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS chunks_by_content \
         ON chunks (bucket, name, content_hash) WHERE content_hash != ''",
    )?;
    // The driver's revision, and the idle shard. Rows from before either start at revision 0
    // in shard 0, which every query reads, and are re-stamped on their next write.
    if !has_column(conn, "sessions", "rev")? {
        conn.execute_batch("ALTER TABLE sessions ADD COLUMN rev INTEGER NOT NULL DEFAULT 0")?;
    }
    if !has_column(conn, "sessions", "shard")? {
        conn.execute_batch("ALTER TABLE sessions ADD COLUMN shard INTEGER NOT NULL DEFAULT 0")?;
    }
    // What the per-session quota counts. Sessions from before it start from their chunks'
    // sum, so an upgrade does not hand every session a fresh quota.
    if !has_column(conn, "sessions", "recorded_bytes")? {
        conn.execute_batch(
            "ALTER TABLE sessions ADD COLUMN recorded_bytes INTEGER NOT NULL DEFAULT 0; \
             UPDATE sessions SET recorded_bytes = \
             (SELECT COALESCE(SUM(size), 0) FROM chunks WHERE chunks.guid = sessions.guid);",
        )?;
    }
    // The session a refused object names, so erasing the session finds it ('' for none).
    if !has_column(conn, "rejected", "session_guid")? {
        conn.execute_batch(
            "ALTER TABLE rejected ADD COLUMN session_guid TEXT NOT NULL DEFAULT ''",
        )?;
    }
    // A refused object's size where the refusal knows it (over_quota), 0 for older rows.
    if !has_column(conn, "rejected", "size")? {
        conn.execute_batch("ALTER TABLE rejected ADD COLUMN size INTEGER NOT NULL DEFAULT 0")?;
    }
    // Rejects by time: the listing, and `status`'s last 24 hours.
    conn.execute_batch("CREATE INDEX IF NOT EXISTS rejected_by_time ON rejected (recorded_at)")?;
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS rejected_by_session ON rejected (session_guid) \
         WHERE session_guid != ''",
    )?;
    conn.execute_batch(
        "DROP INDEX IF EXISTS sessions_idle; \
         CREATE INDEX IF NOT EXISTS sessions_idle_by_shard \
         ON sessions (shard, status, last_chunk_at); \
         CREATE INDEX IF NOT EXISTS sessions_expiry_by_shard \
         ON sessions (shard, status, lease_until);",
    )
}
