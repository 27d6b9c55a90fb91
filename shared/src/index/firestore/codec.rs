//! Sessions, chunks and rejected objects as Firestore documents, and back.

use std::collections::HashMap;
use std::time::Duration;

use gcloud_sdk::google::firestore::v1::{
    precondition::ConditionType, value::ValueType, write, Document, Precondition, Value, Write,
};
use gcloud_sdk::prost_types::Timestamp;

use super::SHARD_FIELD;
use crate::engine::SessionGuid;
use crate::index::protocol::SessionState;
use crate::index::store::Stored;
use crate::index::{ChunkRecord, RejectRecord, SessionRecord, SessionStatus};
use crate::time::Millis;

pub(super) type Fields = HashMap<String, Value>;

pub(super) fn object_hash(bucket: &str, name: &str, identity: &str) -> String {
    let key = format!("{bucket}\0{name}\0{identity}");
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

// ---- values ----

pub(super) fn string(v: impl Into<String>) -> Value {
    Value {
        value_type: Some(ValueType::StringValue(v.into())),
    }
}

pub(super) fn integer(v: impl TryInto<i64>) -> Value {
    Value {
        value_type: Some(ValueType::IntegerValue(v.try_into().unwrap_or(i64::MAX))),
    }
}

pub(super) fn timestamp(t: Millis) -> Value {
    Value {
        value_type: Some(ValueType::TimestampValue(Timestamp {
            seconds: t.0.div_euclid(1000),
            nanos: (t.0.rem_euclid(1000) * 1_000_000) as i32,
        })),
    }
}

pub(super) fn get_str<'a>(f: &'a Fields, key: &str) -> Option<&'a str> {
    match f.get(key)?.value_type.as_ref()? {
        ValueType::StringValue(s) => Some(s),
        _ => None,
    }
}

pub(super) fn get_int(f: &Fields, key: &str) -> Option<i64> {
    match f.get(key)?.value_type.as_ref()? {
        ValueType::IntegerValue(n) => Some(*n),
        _ => None,
    }
}

pub(super) fn get_time(f: &Fields, key: &str) -> Option<Millis> {
    match f.get(key)?.value_type.as_ref()? {
        ValueType::TimestampValue(t) => {
            Some(Millis(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000))
        }
        _ => None,
    }
}

fn fields<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Fields {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
}

// ---- documents ----

/// A session document as read: its state, and its update time as the revision.
pub(super) fn session_from(doc: &Document) -> Option<Stored<Timestamp>> {
    let f = &doc.fields;
    let state = SessionState {
        record: SessionRecord {
            guid: SessionGuid::parse(get_str(f, "guid")?).ok()?,
            status: SessionStatus::parse(get_str(f, "status")?)?,
            environment: get_str(f, "environment").unwrap_or_default().to_owned(),
            chunk_count: get_int(f, "chunk_count").unwrap_or(0) as u64,
            first_chunk_time: get_str(f, "first_chunk_time")
                .unwrap_or_default()
                .to_owned(),
            last_chunk_time: get_str(f, "last_chunk_time").unwrap_or_default().to_owned(),
            last_chunk_at: get_time(f, "last_chunk_at").unwrap_or(Millis(0)),
            version: get_int(f, "version").unwrap_or(0) as u64,
            lease_until: get_time(f, "lease_until"),
            result_object: get_str(f, "result_object").map(str::to_owned),
            finalized_at: get_time(f, "finalized_at"),
            finalize_count: get_int(f, "finalize_count").unwrap_or(0) as u64,
        },
        claim_token: get_str(f, "claim_token").map(str::to_owned),
        claimed_version: get_int(f, "claimed_version").map(|v| v as u64),
        shard: get_int(f, SHARD_FIELD).map(|v| v as u32),
    };
    Some(Stored {
        state,
        // The emulator and the service always set it on a stored document.
        revision: doc.update_time.unwrap_or_default(),
    })
}

