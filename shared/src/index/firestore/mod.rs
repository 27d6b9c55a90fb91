//! The session index in Cloud Firestore (native mode), for the GCP deployment.
//!
//! Documents:
//! - `<collection>/{guid}`: the session (status, counts, chunk times, lease, claim token,
//!   result object, its idle shard `shard`, `expire_at` for a TTL policy);
//! - `<collection>/{guid}/chunks/{hash}`: one per chunk, the id hashed from bucket + name +
//!   [`ChunkRecord::identity`](crate::index::ChunkRecord::identity), created only if absent,
//!   so a redelivered event changes nothing;
//! - `<collection>_rejected/{hash}`: refused objects with their reason;
//! - `<collection>_meta/shards`: the shard high-water mark ([`crate::index::shard`]);
//! - `<collection>_meta/bookmark-<name>`: a bulk job's bookmark (the scheduled reconcile's
//!   cursor, [`crate::index::RECONCILE_BOOKMARK`]).
//!
//! The store only reads a session with its `update_time` and writes it back conditioned on
//! that time (or on its absence); recording a chunk commits the chunk document and the
//! session document in one atomic `Commit`, so neither exists without the other. The
//! protocol is [`crate::index::driver`]'s. One session document is written a handful of times
//! in its life (per chunk, per claim, per completion), well under Firestore's sustained one
//! write per second per document.
//!
//! ## Indexes
//! Firestore sustains about 500 writes/s into one sequential index range. Every chunk write
//! moves its session's `last_chunk_at` to "now", so a `(status, last_chunk_at)` index would
//! put every write at the end of one range. The sweep queries are instead
//! `shard == s AND status == "open" AND last_chunk_at < T ORDER BY last_chunk_at` and the
//! same over `lease_until` for expired leases, one per shard, on composite indexes led by the
//! shard ([`COMPOSITE_INDEXES`]); the session listing asks each shard's `(shard,
//! last_chunk_at DESC)` index. And the single-field indexes Firestore would build on its own
//! for every field are exempted for each sequential field of the write-heavy documents
//! ([`SEQUENTIAL_FIELDS`]): no query uses them, and each would be a hot range. Terraform
//! declares both (`infra/gcp/modules/rrstitch/firestore.tf`, checked by
//! `tests/tests/infra_gcp.rs`).
//!
//! The client speaks gRPC through the `firestore` crate's authenticated channel, using the
//! Firestore v1 protocol messages directly: every operation here is one RPC, and the
//! preconditions and atomic commits are the protocol's own. The connection is made on first
//! use, so a function starts (and answers 503) while Firestore is unreachable.

mod adapter;
mod client;
mod codec;

pub use client::FirestoreStore;

use crate::index::driver::Driver;

/// The session index in Firestore.
pub type FirestoreIndex = Driver<FirestoreStore>;

/// The session field holding its idle shard.
pub const SHARD_FIELD: &str = crate::index::codec::SHARD_FIELD;

/// The composite indexes the store's queries need, each as (field, order) in index order:
/// the two sweep queries and the listing. Terraform declares exactly these.
pub const COMPOSITE_INDEXES: [&[(&str, &str)]; 3] = [
    &[
        (SHARD_FIELD, "ASCENDING"),
        ("status", "ASCENDING"),
        ("last_chunk_at", "ASCENDING"),
    ],
    &[
        (SHARD_FIELD, "ASCENDING"),
        ("status", "ASCENDING"),
        ("lease_until", "ASCENDING"),
    ],
    &[(SHARD_FIELD, "ASCENDING"), ("last_chunk_at", "DESCENDING")],
];

/// Which collection (group) a field lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `<collection>`.
    Sessions,
    /// The `chunks` subcollections.
    Chunks,
    /// `<collection>_rejected`.
    Rejected,
}

/// Fields whose values rise with time, written at chunk rate: each one's automatic
/// single-field index would be a sequential hot range, and no query uses it, so Terraform
/// exempts each. Timestamps (checked against what the codec writes), name times, object names
/// (which are upload times) and GCS generations (microsecond timestamps).
///
/// The rejected objects' `recorded_at` keeps its index: the rejected listing orders by it,
/// and rejects are written only for refused uploads.
pub const SEQUENTIAL_FIELDS: &[(Group, &str)] = &[
    (Group::Sessions, "last_chunk_at"),
    (Group::Sessions, "lease_until"),
    (Group::Sessions, "finalized_at"),
    (Group::Sessions, "expire_at"),
    (Group::Sessions, "first_chunk_time"),
    (Group::Sessions, "last_chunk_time"),
    (Group::Chunks, "recorded_at"),
    (Group::Chunks, "expire_at"),
    (Group::Chunks, "name"),
    (Group::Chunks, "generation"),
    (Group::Chunks, "timestamp"),
    (Group::Rejected, "expire_at"),
];

/// The subcollection of a session's chunk documents.
pub const CHUNKS_COLLECTION: &str = "chunks";
/// Appended to the sessions collection's name for the rejected objects' collection.
pub const REJECTED_SUFFIX: &str = "_rejected";
/// Appended to the sessions collection's name for the index's own bookkeeping.
pub const META_SUFFIX: &str = "_meta";
/// The bookkeeping document holding the shard mark, and its field.
const SHARD_MARK_DOC: &str = "shards";
const SHARD_MARK_FIELD: &str = "shards";
/// Bookmarks live beside the shard mark, one document each: `bookmark-<name>`.
const BOOKMARK_DOC_PREFIX: &str = "bookmark-";
/// The field holding a bookmark's value.
const BOOKMARK_FIELD: &str = "value";

/// Where the index lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirestoreConfig {
    pub project: String,
    /// `(default)` unless a named database was created.
    pub database: String,
    /// The sessions collection; rejected objects go to `<collection>_rejected`.
    pub collection: String,
    /// An emulator's `host:port`; `None` for the service (or `FIRESTORE_EMULATOR_HOST`).
    pub emulator: Option<String>,
}

impl Driver<FirestoreStore> {
    /// An index in `config`'s database; nothing is contacted until the first operation.
    pub fn new(config: FirestoreConfig) -> Self {
        Driver::over(FirestoreStore::new(config))
    }

    /// An index on the emulator at `host` (`127.0.0.1:8080`), whatever the environment says.
    pub fn on_emulator(host: &str, project: &str, collection: &str) -> Self {
        Self::new(FirestoreConfig {
            project: project.to_owned(),
            database: "(default)".to_owned(),
            collection: collection.to_owned(),
            emulator: Some(host.to_owned()),
        })
    }
}
