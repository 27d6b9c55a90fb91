//! Ingest, sweep (inline, or dispatched over a queue), finalize and backfill: plain async
//! functions over the two ports.
//!
//! Every edge — the Cloud Run HTTP handlers, the Lambda handlers, the CLI — calls these same
//! functions; none of them reads the environment or a platform event. Configuration comes in
//! as [`Options`], the clock as a [`Clock`], backends as trait objects.
//!
//! Errors are classified once, here: [`ServiceError::is_transient`] says whether the platform
//! should retry. A bad chunk is not an error at all: it is an [`IngestOutcome::Rejected`],
//! recorded and acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::Mutex;

use crate::engine::{Limits, SegmentLimits};
use crate::index::{IndexError, SessionIndex};
use crate::storage::{self, ObjectStore, StorageError, StorageUrl};
use crate::time::Millis;

mod assemble;
pub mod backfill;
pub mod dispatch;
pub mod erase;
pub mod finalize;
pub mod ingest;
pub mod prune;
pub mod reconcile;
pub mod restitch;
pub mod segments;
pub mod status;

pub use backfill::{backfill, BackfillSummary, Progress};
pub use dispatch::{Delivery, DispatchSummary, Skip};
pub use erase::{EraseReport, EraseRequest, SessionErased};
pub use finalize::{FinalizeReport, Stop, SweepSummary};
pub use ingest::{IngestOutcome, ObjectRef};
pub use reconcile::{FanOutSummary, RangeDone, ReconcileSummary};
pub use restitch::{RestitchRequest, RestitchSummary, Selection};
pub use status::Status;

/// Knobs shared by every entry point; built by the edges from [`crate::config`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Only objects under this prefix are chunks ("" for the whole bucket).
    pub chunk_prefix: String,
    /// Results are written as `<results_prefix><guid>.json`.
    pub results_prefix: String,
    pub limits: Limits,
    /// How long a session must go without a new chunk before a sweep finalizes it.
    pub idle: Duration,
    /// How long a finalizer's claim holds before another may take the session over.
    pub lease: Duration,
    /// Chunk reads in flight per session (they are still consumed in order); also the steps
    /// in flight where each is one round trip and no CPU (a queued re-stitch's re-opens,
    /// a reconcile's checks).
    pub read_parallelism: usize,
    /// Sessions stitched at once by a sweep or a backfill.
    pub session_parallelism: usize,
    /// Most sessions one sweep takes on.
    pub sweep_limit: usize,
    /// Write results gzip-compressed (`<guid>.json.gz`).
    pub output_gzip: bool,
    /// Also write the session as gzip'd segments with a manifest (`RRSTITCH_SEGMENTS`), cut
    /// at these limits; see [`segments`].
    pub segments: Option<SegmentLimits>,
    /// Bytes buffered before a part is sent to the results writer.
    pub part_size: usize,
    /// The one bucket ingest reads chunks from (`RRSTITCH_CHUNKS`). An event naming any
    /// other bucket is acknowledged and never read: the function enforces its configuration
    /// itself rather than trusting the platform's filters. `None` (the CLI's `ingest` of
    /// paths it is given) accepts any.
    pub chunk_bucket: Option<StorageUrl>,
    /// How long one sweep (or reconcile) may run: near the end it stops taking new sessions
    /// and answers with what it did, so it always returns before the scheduler's or the
    /// Lambda's deadline.
    pub sweep_budget: Duration,
    /// How long an erased session's tombstone refuses its chunks
    /// (`RRSTITCH_TOMBSTONE_TTL_DAYS`).
    pub tombstone_ttl: Duration,
    /// Leave chunks of erased sessions in the bucket when they are refused
    /// (`RRSTITCH_KEEP_CHUNKS_OF_DELETED`), for buckets rrstitch may not delete from.
    pub keep_chunks_of_deleted: bool,
    /// Redaction rules applied to every session stitched (`RRSTITCH_REDACT`); `None`: off.
    pub redact: Option<Arc<crate::engine::redact::Rules>>,
    /// Chunks refused at ingest by environment, guid or sample (`RRSTITCH_RESTRICT`); `None`:
    /// every chunk is taken.
    pub restrict: Option<Arc<crate::engine::restrict::Restrictions>>,
    /// The most bytes of chunks one session may record (`RRSTITCH_SESSION_MAX_BYTES`); later
    /// chunks are refused as `over_quota` and kept in the bucket. `None`: no quota.
    pub session_max_bytes: Option<u64>,
    /// Compute `metadata.insights` while stitching (`RRSTITCH_INSIGHTS`, on by default); off
    /// only to measure what they cost.
    pub insights: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk_prefix: String::new(),
            results_prefix: String::new(),
            limits: Limits::default(),
            idle: Duration::from_secs(300),
            lease: Duration::from_secs(600),
            read_parallelism: 16,
            session_parallelism: std::thread::available_parallelism().map_or(2, |n| n.get()),
            sweep_limit: 500,
            output_gzip: false,
            segments: None,
            part_size: 8 * 1024 * 1024,
            chunk_bucket: None,
            sweep_budget: Duration::from_secs(240),
            tombstone_ttl: crate::index::TOMBSTONE_TTL,
            keep_chunks_of_deleted: false,
            redact: None,
            restrict: None,
            session_max_bytes: None,
            insights: true,
        }
    }
}

