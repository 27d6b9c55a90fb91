//! Sessions, chunks and rejected objects as DynamoDB items, and back.
//!
//! The fields are the shared ones ([`crate::index::codec`]); this module is DynamoDB's value
//! encoding of them (strings, and numbers for counts and millisecond times) and the keys a
//! single-table design adds around them: `pk`/`sk`, the revision `rev`, the idle index's
//! keys, the reject pointers and `expire_at` in seconds for DynamoDB's TTL.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{IDLE_PK, IDLE_SK};
use crate::engine::SessionGuid;
use crate::index::codec::{self, expire_at, object_hash, Codec, SHARD_FIELD};
use crate::index::protocol::SessionState;
use crate::index::store::{Due, Stored};
use crate::index::{ChunkRecord, RejectRecord, SessionStatus};
use crate::time::Millis;

pub(super) type Item = codec::Fields<Dynamo>;

/// DynamoDB's value encoding of the shared record fields: counts and times are numbers.
pub(super) enum Dynamo {}

impl Codec for Dynamo {
    type Value = AttributeValue;
    const LAST_CHUNK_AT: &'static str = "last_chunk_ms";

    fn text(v: &str) -> AttributeValue {
        s(v)
    }
    fn count(v: u64) -> AttributeValue {
        n(v)
    }
    fn time(t: Millis) -> AttributeValue {
        n(t.0)
    }
    fn as_text(v: &AttributeValue) -> Option<&str> {
        v.as_s().ok().map(String::as_str)
    }
    fn as_count(v: &AttributeValue) -> Option<i64> {
        v.as_n().ok().and_then(|v| v.parse().ok())
    }
    fn as_time(v: &AttributeValue) -> Option<Millis> {
        Self::as_count(v).map(Millis)
    }
}

/// The sort key of a session item.
pub(super) const SESSION_SK: &str = "SESSION";
/// The key of the shard-mark item.
pub(super) const META_PK: &str = "META";
pub(super) const SHARD_MARK_SK: &str = "SHARDS";
pub(super) const SHARD_MARK_ATTR: &str = "shards";
/// The attribute holding a bookmark's value, in its `META` item.
pub(super) const BOOKMARK_ATTR: &str = "value";

/// The sort key of the bookmark `name`'s item (under [`META_PK`]).
pub(super) fn bookmark_sk(name: &str) -> String {
    format!("BOOKMARK#{name}")
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key).and_then(Dynamo::as_text)
}

pub(super) fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key).and_then(Dynamo::as_count)
}

/// `item` with the table's own attributes (keys, revision, expiry) added.
fn with<const N: usize>(mut item: Item, keys: [(&str, AttributeValue); N]) -> Item {
    item.extend(keys.map(|(k, v)| (k.to_owned(), v)));
    item
}

pub(super) fn session_pk(guid: &SessionGuid) -> String {
    format!("S#{guid}")
}

/// The guid back from a session item's `pk` (all the idle index projects).
pub(super) fn guid_of_pk(pk: &str) -> Option<SessionGuid> {
    SessionGuid::parse(pk.strip_prefix("S#")?).ok()
}

/// The idle index's partition for `due` in `shard`: `open#7`, `finalizing#7`. Status and
/// shard together, so each partition is one sweep query's range and no partition takes more
/// than one shard's share of the writes.
pub(super) fn idle_pk(due: Due, shard: u32) -> String {
    format!("{}#{shard}", due.status().as_str())
}

/// A session item as read: its state, and its revision `rev`.
pub(super) fn session_from(item: &Item) -> Option<Stored<i64>> {
    Some(Stored {
        state: codec::session_from::<Dynamo>(item)?,
        revision: get_n(item, "rev").unwrap_or(0),
    })
}

