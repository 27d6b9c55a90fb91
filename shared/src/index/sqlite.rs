//! The embedded session index: one SQLite file, no server.
//!
//! Several processes may share the file (racing sweeps, an ingest watcher beside a sweep):
//! it runs in WAL mode with a busy timeout, and every read-modify-write is one
//! `BEGIN IMMEDIATE` transaction, which takes the write lock up front so two claims can never
//! interleave. rusqlite is synchronous, so calls run on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{
    earlier, later, new_token, ChunkRecord, Claim, ClaimMode, ClaimOutcome, Completion, IndexError,
    Recorded, RejectRecord, Result, SessionIndex, SessionRecord, SessionStatus,
};
use crate::engine::SessionGuid;
use crate::time::Millis;

const SCHEMA: &str = "
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
CREATE INDEX IF NOT EXISTS sessions_idle ON sessions (status, last_chunk_at);
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
";

/// Brings a file made by an older rrstitch up to the current schema.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_content: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('chunks') WHERE name = 'content_hash'")?
        .exists([])?;
    if !has_content {
        conn.execute_batch("ALTER TABLE chunks ADD COLUMN content_hash TEXT NOT NULL DEFAULT ''")?;
    }
    // The same bytes under the same name are one upload, whatever their generation.
    conn.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS chunks_by_content \
         ON chunks (bucket, name, content_hash) WHERE content_hash != ''",
    )
}

