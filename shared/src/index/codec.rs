//! The index's three records (session, chunk, reject) as named fields, for the document
//! stores (Firestore, DynamoDB).
//!
//! Both stores keep a record as a map from field names to typed values; what differs is only
//! how a text, a count or a time is encoded (a Firestore `Value`, a DynamoDB
//! `AttributeValue`). The field names, which fields are optional and how a missing one reads
//! back are one decision, so they live here once: each backend implements [`Codec`] (its
//! value encoding) and adds its own keys (partition keys, revisions, expiry) around these
//! fields. The names are stored data: changing one strands every record already written.

use std::collections::HashMap;
use std::time::Duration;

use super::protocol::SessionState;
use super::{ChunkRecord, RejectRecord, SessionRecord, SessionStatus};
use crate::engine::SessionGuid;
use crate::time::Millis;

/// A record as the backend stores it: field name to value.
pub(crate) type Fields<C> = HashMap<String, <C as Codec>::Value>;

/// How one backend encodes the three kinds of value a record holds.
pub(crate) trait Codec {
    type Value;
    /// The name `last_chunk_at` is stored under (the backends chose differently).
    const LAST_CHUNK_AT: &'static str;

    fn text(v: &str) -> Self::Value;
    fn count(v: u64) -> Self::Value;
    fn time(t: Millis) -> Self::Value;

    fn as_text(v: &Self::Value) -> Option<&str>;
    fn as_count(v: &Self::Value) -> Option<i64>;
    fn as_time(v: &Self::Value) -> Option<Millis>;
}

/// The field naming the session a refused object belongs to; erasure queries it.
pub(crate) const REJECT_SESSION_FIELD: &str = "session_guid";
/// The field holding a session's idle-index shard.
pub(crate) const SHARD_FIELD: &str = "shard";

/// A record's id within its group: a hash of the bucket, name and identity (generation or
/// content hash), fixed-length whatever the name.
pub(crate) fn object_hash(bucket: &str, name: &str, identity: &str) -> String {
    let key = format!("{bucket}\0{name}\0{identity}");
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

/// When the store's TTL may delete a session: `ttl` (the store's record TTL) after its last
/// chunk, or a tombstone's own expiry.
pub(crate) fn expire_at(r: &SessionRecord, ttl: Duration) -> Millis {
    match (r.status, r.lease_until) {
        (SessionStatus::Deleted, Some(until)) => until,
        _ => r.last_chunk_at.plus(ttl),
    }
}

/// Reads fields of one record.
struct Read<'a, C: Codec>(&'a Fields<C>);

impl<C: Codec> Read<'_, C> {
    fn text(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(C::as_text)
    }
    /// A text field, empty when missing.
    fn string(&self, k: &str) -> String {
        self.text(k).unwrap_or_default().to_owned()
    }
    fn count(&self, k: &str) -> Option<i64> {
        self.0.get(k).and_then(C::as_count)
    }
    /// A count field, 0 when missing.
    fn count_or_0(&self, k: &str) -> u64 {
        self.count(k).unwrap_or(0) as u64
    }
    fn time(&self, k: &str) -> Option<Millis> {
        self.0.get(k).and_then(C::as_time)
    }
}

/// The fields given a value (`None` ones are left out).
fn fields<C: Codec, const N: usize>(pairs: [(&str, Option<C::Value>); N]) -> Fields<C> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
}

/// A session's fields (without the backend's keys, revision and expiry).
pub(crate) fn session_fields<C: Codec>(s: &SessionState) -> Fields<C> {
    let r = &s.record;
    fields::<C, 16>([
        ("guid", Some(C::text(r.guid.as_str()))),
        ("status", Some(C::text(r.status.as_str()))),
        ("environment", Some(C::text(&r.environment))),
        ("chunk_count", Some(C::count(r.chunk_count))),
        ("first_chunk_time", Some(C::text(&r.first_chunk_time))),
        ("last_chunk_time", Some(C::text(&r.last_chunk_time))),
        (C::LAST_CHUNK_AT, Some(C::time(r.last_chunk_at))),
        ("version", Some(C::count(r.version))),
        ("finalize_count", Some(C::count(r.finalize_count))),
        ("lease_until", r.lease_until.map(C::time)),
        ("result_object", r.result_object.as_deref().map(C::text)),
        ("finalized_at", r.finalized_at.map(C::time)),
        ("claim_token", s.claim_token.as_deref().map(C::text)),
        ("claimed_version", s.claimed_version.map(C::count)),
        (SHARD_FIELD, s.shard.map(|n| C::count(n.into()))),
        ("recorded_bytes", Some(C::count(r.recorded_bytes))),
    ])
}

