//! The session index port: which chunks each session has, and who is finalizing what.
//!
//! ## The model
//! A *session* is `open` while chunks arrive, `finalizing` while one finalizer holds it, and
//! `finalized` once its result is written. A *chunk record* is keyed by bucket + object name +
//! content (the generation where the content is unknown: [`ChunkRecord::identity`]), so
//! recording the same upload twice (a redelivered event, or the same bytes uploaded again
//! under the same name) changes nothing, while
//! a new chunk bumps the session's `version` and its `last_chunk_at` (arrival time, which is
//! what "idle" is measured against) and re-opens a finalized session.
//!
//! ## The per-session quota
//! A session also keeps the sum of its recorded chunks' sizes ([`SessionRecord::recorded_bytes`]).
//! [`SessionIndex::record_chunk_within`] refuses a chunk that would take that sum past a
//! quota (`recorded_bytes + size > max_bytes`: a chunk that would cross it is refused whole,
//! so a session never holds more than the quota) and answers [`Recorded::OverQuota`]. The
//! decision is the protocol's ([`protocol::record`]), made on the same read the chunk's
//! conditional write is checked against, so it is exact under any number of concurrent
//! ingests of one session, exactly as claims are. A refused chunk writes nothing; a
//! redelivery of a chunk recorded before stays [`Recorded::AlreadyKnown`] even once the
//! session is full, and bytes only grow, so a redelivery of a refused chunk is refused again.
//!
//! ## The claim/lease protocol
//! A finalizer first *claims* a session: atomically, `open` (or `finalizing` with an expired
//! lease) becomes `finalizing` with a fresh lease and a random token, and the claim remembers
//! the session `version` it saw. It then stitches every chunk the index lists and calls
//! *complete* with its claim:
//! - token still ours and version unchanged → `finalized`;
//! - token still ours but the version moved (a chunk landed mid-stitch) → back to `open`, so
//!   the next sweep stitches again with the new chunk;
//! - token not ours (our lease expired and another finalizer took over) → nothing changes;
//!   the newer claim stitches the session, and the fence below keeps our older stitch from
//!   replacing its result.
//!
//! ## Fencing the result
//! A lease is only a promise about time, and a paused or slow finalizer outlives it. So the
//! result object is written conditionally: a finalizer reads the result's current generation,
//! then [`SessionIndex::renew`]s its claim (which succeeds only while the claim is still the
//! session's), then writes on that generation. A later claim can only write after it was
//! granted, which is after that renewal, so the superseded finalizer's write fails its
//! precondition if the newer one wrote first, and the newer one's write fails (and is retried
//! on the new generation) if the superseded one wrote first. Either way the last result
//! written is the newest claim's. [`crate::service::finalize`] implements the loop.
//!
//! A finalizer that dies simply lets its lease expire; the next sweep claims the session again.
//! On a failure it can report, it *releases* the claim, returning the session to `open`.
//!
//! ## One driver, thin adapters
//! The protocol's decisions are pure functions of one session's state ([`protocol`]); the
//! [`driver::Driver`] runs them in an optimistic loop (read with a revision, decide, write if
//! the revision is unchanged, back off and retry on a conflict) over a [`store::SessionStore`],
//! which is all an adapter implements: SQLite ([`sqlite`], a revision column inside a
//! transaction), Firestore (a document's update time) and DynamoDB (a revision attribute).
//!
//! ## The sharded idle index
//! Every session carries a shard number ([`shard`]), and the stores index idle and expired
//! sessions by (shard, status, time) rather than (status, time), so the index entries that
//! every chunk write moves to "now" are spread over many ranges instead of piling onto one
//! (Firestore and DynamoDB both cap the write rate into one such range). The idle query asks
//! every shard and merges.
//!
//! Every adapter passes [`conformance::run_all`]: SQLite and an in-memory store here,
//! Firestore and DynamoDB against their emulators.

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::engine::SessionGuid;
use crate::time::Millis;

#[cfg(any(feature = "aws", feature = "gcp"))]
mod codec;
pub mod conformance;
pub mod driver;
#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "gcp")]
pub mod firestore;
#[cfg(test)]
mod memory;
pub mod protocol;
pub mod shard;
pub mod spec;
pub mod sqlite;
pub mod store;

pub use driver::Driver;
pub use shard::Shards;
pub use spec::IndexSpec;