impl Options {
    /// The results object for a session.
    pub fn result_name(&self, guid: &crate::engine::SessionGuid) -> String {
        let ext = if self.output_gzip { "json.gz" } else { "json" };
        format!("{}{guid}.{ext}", self.results_prefix)
    }
}

/// The time source; the system clock outside tests.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Millis::now)
}

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("session {0} is not in the index")]
    UnknownSession(String),
    #[error("session {guid} is being finalized by another worker (lease until {lease_until})")]
    Busy { guid: String, lease_until: Millis },
    #[error("session {0}: this finalizer's lease ran out and another took the session over; that one writes the result")]
    Superseded(String),
    /// The session was erased while this finalizer stitched it; what it wrote was deleted.
    #[error(
        "session {0} was deleted while being finalized; what this finalizer wrote was deleted too"
    )]
    Erased(String),
    #[error(transparent)]
    MissingBucket(#[from] MissingBucket),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("writing the stitched output: {0}")]
    Output(#[from] std::io::Error),
    /// A queued reconcile range could not be finished and must be delivered again.
    #[error("reconcile range unfinished: {0}")]
    RangeUnfinished(String),
}

impl ServiceError {
    /// Whether the platform should retry: only failures that another attempt can fix.
    pub fn is_transient(&self) -> bool {
        match self {
            ServiceError::Storage(e) => e.is_transient(),
            ServiceError::Index(e) => e.is_transient(),
            ServiceError::Busy { .. }
            | ServiceError::Output(_)
            | ServiceError::RangeUnfinished(_) => true,
            ServiceError::UnknownSession(_)
            | ServiceError::InvalidRequest(_)
            | ServiceError::Superseded(_)
            | ServiceError::Erased(_)
            | ServiceError::MissingBucket(_) => false,
        }
    }
}

/// A bucket rrstitch was configured with is not there, named by its role ("results",
/// "chunk"): at start-up (the edge's set-up checks) and when a write finds it gone.
#[derive(Debug, Error)]
#[error("{role} bucket \"{bucket}\" does not exist")]
pub struct MissingBucket {
    pub role: &'static str,
    pub bucket: String,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Opens chunk buckets by the URL text the index recorded, once each.
#[derive(Debug, Default)]
pub struct Buckets {
    open: Mutex<HashMap<StorageUrl, Arc<dyn ObjectStore>>>,
}

impl Buckets {
    /// Starts with stores already open (the configured chunk bucket).
    pub fn with(stores: impl IntoIterator<Item = Arc<dyn ObjectStore>>) -> Self {
        let open = stores.into_iter().map(|s| (s.url().clone(), s)).collect();
        Buckets {
            open: Mutex::new(open),
        }
    }

    pub async fn get(&self, url: &StorageUrl) -> Result<Arc<dyn ObjectStore>> {
        let mut open = self.open.lock().await;
        if let Some(store) = open.get(url) {
            return Ok(store.clone());
        }
        let store = storage::open(url).await?;
        open.insert(url.clone(), store.clone());
        Ok(store)
    }

    /// Parses a bucket as the index recorded it and opens it.
    pub async fn get_text(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let (url, _) = StorageUrl::parse(bucket).map_err(|e| StorageError::Permanent {
            op: "open",
            name: bucket.to_owned(),
            source: e.into(),
        })?;
        self.get(&url).await
    }
}

/// Everything ingest and finalize need: the index, the results bucket, a way to reach chunk
/// buckets, options and a clock.
#[derive(Clone)]
pub struct Service {
    pub index: Arc<dyn SessionIndex>,
    pub results: Arc<dyn ObjectStore>,
    pub buckets: Arc<Buckets>,
    pub options: Options,
    pub clock: Clock,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("index", &self.index)
            .field("results", &self.results.url())
            .field("options", &self.options)
            .finish()
    }
}

impl Service {
    pub fn new(
        index: Arc<dyn SessionIndex>,
        results: Arc<dyn ObjectStore>,
        buckets: Arc<Buckets>,
        options: Options,
    ) -> Self {
        Service {
            index,
            results,
            buckets,
            options,
            clock: system_clock(),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn now(&self) -> Millis {
        (self.clock)()
    }
}