pub(super) fn session_fields(s: &SessionState, ttl: Duration) -> Fields {
    let r = &s.record;
    fields([
        ("guid", Some(string(r.guid.as_str()))),
        ("status", Some(string(r.status.as_str()))),
        ("environment", Some(string(&r.environment))),
        ("chunk_count", Some(integer(r.chunk_count))),
        ("first_chunk_time", Some(string(&r.first_chunk_time))),
        ("last_chunk_time", Some(string(&r.last_chunk_time))),
        ("last_chunk_at", Some(timestamp(r.last_chunk_at))),
        ("version", Some(integer(r.version))),
        ("finalize_count", Some(integer(r.finalize_count))),
        ("expire_at", Some(timestamp(expire_at(r, ttl)))),
        ("lease_until", r.lease_until.map(timestamp)),
        ("result_object", r.result_object.as_ref().map(string)),
        ("finalized_at", r.finalized_at.map(timestamp)),
        ("claim_token", s.claim_token.as_ref().map(string)),
        ("claimed_version", s.claimed_version.map(integer)),
        (SHARD_FIELD, s.shard.map(integer)),
    ])
}

/// When Firestore's TTL policy may delete a session document: `ttl` (the store's record
/// TTL) after its last chunk, or a tombstone's own expiry.
fn expire_at(r: &SessionRecord, ttl: Duration) -> Millis {
    match (r.status, r.lease_until) {
        (SessionStatus::Deleted, Some(until)) => until,
        _ => r.last_chunk_at.plus(ttl),
    }
}

pub(super) fn chunk_fields(c: &ChunkRecord, now: Millis, ttl: Duration) -> Fields {
    fields([
        ("bucket", Some(string(&c.bucket))),
        ("name", Some(string(&c.name))),
        ("generation", Some(string(&c.generation))),
        ("content_hash", Some(string(&c.content_hash))),
        ("timestamp", Some(string(&c.timestamp))),
        ("environment", Some(string(&c.environment))),
        ("size", Some(integer(c.size))),
        ("event_count", Some(integer(c.event_count))),
        ("recorded_at", Some(timestamp(now))),
        ("expire_at", Some(timestamp(now.plus(ttl)))),
    ])
}

pub(super) fn chunk_from(guid: &SessionGuid, f: &Fields) -> ChunkRecord {
    let s = |k| get_str(f, k).unwrap_or_default().to_owned();
    ChunkRecord {
        guid: guid.clone(),
        bucket: s("bucket"),
        name: s("name"),
        generation: s("generation"),
        timestamp: s("timestamp"),
        environment: s("environment"),
        size: get_int(f, "size").unwrap_or(0) as u64,
        event_count: get_int(f, "event_count").unwrap_or(0) as u64,
        content_hash: s("content_hash"),
    }
}

pub(super) fn reject_fields(r: &RejectRecord, now: Millis, ttl: Duration) -> Fields {
    fields([
        ("bucket", Some(string(&r.bucket))),
        ("name", Some(string(&r.name))),
        ("generation", Some(string(&r.generation))),
        ("kind", Some(string(&r.kind))),
        ("reason", Some(string(&r.reason))),
        (
            REJECT_SESSION_FIELD,
            r.session_guid.as_ref().map(|g| string(g.as_str())),
        ),
        ("recorded_at", Some(timestamp(now))),
        ("expire_at", Some(timestamp(now.plus(ttl)))),
    ])
}

pub(super) fn reject_from(f: &Fields) -> RejectRecord {
    let s = |k| get_str(f, k).unwrap_or_default().to_owned();
    RejectRecord {
        bucket: s("bucket"),
        name: s("name"),
        generation: s("generation"),
        kind: s("kind"),
        reason: s("reason"),
        session_guid: get_str(f, REJECT_SESSION_FIELD).and_then(|g| SessionGuid::parse(g).ok()),
    }
}