/// How long cloud index records live after their last activity by default: the TTL
/// (`expire_at`) Firestore and DynamoDB delete them by. A session that gets a chunk after this
/// long starts over as a new session. `RRSTITCH_INDEX_TTL_DAYS` overrides it; Terraform sets
/// it from `chunk_retention_days`, so a record outlives the chunk it describes.
pub const RECORD_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// How long a tombstone refuses a deleted session's chunks by default
/// (`RRSTITCH_TOMBSTONE_TTL_DAYS`): longer than any late arrival or redelivery, and longer
/// than [`RECORD_TTL`], so no trace of the session outlives the tombstone.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(400 * 24 * 3600);

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    Open,
    Finalizing,
    Finalized,
    /// Erased: the session's document is a tombstone that refuses its chunks until
    /// [`SessionRecord::lease_until`] (see [`protocol::tombstone`]).
    Deleted,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Open => "open",
            SessionStatus::Finalizing => "finalizing",
            SessionStatus::Finalized => "finalized",
            SessionStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(SessionStatus::Open),
            "finalizing" => Some(SessionStatus::Finalizing),
            "finalized" => Some(SessionStatus::Finalized),
            "deleted" => Some(SessionStatus::Deleted),
            _ => None,
        }
    }
}

/// One accepted chunk object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    pub guid: SessionGuid,
    /// The bucket's URL text (`gs://b`, `s3://b`, `/abs/dir`): enough to open it again.
    pub bucket: String,
    pub name: String,
    /// The object generation that was validated ("" where the backend has none).
    pub generation: String,
    /// The upload time from the name, as written there.
    pub timestamp: String,
    pub environment: String,
    pub size: u64,
    pub event_count: u64,
    /// A hash of the bytes that were validated ("" where unknown). An SDK or relay that
    /// uploads the same bytes again under the same name makes a new generation but no new
    /// data, so the content, not the generation, is what tells two uploads of a name apart.
    pub content_hash: String,
}

impl ChunkRecord {
    /// What makes two records one upload, with bucket and name: the content where it is
    /// known, else the generation.
    pub fn identity(&self) -> &str {
        if self.content_hash.is_empty() {
            &self.generation
        } else {
            &self.content_hash
        }
    }
}

/// The content hash [`ChunkRecord::content_hash`] holds: xxh3-128 of the stored bytes, hex.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// One refused object, kept for operators: it stays in the bucket, untouched, unless its
/// session is erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRecord {
    pub bucket: String,
    pub name: String,
    pub generation: String,
    /// A stable category (`bad_json`, `bad_guid`, …).
    pub kind: String,
    pub reason: String,
    /// The session the object's bytes name, when they name one (a chunk with a valid
    /// `session_guid` and a bad event): it holds that session's personal data, so erasing
    /// the session deletes it ([`SessionIndex::rejected_of`]). `None` when nothing says.
    pub session_guid: Option<SessionGuid>,
    /// The object's size in bytes where the refusal knows it (an `over_quota` chunk, so a
    /// result can say how much its session was refused); 0 where it does not.
    pub size: u64,
}

/// A session as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub guid: SessionGuid,
    pub status: SessionStatus,
    /// The environment of the first chunk recorded.
    pub environment: String,
    pub chunk_count: u64,
    /// Earliest and latest upload time among the chunks' names.
    pub first_chunk_time: String,
    pub last_chunk_time: String,
    /// When the latest chunk arrived: idleness is measured from here.
    pub last_chunk_at: Millis,
    /// Bumped by every new chunk, from 1 for the first: it always equals `chunk_count`. A
    /// claim remembers it to detect chunks landing mid-stitch.
    pub version: u64,
    /// While `finalizing`, when the lease runs out; while `deleted`, when the tombstone
    /// expires (the one instant either status needs, so the stores keep one field).
    pub lease_until: Option<Millis>,
    pub result_object: Option<String>,
    pub finalized_at: Option<Millis>,
    pub finalize_count: u64,
    /// The sum of the sizes of the chunks recorded, which the per-session quota is checked
    /// against. Sessions recorded before rrstitch kept it start from 0 in the cloud stores
    /// (SQLite sums their chunks when it migrates), so they may take up to one quota more.
    pub recorded_bytes: u64,
}

impl SessionRecord {
    /// Whether this is a tombstone that still refuses the session's chunks at `now`
    /// ([`protocol::is_tombstone`]).
    pub fn is_tombstone(&self, now: Millis) -> bool {
        self.status == SessionStatus::Deleted && self.lease_until.is_some_and(|until| until > now)
    }
}

