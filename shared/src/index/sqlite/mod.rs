//! The embedded session index: one SQLite file, no server.
//!
//! Several processes may share the file (racing sweeps, an ingest watcher beside a sweep):
//! it runs in WAL mode with a busy timeout. The store is the [`SessionStore`] port and nothing
//! more: a session row carries a revision `rev`, and a write is one `BEGIN IMMEDIATE`
//! transaction that checks the revision it expects, inserts the chunk row if there is one
//! (`INSERT OR IGNORE`: a known chunk writes nothing) and replaces the session row with the
//! next revision. The protocol is [`super::driver`]'s, the same as for the cloud stores.
//! rusqlite is synchronous, so calls run on tokio's blocking pool.
//!
//! Files from older versions are migrated on open (`migrate`); sessions from before shards
//! existed are put in shard 0, which every query reads.

mod rows;
mod schema;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::driver::Driver;
use super::protocol::SessionState;
use super::store::{Due, DueEntry, NewChunk, SessionStore, Stored, Written};
use super::{ChunkRecord, IndexError, RejectRecord, Result, SessionRecord};
use crate::engine::SessionGuid;
use crate::time::Millis;
use rows::{
    chunk_exists, insert_chunk, load_session, put_session, reject_row, session_row, REJECT_COLUMNS,
    SESSION_COLUMNS,
};
use schema::{migrate, SCHEMA, SHARD_MARK};

/// The session index in one SQLite file.
pub type SqliteIndex = Driver<SqliteStore>;

/// The SQLite store; [`SqliteIndex`] is the index over it.
#[derive(Debug, Clone)]
pub struct SqliteStore {
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

impl Driver<SqliteStore> {
    /// Opens (creating if needed) the index at `path`; its directory is created too.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Driver::over(SqliteStore::open(path)?))
    }

    pub fn path(&self) -> &Path {
        &self.store().path
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the file at `path`, migrated to the current schema.
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
        // An erased session's rows must not survive in free pages (`strings` on the file
        // found them): deleted content is overwritten with zeros. Erasing writes then also
        // empty the write-ahead log ([`SqliteStore::purge_log`]), which holds older copies.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(sql_error("open"))?;
        conn.execute_batch(SCHEMA).map_err(sql_error("open"))?;
        migrate(&conn).map_err(sql_error("open"))?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// Runs `f` inside an immediate transaction on the blocking pool; it commits only if `f`
    /// says so (`Ok((value, true))`).
    async fn write_tx<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<(T, bool)> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error(op))?;
            let (value, commit) = f(&tx).map_err(sql_error(op))?;
            if commit {
                tx.commit().map_err(sql_error(op))?;
            }
            Ok(value)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Copies the write-ahead log into the database and truncates it to nothing: the log
    /// keeps every page image written since the last reset, deleted rows' included, and a
    /// checkpoint alone only rewinds it (old frames stay until overwritten). Called after
    /// erasing writes. A reader that holds the log past the busy timeout leaves it in place:
    /// that is a transient failure, so the erasure is reported failed and run again.
    async fn purge_log(&self, op: &'static str) -> Result<()> {
        let busy: i64 = self
            .read_conn(op, |conn| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            })
            .await?;
        if busy != 0 {
            return Err(IndexError::Transient {
                op,
                source: "another connection kept the write-ahead log busy; the erased rows \
                         may still be in it until the next erasing write"
                    .into(),
            });
        }
        Ok(())
    }

    async fn read_conn<T: Send + 'static>(
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

#[async_trait]
impl SessionStore for SqliteStore {
    type Revision = i64;

    async fn read(&self, guid: &SessionGuid) -> Result<Option<Stored<i64>>> {
        let g = guid.clone();
        self.read_conn("read", move |conn| load_session(conn, g.as_str()))
            .await
    }