/// The reject field naming the session an object belongs to; erasure queries it (its
/// automatic single-field index: a guid is no sequential value).
pub(super) const REJECT_SESSION_FIELD: &str = "session_guid";

/// A delete of one document, with a precondition (`None`: whether or not it exists).
pub(super) fn delete(name: String, condition: Option<ConditionType>) -> Write {
    Write {
        operation: Some(write::Operation::Delete(name)),
        current_document: condition.map(|c| Precondition {
            condition_type: Some(c),
        }),
        ..Default::default()
    }
}

/// A write of a whole document, with a precondition.
pub(super) fn put(name: String, fields: Fields, condition: ConditionType) -> Write {
    Write {
        operation: Some(write::Operation::Update(Document {
            name,
            fields,
            ..Default::default()
        })),
        current_document: Some(Precondition {
            condition_type: Some(condition),
        }),
        ..Default::default()
    }
}

/// Only if the document is still at the revision read (or still absent).
pub(super) fn unchanged(expected: Option<&Timestamp>) -> ConditionType {
    match expected {
        Some(t) => ConditionType::UpdateTime(*t),
        None => ConditionType::Exists(false),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Group, SEQUENTIAL_FIELDS};
    use super::*;
    use crate::index::RECORD_TTL;

    fn every_field_set() -> SessionState {
        SessionState {
            record: SessionRecord {
                guid: SessionGuid::parse("g-1").unwrap(),
                status: SessionStatus::Finalizing,
                environment: "e".into(),
                chunk_count: 3,
                first_chunk_time: "2025-05-02T12:00:00Z".into(),
                last_chunk_time: "2025-05-02T12:00:09Z".into(),
                last_chunk_at: Millis(1_700_000_000_123),
                version: 3,
                lease_until: Some(Millis(1_700_000_060_000)),
                result_object: Some("r.json".into()),
                finalized_at: Some(Millis(1_700_000_001_000)),
                finalize_count: 1,
            },
            claim_token: Some("t".into()),
            claimed_version: Some(3),
            shard: Some(17),
        }
    }

    #[test]
    fn a_session_document_reads_back_as_written() {
        let state = every_field_set();
        let doc = Document {
            name: "x".into(),
            fields: session_fields(&state, RECORD_TTL),
            update_time: Some(Timestamp {
                seconds: 5,
                nanos: 7,
            }),
            ..Default::default()
        };
        let stored = session_from(&doc).unwrap();
        assert_eq!(stored.state, state);
        assert_eq!(
            stored.revision,
            Timestamp {
                seconds: 5,
                nanos: 7
            }
        );
    }

    /// Every timestamp the adapter writes on the write-heavy documents rises with time, so its
    /// single-field index would be one sequential hot range: each must be exempted (the list
    /// Terraform is checked against by `tests/tests/infra_gcp.rs`).
    #[test]
    fn every_timestamp_field_is_listed_as_sequential() {
        let listed = |group: Group, field: &str| {
            SEQUENTIAL_FIELDS
                .iter()
                .any(|(g, f)| *g == group && *f == field)
        };
        let chunk = ChunkRecord {
            guid: SessionGuid::parse("g-1").unwrap(),
            bucket: "b".into(),
            name: "n".into(),
            generation: "1".into(),
            timestamp: "t".into(),
            environment: "e".into(),
            size: 1,
            event_count: 1,
            content_hash: "h".into(),
        };
        let documents = [
            (
                Group::Sessions,
                session_fields(&every_field_set(), RECORD_TTL),
            ),
            (Group::Chunks, chunk_fields(&chunk, Millis(1), RECORD_TTL)),
        ];
        let mut checked = 0;
        for (group, fields) in documents {
            for (name, value) in fields {
                if matches!(value.value_type, Some(ValueType::TimestampValue(_))) {
                    assert!(listed(group, &name), "{group:?}.{name} is a timestamp");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 6, "sessions: 4 timestamps, chunks: 2");
    }
}