/// The bookmark a reconcile pass cut by its budget leaves its cursor in.
pub const RECONCILE_BOOKMARK: &str = "reconcile";

/// The bookmark each sweep (or queue dispatch) leaves its summary in, for `rrstitch status`.
pub const SWEEP_BOOKMARK: &str = "last_sweep";

/// One page of the whole session listing ([`SessionIndex::sessions_page`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionPage {
    /// At most the page's limit of sessions, tombstones included (status
    /// [`SessionStatus::Deleted`]): a bulk walk must know it passed them.
    pub sessions: Vec<SessionRecord>,
    /// Where the next page starts (pass it back as `after`); `None` when the listing is done.
    /// A plain string (the last session's guid), so it survives across processes and runs.
    pub next: Option<String>,
}

/// What the index holds now, counted by index range rather than listed
/// ([`SessionIndex::counts`]): the numbers `rrstitch status` leads with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionCounts {
    /// Sessions taking chunks (or idle and waiting for the sweep).
    pub open: u64,
    /// The open session whose last chunk arrived longest ago, and when.
    pub oldest_open: Option<store::DueEntry>,
    /// Sessions a finalizer holds.
    pub finalizing: u64,
    /// Finalizing sessions whose lease ran out before `now`: their finalizer died or stalls,
    /// and the next sweep takes them over.
    pub leases_past_due: u64,
    /// The lease that ran out longest ago, and when it did.
    pub oldest_past_due: Option<store::DueEntry>,
    /// Erased sessions' tombstones, expired ones the TTL has not removed yet included.
    pub tombstones: u64,
}

/// What re-opening a session for another stitch did ([`SessionIndex::reopen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopen {
    /// It was finalized and is open again: the next claim stitches it anew.
    Reopened,
    /// It is open or being finalized already: the sweep (or its finalizer) stitches it
    /// with what it has; nothing was written.
    NotFinalized(SessionStatus),
    /// It was erased: a tombstone is never re-opened.
    Deleted,
    /// The index has no such session.
    NotFound,
}

/// What recording a chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A chunk the index had not seen; `reopened` when its session had been finalized.
    New { reopened: bool },
    /// The same bucket + name + generation was recorded before: nothing changed.
    AlreadyKnown,
    /// The session was erased and its tombstone has not expired: nothing was recorded.
    Deleted,
    /// The chunk would take the session past its quota: nothing was recorded.
    /// `recorded_bytes` is what the session holds, `max_bytes` the quota it was checked against.
    OverQuota { recorded_bytes: u64, max_bytes: u64 },
}

/// What tombstoning a session did ([`SessionIndex::tombstone`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstoned {
    /// A live session (not a tombstone) was there and is now replaced.
    pub had_session: bool,
    /// A live tombstone was there already: nothing was written.
    pub already: bool,
    /// When the tombstone expires.
    pub until: Millis,
}

/// Which sessions a claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimMode {
    /// A sweep: open sessions idle since before this instant, or expired leases.
    Idle { idle_before: Millis },
    /// A manual finalize: any session not under a live lease, whatever its status.
    Force,
}

/// A finalizer's hold on a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub guid: SessionGuid,
    pub token: String,
    /// The session version when claimed.
    pub version: u64,
    pub lease_until: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Claimed(Claim),
    NotFound,
    /// Another finalizer holds a live lease.
    Busy {
        lease_until: Millis,
    },
    /// Not idle (a chunk arrived since the sweep looked), or already finalized.
    NotEligible,
}

/// What completing a claim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Finalized,
    /// A chunk arrived while stitching: the session is open again for the next sweep.
    Reopened,
    /// The lease expired and someone else claimed the session; nothing was changed.
    LostClaim,
}

#[derive(Debug, Error)]
pub enum IndexError {
    /// Worth retrying: the database did not answer, contention, a timeout.
    #[error("session index {op}: transient failure: {source}")]
    Transient {
        op: &'static str,
        #[source]
        source: crate::storage::BoxError,
    },
    #[error("session index {op}: {source}")]
    Permanent {
        op: &'static str,
        #[source]
        source: crate::storage::BoxError,
    },
}

impl IndexError {
    pub fn is_transient(&self) -> bool {
        matches!(self, IndexError::Transient { .. })
    }
}

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