#[derive(Debug, Clone)]
pub struct SqliteIndex {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn sql_error(op: &'static str) -> impl Fn(rusqlite::Error) -> IndexError {
    move |e| {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        if busy {
            IndexError::Transient {
                op,
                source: e.into(),
            }
        } else {
            IndexError::Permanent {
                op,
                source: e.into(),
            }
        }
    }
}

impl SqliteIndex {
    /// Opens (creating if needed) the index at `path`; its directory is created too.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| IndexError::Permanent {
                op: "open",
                source: format!("{}: {e}", dir.display()).into(),
            })?;
        }
        let conn = Connection::open(&path).map_err(sql_error("open"))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(sql_error("open"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_error("open"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_error("open"))?;
        conn.execute_batch(SCHEMA).map_err(sql_error("open"))?;
        migrate(&conn).map_err(sql_error("open"))?;
        Ok(SqliteIndex {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` inside an immediate transaction on the blocking pool.
    async fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error(op))?;
            let value = f(&tx).map_err(sql_error(op))?;
            tx.commit().map_err(sql_error(op))?;
            Ok(value)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(sql_error(op))
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

const SESSION_COLUMNS: &str = "guid, status, environment, chunk_count, first_chunk_time, \
     last_chunk_time, last_chunk_at, version, lease_until, result_object, finalized_at, \
     finalize_count";

fn session_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    let guid: String = row.get(0)?;
    let status: String = row.get(1)?;
    let bad = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, what.into())
    };
    Ok(SessionRecord {
        guid: SessionGuid::parse(&guid).map_err(|e| bad(e.to_string()))?,
        status: SessionStatus::parse(&status).ok_or_else(|| bad(format!("status {status:?}")))?,
        environment: row.get(2)?,
        chunk_count: row.get::<_, i64>(3)? as u64,
        first_chunk_time: row.get(4)?,
        last_chunk_time: row.get(5)?,
        last_chunk_at: Millis(row.get(6)?),
        version: row.get::<_, i64>(7)? as u64,
        lease_until: row.get::<_, Option<i64>>(8)?.map(Millis),
        result_object: row.get(9)?,
        finalized_at: row.get::<_, Option<i64>>(10)?.map(Millis),
        finalize_count: row.get::<_, i64>(11)? as u64,
    })
}

fn load_session(
    tx: &Connection,
    guid: &str,
) -> rusqlite::Result<Option<(SessionRecord, Option<String>)>> {
    tx.query_row(
        &format!("SELECT {SESSION_COLUMNS}, claim_token FROM sessions WHERE guid = ?1"),
        [guid],
        |row| Ok((session_row(row)?, row.get(12)?)),
    )
    .optional()
}

#[async_trait]
impl SessionIndex for SqliteIndex {
    async fn record_chunk(&self, chunk: &ChunkRecord, now: Millis) -> Result<Recorded> {
        let c = chunk.clone();
        self.write("record_chunk", move |tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO chunks (bucket, name, generation, guid, timestamp, \
                 environment, size, event_count, recorded_at, content_hash) \
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                params![
                    c.bucket,
                    c.name,
                    c.generation,
                    c.guid.as_str(),
                    c.timestamp,
                    c.environment,
                    c.size as i64,
                    c.event_count as i64,
                    now.0,
                    c.content_hash
                ],
            )?;
            if inserted == 0 {
                return Ok(Recorded::AlreadyKnown);
            }
            let Some((s, _)) = load_session(tx, c.guid.as_str())? else {
                tx.execute(
                    "INSERT INTO sessions (guid, status, environment, chunk_count, \
                     first_chunk_time, last_chunk_time, last_chunk_at, version) \
                     VALUES (?1, 'open', ?2, 1, ?3, ?3, ?4, 1)",
                    params![c.guid.as_str(), c.environment, c.timestamp, now.0],
                )?;
                return Ok(Recorded::New { reopened: false });
            };
            let reopened = s.status == SessionStatus::Finalized;
            // A chunk landing mid-finalize leaves the claim in place; `complete` sees the
            // version move and re-opens the session.
            let status = match s.status {
                SessionStatus::Finalizing => SessionStatus::Finalizing,
                _ => SessionStatus::Open,
            };
            tx.execute(
                "UPDATE sessions SET status = ?2, chunk_count = chunk_count + 1, \
                 first_chunk_time = ?3, last_chunk_time = ?4, last_chunk_at = MAX(last_chunk_at, ?5), \
                 version = version + 1 WHERE guid = ?1",
                params![
                    c.guid.as_str(),
                    status.as_str(),
                    earlier(&s.first_chunk_time, &c.timestamp),
                    later(&s.last_chunk_time, &c.timestamp),
                    now.0
                ],
            )?;
            Ok(Recorded::New { reopened })
        })
        .await
    }

    async fn record_rejected(&self, r: &RejectRecord, now: Millis) -> Result<bool> {
        let r = r.clone();
        self.write("record_rejected", move |tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO rejected (bucket, name, generation, kind, reason, recorded_at) \
                 VALUES (?1,?2,?3,?4,?5,?6)",
                params![r.bucket, r.name, r.generation, r.kind, r.reason, now.0],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn idle_sessions(
        &self,
        idle_before: Millis,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<SessionGuid>> {
        let guids: Vec<String> = self
            .read("idle_sessions", move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT guid FROM sessions WHERE (status = 'open' AND last_chunk_at < ?1) \
                     OR (status = 'finalizing' AND lease_until < ?2) \
                     ORDER BY last_chunk_at LIMIT ?3",
                )?;
                let rows =
                    stmt.query_map(params![idle_before.0, now.0, limit as i64], |r| r.get(0))?;
                rows.collect()
            })
            .await?;
        Ok(guids
            .iter()
            .filter_map(|g| SessionGuid::parse(g).ok())
            .collect())
    }

    async fn claim(
        &self,
        guid: &SessionGuid,
        mode: ClaimMode,
        now: Millis,
        lease: Duration,
    ) -> Result<ClaimOutcome> {
        let guid = guid.clone();
        self.write("claim", move |tx| {
            let Some((s, _)) = load_session(tx, guid.as_str())? else {
                return Ok(ClaimOutcome::NotFound);
            };
            let lease_live = s.status == SessionStatus::Finalizing
                && s.lease_until.is_some_and(|until| until >= now);
            if lease_live {
                return Ok(ClaimOutcome::Busy {
                    lease_until: s.lease_until.unwrap_or(now),
                });
            }
            let eligible = match mode {
                ClaimMode::Force => true,
                ClaimMode::Idle { idle_before } => match s.status {
                    SessionStatus::Open => s.last_chunk_at < idle_before,
                    SessionStatus::Finalizing => true, // lease expired (checked above)
                    SessionStatus::Finalized => false,
                },
            };
            if !eligible {
                return Ok(ClaimOutcome::NotEligible);
            }
            let token = new_token();
            let lease_until = now.plus(lease);
            tx.execute(
                "UPDATE sessions SET status = 'finalizing', lease_until = ?2, claim_token = ?3, \
                 claimed_version = version WHERE guid = ?1",
                params![guid.as_str(), lease_until.0, token],
            )?;
            Ok(ClaimOutcome::Claimed(Claim {
                guid,
                token,
                version: s.version,
                lease_until,
            }))
        })
        .await
    }

    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>> {
        let g = guid.clone();
        self.read("chunks", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT bucket, name, generation, timestamp, environment, size, event_count, \
                 content_hash FROM chunks WHERE guid = ?1 ORDER BY recorded_at, name",
            )?;
            let rows = stmt.query_map([g.as_str()], |r| {
                Ok(ChunkRecord {
                    guid: g.clone(),
                    bucket: r.get(0)?,
                    name: r.get(1)?,
                    generation: r.get(2)?,
                    timestamp: r.get(3)?,
                    environment: r.get(4)?,
                    size: r.get::<_, i64>(5)? as u64,
                    event_count: r.get::<_, i64>(6)? as u64,
                    content_hash: r.get(7)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn complete(
        &self,
        claim: &Claim,
        result_object: &str,
        now: Millis,
    ) -> Result<Completion> {
        let (claim, result) = (claim.clone(), result_object.to_owned());
        self.write("complete", move |tx| {
            let Some((s, token)) = load_session(tx, claim.guid.as_str())? else {
                return Ok(Completion::LostClaim);
            };
            if s.status != SessionStatus::Finalizing || token.as_deref() != Some(&claim.token) {
                return Ok(Completion::LostClaim);
            }
            let (status, completion) = if s.version == claim.version {
                (SessionStatus::Finalized, Completion::Finalized)
            } else {
                (SessionStatus::Open, Completion::Reopened)
            };
            tx.execute(
                "UPDATE sessions SET status = ?2, lease_until = NULL, claim_token = NULL, \
                 claimed_version = NULL, result_object = ?3, finalized_at = ?4, \
                 finalize_count = finalize_count + 1 WHERE guid = ?1",
                params![claim.guid.as_str(), status.as_str(), result, now.0],
            )?;
            Ok(completion)
        })
        .await
    }

    async fn renew(&self, claim: &Claim, now: Millis, lease: Duration) -> Result<Option<Millis>> {
        let claim = claim.clone();
        let lease_until = now.plus(lease);
        self.write("renew", move |tx| {
            let changed = tx.execute(
                "UPDATE sessions SET lease_until = ?3 \
                 WHERE guid = ?1 AND claim_token = ?2 AND status = 'finalizing'",
                params![claim.guid.as_str(), claim.token, lease_until.0],
            )?;
            Ok((changed == 1).then_some(lease_until))
        })
        .await
    }

    async fn release(&self, claim: &Claim, _now: Millis) -> Result<()> {
        let claim = claim.clone();
        self.write("release", move |tx| {
            tx.execute(
                "UPDATE sessions SET status = 'open', lease_until = NULL, claim_token = NULL, \
                 claimed_version = NULL WHERE guid = ?1 AND claim_token = ?2",
                params![claim.guid.as_str(), claim.token],
            )?;
            Ok(())
        })
        .await
    }

    async fn session(&self, guid: &SessionGuid) -> Result<Option<SessionRecord>> {
        let g = guid.clone();
        self.read("session", move |conn| {
            Ok(load_session(conn, g.as_str())?.map(|(s, _)| s))
        })
        .await
    }

    async fn sessions(&self, limit: usize) -> Result<Vec<SessionRecord>> {
        self.read("sessions", move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions ORDER BY last_chunk_at DESC, guid LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], session_row)?;
            rows.collect()
        })
        .await
    }

    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>> {
        self.read("rejected", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT bucket, name, generation, kind, reason FROM rejected \
                 ORDER BY recorded_at DESC, name LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok(RejectRecord {
                    bucket: r.get(0)?,
                    name: r.get(1)?,
                    generation: r.get(2)?,
                    kind: r.get(3)?,
                    reason: r.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let index = SqliteIndex::open(dir.path().join("sub/index.sqlite")).unwrap();
        super::super::conformance::run_all(&index).await;
    }

    #[tokio::test]
    async fn two_handles_on_one_file_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let a = SqliteIndex::open(&path).unwrap();
        let b = SqliteIndex::open(&path).unwrap();
        super::super::conformance::claims_are_exclusive_across_handles(&a, &b).await;
    }

    #[tokio::test]
    async fn a_file_from_before_content_hashes_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            // The chunks table as rrstitch created it before content hashes.
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE chunks (bucket TEXT NOT NULL, name TEXT NOT NULL, \
                 generation TEXT NOT NULL, guid TEXT NOT NULL, timestamp TEXT NOT NULL, \
                 environment TEXT NOT NULL, size INTEGER NOT NULL, event_count INTEGER NOT NULL, \
                 recorded_at INTEGER NOT NULL, PRIMARY KEY (bucket, name, generation)); \
                 INSERT INTO chunks VALUES ('/b', 'x.json', '1', 'g-1', 't', 'e', 1, 1, 0);",
            )
            .unwrap();
        }
        let index = SqliteIndex::open(&path).unwrap();
        let g = SessionGuid::parse("g-1").unwrap();
        let chunks = index.chunks(&g).await.unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].content_hash, "");
        // Reopening a migrated file is a no-op.
        drop(index);
        SqliteIndex::open(&path).unwrap();
    }
}