    async fn write(
        &self,
        expected: Option<&i64>,
        state: &SessionState,
        chunk: Option<NewChunk<'_>>,
    ) -> Result<Written> {
        let (expected, state) = (expected.copied(), state.clone());
        let chunk = chunk.map(|c| (c.record.clone(), c.at));
        self.write_tx("write", move |tx| {
            if let Some((record, at)) = &chunk {
                if !insert_chunk(tx, record, *at)? {
                    return Ok((Written::ChunkKnown, false));
                }
            }
            let current: Option<i64> = tx
                .query_row(
                    "SELECT rev FROM sessions WHERE guid = ?1",
                    [state.record.guid.as_str()],
                    |row| row.get(0),
                )
                .optional()?;
            if current != expected {
                return Ok((Written::Conflict, false));
            }
            put_session(tx, &state, current.unwrap_or(0) + 1)?;
            Ok((Written::Written, true))
        })
        .await
    }

    async fn chunk_known(&self, c: &ChunkRecord) -> Result<bool> {
        let c = c.clone();
        self.read_conn("chunk_known", move |conn| chunk_exists(conn, &c))
            .await
    }

    async fn record_rejected(&self, r: &RejectRecord, now: Millis) -> Result<bool> {
        let r = r.clone();
        self.write_tx("record_rejected", move |tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO rejected (bucket, name, generation, kind, reason, \
                 recorded_at, session_guid, size) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                params![
                    r.bucket,
                    r.name,
                    r.generation,
                    r.kind,
                    r.reason,
                    now.0,
                    r.session_guid.as_ref().map_or("", |g| g.as_str()),
                    r.size.min(i64::MAX as u64) as i64
                ],
            )?;
            Ok((n > 0, true))
        })
        .await
    }

    async fn due(
        &self,
        shard: u32,
        due: Due,
        before: Millis,
        limit: usize,
    ) -> Result<Vec<DueEntry>> {
        let sql = match due {
            Due::Idle => {
                "SELECT guid, last_chunk_at FROM sessions \
                 WHERE shard = ?1 AND status = 'open' AND last_chunk_at < ?2 \
                 ORDER BY last_chunk_at LIMIT ?3"
            }
            Due::LeaseExpired => {
                "SELECT guid, lease_until FROM sessions \
                 WHERE shard = ?1 AND status = 'finalizing' AND lease_until < ?2 \
                 ORDER BY lease_until LIMIT ?3"
            }
            Due::Tombstone => {
                "SELECT guid, lease_until FROM sessions \
                 WHERE shard = ?1 AND status = 'deleted' AND lease_until < ?2 \
                 ORDER BY lease_until LIMIT ?3"
            }
        };
        let rows: Vec<(String, i64)> = self
            .read_conn("idle_sessions", move |conn| {
                let mut stmt = conn.prepare_cached(sql)?;
                let rows = stmt
                    .query_map(params![i64::from(shard), before.0, limit as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                rows.collect()
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(g, at)| {
                Some(DueEntry {
                    guid: SessionGuid::parse(&g).ok()?,
                    at: Millis(at),
                })
            })
            .collect())
    }

    async fn shard_mark(&self) -> Result<Option<u32>> {
        self.read_conn("shard_mark", |conn| {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [SHARD_MARK], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|v| v.map(|v| v as u32))
        })
        .await
    }

    async fn bookmark(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_owned();
        self.read_conn("bookmark", move |conn| {
            conn.query_row("SELECT value FROM bookmarks WHERE name = ?1", [name], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        })
        .await
    }

    async fn set_bookmark(&self, name: &str, value: Option<&str>) -> Result<()> {
        let (name, value) = (name.to_owned(), value.map(str::to_owned));
        self.write_tx("set_bookmark", move |tx| {
            match value {
                Some(v) => tx.execute(
                    "INSERT INTO bookmarks (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![name, v],
                )?,
                None => tx.execute("DELETE FROM bookmarks WHERE name = ?1", [name])?,
            };
            Ok(((), true))
        })
        .await
    }

    async fn raise_shard_mark(&self, count: u32) -> Result<()> {
        self.write_tx("raise_shard_mark", move |tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
                params![SHARD_MARK, i64::from(count)],
            )?;
            Ok(((), true))
        })
        .await
    }

    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>> {
        let g = guid.clone();
        self.read_conn("chunks", move |conn| {
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

    async fn sessions(&self, _shards: u32, limit: usize) -> Result<Vec<SessionRecord>> {
        self.read_conn("sessions", move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions ORDER BY last_chunk_at DESC, guid LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], session_row)?;
            rows.collect()
        })
        .await
    }

    async fn sessions_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>> {
        // Guid order, on the primary key: a page is one range read however large the table.
        let after = after.unwrap_or("").to_owned();
        self.read_conn("sessions_page", move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE guid > ?1 ORDER BY guid LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after, limit as i64], session_row)?;
            rows.collect()
        })
        .await
    }

    async fn count_due(&self, shard: u32, due: Due, before: Millis) -> Result<u64> {
        // The same index ranges as `due` (sessions_idle_by_shard, sessions_expiry_by_shard).
        let sql = match due {
            Due::Idle => {
                "SELECT COUNT(*) FROM sessions \
                 WHERE shard = ?1 AND status = 'open' AND last_chunk_at < ?2"
            }
            Due::LeaseExpired => {
                "SELECT COUNT(*) FROM sessions \
                 WHERE shard = ?1 AND status = 'finalizing' AND lease_until < ?2"
            }
            Due::Tombstone => {
                "SELECT COUNT(*) FROM sessions \
                 WHERE shard = ?1 AND status = 'deleted' AND lease_until < ?2"
            }
        };
        let n: i64 = self
            .read_conn("count_due", move |conn| {
                conn.prepare_cached(sql)?
                    .query_row(params![i64::from(shard), before.0], |r| r.get(0))
            })
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn rejected_since(&self, since: Millis, limit: usize) -> Result<Vec<RejectRecord>> {
        self.read_conn("rejected_since", move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REJECT_COLUMNS} FROM rejected WHERE recorded_at >= ?1 \
                 ORDER BY recorded_at DESC, name LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![since.0, limit as i64], reject_row)?;
            rows.collect()
        })
        .await
    }

    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>> {
        self.read_conn("rejected", move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REJECT_COLUMNS} FROM rejected \
                 ORDER BY recorded_at DESC, name LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], reject_row)?;
            rows.collect()
        })
        .await
    }

    async fn rejected_of(&self, guid: &SessionGuid) -> Result<Vec<RejectRecord>> {
        let g = guid.clone();
        self.read_conn("rejected_of", move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {REJECT_COLUMNS} FROM rejected WHERE session_guid = ?1 AND session_guid != ''"
            ))?;
            let rows = stmt.query_map([g.as_str()], reject_row)?;
            rows.collect()
        })
        .await
    }

    async fn forget_rejected(&self, guid: &SessionGuid) -> Result<u64> {
        let g = guid.clone();
        let n = self
            .write_tx("forget_rejected", move |tx| {
                let n = tx.execute(
                    "DELETE FROM rejected WHERE session_guid = ?1 AND session_guid != ''",
                    [g.as_str()],
                )?;
                Ok((n as u64, true))
            })
            .await?;
        self.purge_log("forget_rejected").await?;
        Ok(n)
    }

    async fn forget_chunks(&self, guid: &SessionGuid) -> Result<u64> {
        let g = guid.clone();
        let n = self
            .write_tx("forget_chunks", move |tx| {
                let n = tx.execute("DELETE FROM chunks WHERE guid = ?1", [g.as_str()])?;
                Ok((n as u64, true))
            })
            .await?;
        self.purge_log("forget_chunks").await?;
        Ok(n)
    }

    async fn remove(&self, guid: &SessionGuid, expected: &i64) -> Result<Written> {
        let (g, rev) = (guid.clone(), *expected);
        self.write_tx("remove", move |tx| {
            let n = tx.execute(
                "DELETE FROM sessions WHERE guid = ?1 AND rev = ?2",
                params![g.as_str(), rev],
            )?;
            Ok((
                if n == 1 {
                    Written::Written
                } else {
                    Written::Conflict
                },
                true,
            ))
        })
        .await
    }
}