/// The whole item for `state` at revision `rev`. An open or finalizing session carries the
/// idle index's keys; a finalized one does not, which takes it out of that sparse index.
pub(super) fn session_item(state: &SessionState, rev: i64, ttl: Duration) -> Item {
    let r = &state.record;
    let shard = state.shard.unwrap_or(0);
    let item = codec::session_fields::<Dynamo>(state);
    let keys = [
        ("pk", s(session_pk(&r.guid))),
        ("sk", s(SESSION_SK)),
        // Always present: an unstamped session is in shard 0.
        (SHARD_FIELD, n(shard)),
        ("rev", n(rev)),
        ("expire_at", n(expire_at(r, ttl).0 / 1000)),
    ];
    let mut item = with(item, keys);
    let due = match r.status {
        SessionStatus::Open => Some((Due::Idle, r.last_chunk_at)),
        // A finalizing session always has a lease; without one it would be due at once.
        SessionStatus::Finalizing => Some((Due::LeaseExpired, r.lease_until.unwrap_or(Millis(0)))),
        // Counted by `status`, never swept: the sweep queries open and finalizing partitions.
        SessionStatus::Deleted => Some((Due::Tombstone, r.lease_until.unwrap_or(Millis(0)))),
        SessionStatus::Finalized => None,
    };
    if let Some((due, at)) = due {
        item.insert(IDLE_PK.to_owned(), s(idle_pk(due, shard)));
        item.insert(IDLE_SK.to_owned(), n(at.0));
    }
    item
}

/// The sort key of a chunk item, under its session's partition.
pub(super) fn chunk_sk(c: &ChunkRecord) -> String {
    format!("C#{}", object_hash(&c.bucket, &c.name, c.identity()))
}

pub(super) fn chunk_item(c: &ChunkRecord, now: Millis, ttl: Duration) -> Item {
    let item = codec::chunk_fields::<Dynamo>(c, now);
    let keys = [
        ("pk", s(session_pk(&c.guid))),
        ("sk", s(chunk_sk(c))),
        ("expire_at", n(now.plus(ttl).0 / 1000)),
    ];
    with(item, keys)
}

pub(super) fn chunk_from(guid: &SessionGuid, item: &Item) -> ChunkRecord {
    codec::chunk_from::<Dynamo>(guid, item)
}

/// The sort key of a reject item (its partition is [`reject_pk`]).
pub(super) const REJECT_SK: &str = "REJECT";
/// What the sort keys of a session's reject pointers start with.
pub(super) const REJECT_POINTER_PREFIX: &str = "R#";

/// The partition of one refused object's item: `R#<hash of bucket, name, generation>`.
pub(super) fn reject_pk(bucket: &str, name: &str, generation: &str) -> String {
    format!(
        "{REJECT_POINTER_PREFIX}{}",
        object_hash(bucket, name, generation)
    )
}

/// How many partitions of the idle index the reject items are spread over by time: a flood
/// of refused uploads (all written "now") then lands on 16 partitions rather than one, so it
/// cannot throttle the index writes of the chunks that matter.
pub(super) const REJECT_PARTITIONS: u32 = 16;

/// The idle-index partition of the rejects whose own partition key hashes to `p`.
pub(super) fn reject_idle_pk(p: u32) -> String {
    format!("rejected#{p}")
}

pub(super) fn reject_item(r: &RejectRecord, now: Millis, ttl: Duration) -> Item {
    let item = codec::reject_fields::<Dynamo>(r, now);
    let pk = reject_pk(&r.bucket, &r.name, &r.generation);
    let p = (xxhash_rust::xxh3::xxh3_64(pk.as_bytes()) % u64::from(REJECT_PARTITIONS)) as u32;
    let keys = [
        ("pk", s(pk)),
        ("sk", s(REJECT_SK)),
        ("expire_at", n(now.plus(ttl).0 / 1000)),
        // Ranged by when it was refused, for `status`'s last 24 hours (`rejected_since`).
        (IDLE_PK, s(reject_idle_pk(p))),
        (IDLE_SK, n(now.0)),
    ];
    with(item, keys)
}

/// The copy of a reject item under the session it names (`pk` the session's, `sk` the
/// reject's own partition key), so erasing the session finds its refused objects with one
/// query of its partition rather than a scan of the table; `None` when it names none.
pub(super) fn reject_pointer(r: &RejectRecord, now: Millis, ttl: Duration) -> Option<Item> {
    let guid = r.session_guid.as_ref()?;
    let mut item = reject_item(r, now, ttl);
    let own = item.insert("pk".to_owned(), s(session_pk(guid)))?;
    item.insert("sk".to_owned(), own);
    // The reject is in the time range once, by its own item.
    item.remove(IDLE_PK);
    item.remove(IDLE_SK);
    Some(item)
}

