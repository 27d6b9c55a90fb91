//! Sessions, chunks and rejected objects as Firestore documents, and back.
//!
//! The fields are the shared ones ([`crate::index::codec`]); this module is Firestore's
//! value encoding of them (strings, integers, timestamps), the expiry its TTL policy reads,
//! and the writes and preconditions the adapter commits.

use std::time::Duration;

use gcloud_sdk::google::firestore::v1::{
    precondition::ConditionType, value::ValueType, write, Document, Precondition, Value, Write,
};
use gcloud_sdk::prost_types::Timestamp;

use crate::engine::SessionGuid;
use crate::index::codec::{self, expire_at, Codec};
use crate::index::protocol::SessionState;
use crate::index::store::Stored;
use crate::index::{ChunkRecord, RejectRecord};
use crate::time::Millis;

pub(super) type Fields = codec::Fields<Firestore>;

pub(super) use crate::index::codec::{object_hash, REJECT_SESSION_FIELD};

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

pub(super) fn get_int(f: &Fields, key: &str) -> Option<i64> {
    f.get(key).and_then(Firestore::as_count)
}

pub(super) fn get_time(f: &Fields, key: &str) -> Option<Millis> {
    f.get(key).and_then(Firestore::as_time)
}

/// Firestore's value encoding of the shared record fields ([`crate::index::codec`]).
pub(super) enum Firestore {}

impl Codec for Firestore {
    type Value = Value;
    const LAST_CHUNK_AT: &'static str = "last_chunk_at";

    fn text(v: &str) -> Value {
        string(v)
    }
    fn count(v: u64) -> Value {
        integer(v)
    }
    fn time(t: Millis) -> Value {
        timestamp(t)
    }
    fn as_text(v: &Value) -> Option<&str> {
        match v.value_type.as_ref()? {
            ValueType::StringValue(s) => Some(s),
            _ => None,
        }
    }
    fn as_count(v: &Value) -> Option<i64> {
        match v.value_type.as_ref()? {
            ValueType::IntegerValue(n) => Some(*n),
            _ => None,
        }
    }
    fn as_time(v: &Value) -> Option<Millis> {
        match v.value_type.as_ref()? {
            ValueType::TimestampValue(t) => {
                Some(Millis(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000))
            }
            _ => None,
        }
    }
}

// ---- documents ----

/// A session document as read: its state, and its update time as the revision.
pub(super) fn session_from(doc: &Document) -> Option<Stored<Timestamp>> {
    Some(Stored {
        state: codec::session_from::<Firestore>(&doc.fields)?,
        // The emulator and the service always set it on a stored document.
        revision: doc.update_time.unwrap_or_default(),
    })
}

/// A session document's fields, with the expiry Firestore's TTL policy deletes it by.
pub(super) fn session_fields(s: &SessionState, ttl: Duration) -> Fields {
    let mut f = codec::session_fields::<Firestore>(s);
    f.insert("expire_at".to_owned(), timestamp(expire_at(&s.record, ttl)));
    f
}

pub(super) fn chunk_fields(c: &ChunkRecord, now: Millis, ttl: Duration) -> Fields {
    let mut f = codec::chunk_fields::<Firestore>(c, now);
    f.insert("expire_at".to_owned(), timestamp(now.plus(ttl)));
    f
}

pub(super) fn chunk_from(guid: &SessionGuid, f: &Fields) -> ChunkRecord {
    codec::chunk_from::<Firestore>(guid, f)
}

pub(super) fn reject_fields(r: &RejectRecord, now: Millis, ttl: Duration) -> Fields {
    let mut f = codec::reject_fields::<Firestore>(r, now);
    f.insert("expire_at".to_owned(), timestamp(now.plus(ttl)));
    f
}

pub(super) fn reject_from(f: &Fields) -> RejectRecord {
    codec::reject_from::<Firestore>(f)
}

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
    use crate::index::{SessionRecord, SessionStatus, RECORD_TTL};

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
                recorded_bytes: 4096,
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