#[async_trait]
pub trait SessionIndex: Send + Sync + std::fmt::Debug {
    /// Records an accepted chunk; idempotent on bucket + name + [`ChunkRecord::identity`].
    /// No quota: [`SessionIndex::record_chunk_within`] with none.
    async fn record_chunk(&self, chunk: &ChunkRecord, now: Millis) -> Result<Recorded> {
        self.record_chunk_within(chunk, None, now).await
    }

    /// Records an accepted chunk like [`SessionIndex::record_chunk`], unless the session's
    /// recorded bytes plus the chunk's size would pass `max_bytes`: then nothing is written
    /// and the answer is [`Recorded::OverQuota`] (a chunk recorded before is still
    /// [`Recorded::AlreadyKnown`]). `None`: no quota.
    async fn record_chunk_within(
        &self,
        chunk: &ChunkRecord,
        max_bytes: Option<u64>,
        now: Millis,
    ) -> Result<Recorded>;

    /// Records a refused object; returns false when it was already recorded.
    async fn record_rejected(&self, rejected: &RejectRecord, now: Millis) -> Result<bool>;

    /// Sessions a sweep should claim: open and idle since before `idle_before`, or
    /// finalizing under a lease that expired before `now`; oldest first.
    async fn idle_sessions(
        &self,
        idle_before: Millis,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<SessionGuid>>;

    async fn claim(
        &self,
        guid: &SessionGuid,
        mode: ClaimMode,
        now: Millis,
        lease: Duration,
    ) -> Result<ClaimOutcome>;

    /// Every chunk recorded for a session (in no particular order).
    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>>;

    async fn complete(&self, claim: &Claim, result_object: &str, now: Millis)
        -> Result<Completion>;

    /// Extends a claim's lease to `now + lease` if the claim still holds the session (its
    /// token is the session's), whether or not the lease has run out meanwhile; `None` when
    /// another claim took the session over, or it was completed or released. Finalizers call
    /// it as their fence before writing a result, and periodically while stitching.
    async fn renew(&self, claim: &Claim, now: Millis, lease: Duration) -> Result<Option<Millis>>;

    /// Gives a claim back after a failure: the session is open again.
    async fn release(&self, claim: &Claim, now: Millis) -> Result<()>;

    async fn session(&self, guid: &SessionGuid) -> Result<Option<SessionRecord>>;

    /// Sessions, most recently active first.
    async fn sessions(&self, limit: usize) -> Result<Vec<SessionRecord>>;

    /// Refused objects, most recent first.
    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>>;

    /// Refused objects recorded at or after `since`, most recent first, at most `limit`: one
    /// bounded range read, whatever the index holds.
    async fn rejected_since(&self, since: Millis, limit: usize) -> Result<Vec<RejectRecord>>;

    /// Open, finalizing, past-due and tombstoned sessions at `now`, from count queries over
    /// the sharded index ranges (a fixed number of queries per shard), never a listing.
    async fn counts(&self, now: Millis) -> Result<SessionCounts>;

    /// Every session, tombstones included, one page of at most `limit` at a time: the walk a
    /// bulk operation (re-stitch) makes over an index of any size. `after` is the previous
    /// page's [`SessionPage::next`] (`None` to start). The order is the store's own (guid
    /// order on SQLite and Firestore, DynamoDB's scan order) and stable while no session is
    /// added or removed: a session that exists for the whole walk is listed exactly once.
    async fn sessions_page(&self, after: Option<&str>, limit: usize) -> Result<SessionPage>;

    /// Re-opens a finalized session so the next claim stitches it again under the current
    /// rules (redaction, engine, insights): `finalized` becomes `open`, its chunks, version and
    /// last arrival untouched, so an idle claim (the sweep's, a queued worker's) takes it as
    /// it takes any idle session. Anything else is left as it is, tombstones above all.
    async fn reopen(&self, guid: &SessionGuid, now: Millis) -> Result<Reopen>;

    /// The bookmark `name`: what a bulk job left for its next run (the reconcile's cursor,
    /// [`RECONCILE_BOOKMARK`]), so a scheduled run, which is given nothing, continues where
    /// the last one stopped. `None` when unset.
    async fn bookmark(&self, name: &str) -> Result<Option<String>>;

    /// Sets the bookmark `name`, or clears it (`None`). Last writer wins: a bookmark only
    /// saves work, it never decides anything a second writer could break.
    async fn set_bookmark(&self, name: &str, value: Option<&str>) -> Result<()>;

    /// Replaces the session's document with a tombstone until `now + ttl`: from then on
    /// recording a chunk answers [`Recorded::Deleted`], a claim [`ClaimOutcome::NotFound`],
    /// and an earlier claim's renew and complete fail. Written even for a guid the index
    /// never saw, so chunks still in flight are refused too. The chunk records are left to
    /// [`SessionIndex::forget_chunks`] (there may be more than one atomic write can hold).
    async fn tombstone(&self, guid: &SessionGuid, now: Millis, ttl: Duration)
        -> Result<Tombstoned>;

    /// Deletes every chunk record of a session; how many there were. Idempotent.
    async fn forget_chunks(&self, guid: &SessionGuid) -> Result<u64>;

    /// Every refused object recorded as naming `guid` ([`RejectRecord::session_guid`]), in no
    /// particular order: what an erasure deletes beside the session's chunks.
    async fn rejected_of(&self, guid: &SessionGuid) -> Result<Vec<RejectRecord>>;

    /// Deletes the reject records naming `guid`; how many there were. Idempotent.
    async fn forget_rejected(&self, guid: &SessionGuid) -> Result<u64>;

    /// Deletes a session's document without a tombstone (retention, not erasure: a later
    /// chunk starts a new session); false when there was none, or it is a tombstone.
    async fn forget_session(&self, guid: &SessionGuid) -> Result<bool>;
}

/// A random claim token: 128 bits, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The later of two name timestamps (by instant), for first/last chunk time bookkeeping.
pub(crate) fn later<'a>(a: &'a str, b: &'a str) -> &'a str {
    let t = |s: &str| crate::engine::name::parse_timestamp(s).unwrap_or(i128::MIN);
    if t(b) > t(a) {
        b
    } else {
        a
    }
}

/// The earlier of two name timestamps (by instant).
pub(crate) fn earlier<'a>(a: &'a str, b: &'a str) -> &'a str {
    let t = |s: &str| crate::engine::name::parse_timestamp(s).unwrap_or(i128::MAX);
    if t(b) < t(a) {
        b
    } else {
        a
    }
}

/// Opens the index a [`IndexSpec`] names, stamping the default shard count.
/// Enough for reading (queries cover every shard any writer used); writers use
/// [`open_sharded`] with the configured count.
pub async fn open(spec: &IndexSpec) -> Result<std::sync::Arc<dyn SessionIndex>> {
    open_sharded(spec, Shards::default(), RECORD_TTL).await
}

/// Opens the index a [`IndexSpec`] names, stamping sessions with `shards`.
///
/// `record_ttl` is how long cloud records live after their last activity
/// (`RRSTITCH_INDEX_TTL_DAYS`); SQLite keeps its records until `rrstitch prune` removes them.
// Without a cloud backend (the demo's build) only SQLite is left, which keeps its records.
#[cfg_attr(not(any(feature = "aws", feature = "gcp")), allow(unused_variables))]
pub async fn open_sharded(
    spec: &IndexSpec,
    shards: Shards,
    record_ttl: Duration,
) -> Result<std::sync::Arc<dyn SessionIndex>> {
    match spec {
        IndexSpec::Sqlite(path) => Ok(std::sync::Arc::new(
            sqlite::SqliteIndex::open(path)?.with_shards(shards),
        )),
        #[cfg(feature = "aws")]
        IndexSpec::DynamoDb { table } => Ok(std::sync::Arc::new(
            driver::Driver::over(
                dynamodb::DynamoStore::connect(table)
                    .await
                    .with_record_ttl(record_ttl),
            )
            .with_shards(shards),
        )),
        #[cfg(feature = "gcp")]
        IndexSpec::Firestore {
            project,
            database,
            collection,
        } => Ok(std::sync::Arc::new(
            driver::Driver::over(
                firestore::FirestoreStore::new(firestore::FirestoreConfig {
                    project: project.clone(),
                    database: database.clone(),
                    collection: collection.clone(),
                    // The client library reads FIRESTORE_EMULATOR_HOST itself.
                    emulator: None,
                })
                .with_record_ttl(record_ttl),
            )
            .with_shards(shards),
        )),
        #[allow(unreachable_patterns)]
        other => Err(IndexError::Permanent {
            op: "open",
            source: crate::storage::not_in_this_build(
                &format!("{other:?} indexes"),
                other.feature(),
            )
            .into(),
        }),
    }
}