pub(super) fn reject_from(item: &Item) -> (i64, RejectRecord) {
    (
        get_n(item, "recorded_at").unwrap_or(0),
        codec::reject_from::<Dynamo>(item),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{SessionRecord, RECORD_TTL};

    fn state(status: SessionStatus) -> SessionState {
        SessionState {
            record: SessionRecord {
                guid: SessionGuid::parse("g-1").unwrap(),
                status,
                environment: "e".into(),
                chunk_count: 2,
                first_chunk_time: "a".into(),
                last_chunk_time: "b".into(),
                last_chunk_at: Millis(1_000),
                version: 2,
                lease_until: (status == SessionStatus::Finalizing).then_some(Millis(9_000)),
                result_object: None,
                finalized_at: None,
                finalize_count: 0,
                recorded_bytes: 4096,
            },
            claim_token: (status == SessionStatus::Finalizing).then(|| "t".to_owned()),
            claimed_version: (status == SessionStatus::Finalizing).then_some(2),
            shard: Some(13),
        }
    }

    #[test]
    fn live_sessions_are_in_their_shards_idle_partition_and_finalized_ones_leave_it() {
        let open = session_item(&state(SessionStatus::Open), 4, RECORD_TTL);
        assert_eq!(get_s(&open, IDLE_PK), Some("open#13"));
        assert_eq!(get_n(&open, IDLE_SK), Some(1_000), "ranged by arrival");
        let finalizing = session_item(&state(SessionStatus::Finalizing), 5, RECORD_TTL);
        assert_eq!(get_s(&finalizing, IDLE_PK), Some("finalizing#13"));
        assert_eq!(
            get_n(&finalizing, IDLE_SK),
            Some(9_000),
            "ranged by lease expiry"
        );
        let finalized = session_item(&state(SessionStatus::Finalized), 6, RECORD_TTL);
        assert!(!finalized.contains_key(IDLE_PK), "{finalized:?}");
        assert!(!finalized.contains_key(IDLE_SK), "{finalized:?}");
    }

    /// The TTL the store was given (`RRSTITCH_INDEX_TTL_DAYS`, from the chunk retention), not
    /// a constant, sets every item's `expire_at`; a tombstone keeps its own expiry.
    #[test]
    fn items_expire_after_the_configured_ttl() {
        let ttl = Duration::from_secs(31 * 86_400);
        let now = Millis(5_000_000);
        let open = session_item(&state(SessionStatus::Open), 1, ttl);
        // last_chunk_at is 1 000 ms in `state`.
        assert_eq!(
            get_n(&open, "expire_at"),
            Some((1_000 + 31 * 86_400_000) / 1000)
        );
        let chunk =
            crate::index::conformance::chunk(&SessionGuid::parse("g-1").unwrap(), "n.json", "1");
        let expire = |item: &Item| get_n(item, "expire_at");
        assert_eq!(
            expire(&chunk_item(&chunk, now, ttl)),
            Some(now.plus(ttl).0 / 1000)
        );
        assert_ne!(
            expire(&chunk_item(&chunk, now, ttl)),
            expire(&chunk_item(&chunk, now, RECORD_TTL)),
        );
        let mut tomb = state(SessionStatus::Deleted);
        tomb.record.lease_until = Some(Millis(77_000));
        assert_eq!(expire(&session_item(&tomb, 1, ttl)), Some(77));
    }

    #[test]
    fn a_session_item_reads_back_as_written() {
        for status in [
            SessionStatus::Open,
            SessionStatus::Finalizing,
            SessionStatus::Finalized,
        ] {
            let want = state(status);
            let got = session_from(&session_item(&want, 7, RECORD_TTL)).unwrap();
            assert_eq!(got.state, want);
            assert_eq!(got.revision, 7);
        }
        assert_eq!(
            guid_of_pk(&session_pk(&SessionGuid::parse("g-1").unwrap())),
            Some(SessionGuid::parse("g-1").unwrap())
        );
        assert_eq!(guid_of_pk("R#abc"), None);
    }
}
