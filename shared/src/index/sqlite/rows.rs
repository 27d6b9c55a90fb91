//! Rows to records and back: the column lists, the reads of one session, and the writes of a
//! chunk and a session inside a transaction, shared by every operation of the store.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::engine::SessionGuid;
use crate::index::protocol::SessionState;
use crate::index::store::Stored;
use crate::index::{ChunkRecord, RejectRecord, SessionRecord, SessionStatus};
use crate::time::Millis;

pub(super) const SESSION_COLUMNS: &str =
    "guid, status, environment, chunk_count, first_chunk_time, \
     last_chunk_time, last_chunk_at, version, lease_until, result_object, finalized_at, \
     finalize_count, recorded_bytes";

pub(super) fn session_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
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
        recorded_bytes: row.get::<_, i64>(12)? as u64,
    })
}

pub(super) const REJECT_COLUMNS: &str =
    "bucket, name, generation, kind, reason, session_guid, size";

pub(super) fn reject_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RejectRecord> {
    let guid: String = row.get(5)?;
    Ok(RejectRecord {
        bucket: row.get(0)?,
        name: row.get(1)?,
        generation: row.get(2)?,
        kind: row.get(3)?,
        reason: row.get(4)?,
        // Only a valid guid is ever written; anything else names no session.
        session_guid: SessionGuid::parse(&guid).ok(),
        size: row.get::<_, i64>(6)? as u64,
    })
}

pub(super) fn load_session(conn: &Connection, guid: &str) -> rusqlite::Result<Option<Stored<i64>>> {
    conn.query_row(
        &format!(
            "SELECT {SESSION_COLUMNS}, claim_token, claimed_version, shard, rev \
             FROM sessions WHERE guid = ?1"
        ),
        [guid],
        |row| {
            Ok(Stored {
                state: SessionState {
                    record: session_row(row)?,
                    claim_token: row.get(13)?,
                    claimed_version: row.get::<_, Option<i64>>(14)?.map(|v| v as u64),
                    shard: Some(row.get::<_, i64>(15)? as u32),
                },
                revision: row.get(16)?,
            })
        },
    )
    .optional()
}

/// Whether `c`'s row exists: what [`insert_chunk`] would ignore it for (the same name with
/// the same generation, or with the same content).
pub(super) fn chunk_exists(conn: &Connection, c: &ChunkRecord) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM chunks WHERE bucket = ?1 AND name = ?2 \
         AND (generation = ?3 OR (content_hash = ?4 AND content_hash != ''))",
    )?
    .exists(params![c.bucket, c.name, c.generation, c.content_hash])
}

pub(super) fn insert_chunk(
    tx: &Transaction<'_>,
    c: &ChunkRecord,
    at: Millis,
) -> rusqlite::Result<bool> {
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
            at.0,
            c.content_hash
        ],
    )?;
    Ok(inserted == 1)
}

pub(super) fn put_session(
    tx: &Transaction<'_>,
    s: &SessionState,
    rev: i64,
) -> rusqlite::Result<()> {
    let r = &s.record;
    tx.execute(
        "INSERT OR REPLACE INTO sessions (guid, status, environment, chunk_count, \
         first_chunk_time, last_chunk_time, last_chunk_at, version, lease_until, claim_token, \
         claimed_version, result_object, finalized_at, finalize_count, shard, rev, \
         recorded_bytes) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
        params![
            r.guid.as_str(),
            r.status.as_str(),
            r.environment,
            r.chunk_count as i64,
            r.first_chunk_time,
            r.last_chunk_time,
            r.last_chunk_at.0,
            r.version as i64,
            r.lease_until.map(|t| t.0),
            s.claim_token,
            s.claimed_version.map(|v| v as i64),
            r.result_object,
            r.finalized_at.map(|t| t.0),
            r.finalize_count as i64,
            i64::from(s.shard.unwrap_or(0)),
            rev,
            r.recorded_bytes.min(i64::MAX as u64) as i64
        ],
    )?;
    Ok(())
}