/// A session back from its fields; `None` without a valid guid or status.
pub(crate) fn session_from<C: Codec>(f: &Fields<C>) -> Option<SessionState> {
    let f = Read::<C>(f);
    Some(SessionState {
        record: SessionRecord {
            guid: SessionGuid::parse(f.text("guid")?).ok()?,
            status: SessionStatus::parse(f.text("status")?)?,
            environment: f.string("environment"),
            chunk_count: f.count_or_0("chunk_count"),
            first_chunk_time: f.string("first_chunk_time"),
            last_chunk_time: f.string("last_chunk_time"),
            last_chunk_at: f.time(C::LAST_CHUNK_AT).unwrap_or(Millis(0)),
            version: f.count_or_0("version"),
            lease_until: f.time("lease_until"),
            result_object: f.text("result_object").map(str::to_owned),
            finalized_at: f.time("finalized_at"),
            finalize_count: f.count_or_0("finalize_count"),
            // Missing on sessions written before the quota existed: they count from here.
            recorded_bytes: f.count_or_0("recorded_bytes"),
        },
        claim_token: f.text("claim_token").map(str::to_owned),
        claimed_version: f.count("claimed_version").map(|v| v as u64),
        shard: f.count(SHARD_FIELD).map(|v| v as u32),
    })
}

/// A chunk's fields, recorded at `now` (its guid is the backend's key).
pub(crate) fn chunk_fields<C: Codec>(c: &ChunkRecord, now: Millis) -> Fields<C> {
    fields::<C, 9>([
        ("bucket", Some(C::text(&c.bucket))),
        ("name", Some(C::text(&c.name))),
        ("generation", Some(C::text(&c.generation))),
        ("content_hash", Some(C::text(&c.content_hash))),
        ("timestamp", Some(C::text(&c.timestamp))),
        ("environment", Some(C::text(&c.environment))),
        ("size", Some(C::count(c.size))),
        ("event_count", Some(C::count(c.event_count))),
        ("recorded_at", Some(C::time(now))),
    ])
}

/// A chunk of `guid` back from its fields.
pub(crate) fn chunk_from<C: Codec>(guid: &SessionGuid, f: &Fields<C>) -> ChunkRecord {
    let f = Read::<C>(f);
    ChunkRecord {
        guid: guid.clone(),
        bucket: f.string("bucket"),
        name: f.string("name"),
        generation: f.string("generation"),
        timestamp: f.string("timestamp"),
        environment: f.string("environment"),
        size: f.count_or_0("size"),
        event_count: f.count_or_0("event_count"),
        content_hash: f.string("content_hash"),
    }
}

/// A refused object's fields, recorded at `now`.
pub(crate) fn reject_fields<C: Codec>(r: &RejectRecord, now: Millis) -> Fields<C> {
    fields::<C, 8>([
        ("bucket", Some(C::text(&r.bucket))),
        ("name", Some(C::text(&r.name))),
        ("generation", Some(C::text(&r.generation))),
        ("kind", Some(C::text(&r.kind))),
        ("reason", Some(C::text(&r.reason))),
        (
            REJECT_SESSION_FIELD,
            r.session_guid.as_ref().map(|g| C::text(g.as_str())),
        ),
        ("recorded_at", Some(C::time(now))),
        ("size", (r.size > 0).then(|| C::count(r.size))),
    ])
}

/// A refused object back from its fields.
pub(crate) fn reject_from<C: Codec>(f: &Fields<C>) -> RejectRecord {
    let f = Read::<C>(f);
    RejectRecord {
        bucket: f.string("bucket"),
        name: f.string("name"),
        generation: f.string("generation"),
        kind: f.string("kind"),
        reason: f.string("reason"),
        session_guid: f
            .text(REJECT_SESSION_FIELD)
            .and_then(|g| SessionGuid::parse(g).ok()),
        size: f.count_or_0("size"),
    }
}
