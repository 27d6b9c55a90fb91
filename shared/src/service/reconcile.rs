//! Reconcile: the repair path for bucket events that never arrived.
//!
//! Notifications are at-least-once but not exactly reliable: S3 drops an asynchronous Lambda
//! event after its retries (unless a dead-letter queue catches it), Pub/Sub after its delivery
//! attempts, and two writes of one key can yield one notification. Reconcile lists the chunk
//! bucket and ingests every chunk object the index does not know, with the same validation and
//! the same idempotency as the event path, so running it again (or racing the event path)
//! changes nothing. Sessions it recovers chunks for are re-opened and the next sweep stitches
//! them.
//!
//! Cost: one listing, a ranged read of each chunk's first bytes (SDKs write `session_guid`
//! first, which says whose chunk it is), one index read per session, and a full ingest only
//! for what is missing. `since` bounds it to recent uploads by the time in their names, which
//! is what a daily run needs — and bounds the *listing* too: chunk names sort by their upload
//! time, so the listing starts a margin before the window ([`WINDOW_MARGIN`]) rather than at
//! the start of the bucket. The listing is walked a page at a time, so memory is one page
//! (plus what the window's sessions need), whatever the bucket holds.
//!
//! A pass cut by its budget answers a cursor (the name everything up to which was checked);
//! the next run takes it and carries on after it, and a finished pass answers none. A
//! scheduled run is given nothing to pass along, so [`Service::reconcile_resumed`] keeps the
//! cursor in the index ([`RECONCILE_BOOKMARK`]): each resumed pass starts after the one the
//! last left, saves its own, and a finished pass clears it, so the next starts over. A pass
//! given a cursor (or none, by hand) leaves the bookmark alone: the series is the schedule's.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::sync::Mutex;

use super::backfill::{Failure, HEAD_BYTES};
use super::{IngestOutcome, ObjectRef, Result, Service, ServiceError};
use crate::engine::{self, ChunkName, NameClass, SessionGuid};
use crate::index::RECONCILE_BOOKMARK;
use crate::queue::{self, FinalizeQueue, Job, NameRange};
use crate::storage::{list_pages, ObjectMeta, ObjectStore, StorageUrl};
use crate::time::{deadline, Millis};

/// What one reconcile pass found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileSummary {
    /// Objects under the chunk prefix.
    pub objects_listed: u64,
    /// Chunk candidates uploaded within `since` (all of them without it).
    pub candidates: u64,
    /// Already in the index (as chunks, or as refused objects seen again).
    pub known: u64,
    /// Chunks the index did not know, now recorded: these were lost events.
    pub recovered: u64,
    /// Sessions those chunks re-opened or created.
    pub sessions_recovered: u64,
    /// Objects refused (and recorded as such).
    pub rejected: u64,
    /// Objects gone between the listing and the read.
    pub vanished: u64,
    /// Objects that could not be checked; run again to retry.
    pub failed: Vec<Failure>,
    /// Candidates left unchecked because the budget ran out: those listed before the cut
    /// (the listing stops there, so more may follow; `cursor` says where).
    pub deferred: u64,
    /// Set when the budget ran out: pass it to the next run, which continues after it.
    /// `None` when the pass is finished.
    pub cursor: Option<String>,
    /// The bookmark a resumed pass ([`Service::reconcile_resumed`]) continued after; `None`
    /// when it started from the window's start (or was not resumed).
    pub resumed_from: Option<String>,
    pub seconds: f64,
}

/// How far before a window's start (in name order) its listing begins.
///
/// A chunk's name is its upload time as *local* text with its UTC offset
/// (`…T14:10:50+0200.json` is 12:10:50Z): text = instant + offset. A chunk uploaded at or
/// after the window's start `W` therefore has text ≥ `W + offset`, and only a *negative*
/// offset puts its text before `W`; the most negative real offset is −12:00, so real chunks
/// need 12 h (the +14:00 side would matter only to a window's *end*). The name grammar
/// ingest accepts (and reconcile must see whatever ingest would record) allows any offset up
/// to ±23:59, so the margin is 24 h: a name with text before `W − 24 h` is before `W` under
/// any offset it can carry. What the margin lets in is then filtered by instant.
///
/// This assumes chunk names sit directly under the chunk prefix, as the SDKs write them: a
/// sub-folder whose name sorts before the bound (say `0abc/`) is not listed by a windowed
/// pass; a pass without `since` lists everything.
pub const WINDOW_MARGIN: Duration = Duration::from_secs(24 * 3600);

/// The name a window's listing starts after: the chunk prefix and the text of
/// `window_start − WINDOW_MARGIN` to the second (truncated, so never later than it), which
/// sorts before every chunk name with a later or equal text.
pub fn window_bound(prefix: &str, window_start: Millis) -> String {
    let text = window_start.minus(WINDOW_MARGIN).to_rfc3339();
    format!("{prefix}{}", &text[..19])
}

type Known = Arc<HashSet<(String, String)>>;

enum Checked {
    Known,
    Ingested(IngestOutcome),
    Failed(String, ServiceError),
    Deferred,
}

impl Service {
    /// Ingests every chunk object of the configured chunk bucket that the index does not
    /// know, among those uploaded within `since` (by the time in their names).
    pub async fn reconcile(&self, since: Option<Duration>) -> Result<ReconcileSummary> {
        self.reconcile_from(since, None).await
    }

    /// [`Service::reconcile`] as a scheduled run makes it: continuing after the cursor the
    /// last resumed pass left in the index, then leaving its own there (or clearing it when
    /// it finished, so the next pass starts over). A bookmark outside the chunk prefix (the
    /// prefix changed since) is set aside with a warning and the pass starts over. Failing to
    /// save the bookmark fails the pass, so the platform retries rather than skip ahead.
    pub async fn reconcile_resumed(&self, since: Option<Duration>) -> Result<ReconcileSummary> {
        let prefix = self.options.chunk_prefix.as_str();
        let saved = self
            .index
            .bookmark(RECONCILE_BOOKMARK)
            .await?
            .filter(|c| {
                let under = c.starts_with(prefix);
                if !under {
                    tracing::warn!(bookmark = %c, prefix, "the saved reconcile cursor is not under the chunk prefix; starting over");
                }
                under
            });
        let mut summary = self.reconcile_from(since, saved.as_deref()).await?;
        self.index
            .set_bookmark(RECONCILE_BOOKMARK, summary.cursor.as_deref())
            .await?;
        summary.resumed_from = saved;
        Ok(summary)
    }

    /// [`Service::reconcile`], continuing after `cursor` (what a pass cut by its budget
    /// answered). The cursor must name something under the chunk prefix.
    pub async fn reconcile_from(
        &self,
        since: Option<Duration>,
        cursor: Option<&str>,
    ) -> Result<ReconcileSummary> {
        let (range, _) = self.reconcile_start(since, cursor)?;
        self.reconcile_range(&range).await
    }

    /// Where a pass over the last `since` (after `cursor`) starts: the range from there to the
    /// end of the bucket, and the window's start.
    fn reconcile_start(
        &self,
        since: Option<Duration>,
        cursor: Option<&str>,
    ) -> Result<(NameRange, Option<Millis>)> {
        let prefix = self.options.chunk_prefix.as_str();
        if let Some(cursor) = cursor.filter(|c| !c.starts_with(prefix)) {
            return Err(ServiceError::InvalidRequest(format!(
                "the reconcile cursor {cursor:?} is not under the chunk prefix {prefix:?}"
            )));
        }
        let window_start = since.map(|d| self.now().minus(d));
        // The later of the window's bound and the cursor.
        let after = [
            window_start.map(|w| window_bound(prefix, w)),
            cursor.map(str::to_owned),
        ]
        .into_iter()
        .flatten()
        .max();
        let range = NameRange {
            after,
            through: None,
            since_ms: window_start.map(|w| w.0),
        };
        Ok((range, window_start))
    }

    /// Reconciles the chunk objects of one name range (a [`Job::Reconcile`] message's, or a
    /// whole pass's), within the sweep budget. Its bounds must be under the chunk prefix.
    pub async fn reconcile_range(&self, range: &NameRange) -> Result<ReconcileSummary> {
        let started = tokio::time::Instant::now();
        let url = self.chunk_bucket_for("reconcile")?;
        let prefix = self.options.chunk_prefix.as_str();
        if let Some(bound) = [&range.after, &range.through]
            .into_iter()
            .flatten()
            .find(|b| !b.starts_with(prefix))
        {
            return Err(ServiceError::InvalidRequest(format!(
                "the reconcile range bound {bound:?} is not under the chunk prefix {prefix:?}"
            )));
        }
        let store = self.buckets.get(&url).await?;
        let oldest_ns = range.since_ms.map(|ms| i128::from(ms) * 1_000_000);
        let start_after = range.after.clone();
        let through = range.through.as_deref();
        let mut summary = ReconcileSummary::default();

        let known: Mutex<HashMap<SessionGuid, Known>> = Mutex::new(HashMap::new());
        let last_start = deadline(started, self.options.sweep_budget.mul_f64(0.9));
        // Counted as the listing is walked (the checks run concurrently with it).
        let listed = AtomicU64::new(0);
        let candidates_seen = AtomicU64::new(0);
        let cut = AtomicBool::new(false);
        let list_error: std::sync::Mutex<Option<ServiceError>> = std::sync::Mutex::new(None);
        // Each candidate carries its place (for the cursor: everything before the first
        // deferred one was checked) and the name before it in the listing (the cursor then).
        let mut previous = start_after.clone().unwrap_or_else(|| prefix.to_owned());
        let candidates = list_pages(store.as_ref(), prefix, start_after)
            .scan((), |(), page| {
                future::ready(match page {
                    Ok(page) => Some(stream::iter(page.objects)),
                    Err(e) => {
                        *list_error.lock().unwrap() = Some(e.into());
                        None
                    }
                })
            })
            .flatten()
            // The range ends at `through`: the listing stops at the first name past it.
            .take_while(|meta| future::ready(through.is_none_or(|t| meta.name.as_str() <= t)))
            // Stops before the object after the cut is counted (at most one page past it is
            // fetched).
            .take_while(|_| future::ready(!cut.load(Ordering::Relaxed)))
            .filter_map(|meta| {
                listed.fetch_add(1, Ordering::Relaxed);
                let before = std::mem::replace(&mut previous, meta.name.clone());
                let candidate = match ChunkName::classify(&meta.name, prefix) {
                    NameClass::Chunk(name)
                        if oldest_ns.is_none_or(|oldest| name.instant_ns() >= oldest) =>
                    {
                        Some((name, meta, before))
                    }
                    // A badly named object is never a chunk; its event, if it came, recorded
                    // the refusal, and the object stays in the bucket either way.
                    _ => None,
                };
                future::ready(candidate)
            })
            .enumerate()
            .map(|(place, (name, meta, before))| {
                // The first candidate met after the budget is kept (as deferred, for the
                // cursor) and the listing stops there: the rest is the next run's.
                if tokio::time::Instant::now() >= last_start {
                    cut.store(true, Ordering::Relaxed);
                }
                let (store, url, known) = (&store, &url, &known);
                candidates_seen.fetch_add(1, Ordering::Relaxed);
                async move {
                    let checked = self
                        .check(store.as_ref(), url, known, name, meta, last_start)
                        .await;
                    (place, before, checked)
                }
            })
            .buffer_unordered(self.options.read_parallelism.max(1));
        let mut checks = Box::pin(candidates);
        let mut sessions = HashSet::new();
        let mut first_deferred: Option<(usize, String)> = None;
        while let Some((place, before, checked)) = checks.next().await {
            match checked {
                Checked::Known | Checked::Ingested(IngestOutcome::AlreadyKnown { .. }) => {
                    summary.known += 1
                }
                Checked::Ingested(IngestOutcome::Recorded {
                    name, session_guid, ..
                }) => {
                    tracing::warn!(object = %name, session_guid, "reconcile recovered a chunk no event had recorded");
                    summary.recovered += 1;
                    sessions.insert(session_guid);
                }
                Checked::Ingested(
                    IngestOutcome::Rejected { .. } | IngestOutcome::DeletedSession { .. },
                ) => summary.rejected += 1,
                Checked::Ingested(IngestOutcome::Vanished { .. }) => summary.vanished += 1,
                Checked::Ingested(
                    IngestOutcome::Ignored { .. } | IngestOutcome::NotChunkBucket { .. },
                ) => {}
                Checked::Failed(name, e) => {
                    tracing::error!(object = %name, error = %e, "reconcile could not check an object");
                    summary.failed.push(Failure {
                        name,
                        error: e.to_string(),
                    });
                }
                Checked::Deferred => {
                    summary.deferred += 1;
                    if first_deferred.as_ref().is_none_or(|(p, _)| place < *p) {
                        first_deferred = Some((place, before));
                    }
                }
            }
        }
        drop(checks);
        if let Some(e) = list_error.into_inner().unwrap() {
            return Err(e);
        }
        summary.objects_listed = listed.into_inner();
        summary.candidates = candidates_seen.into_inner();
        // Failures do not hold the cursor back: they are reported, and the next full pass
        // (a finished pass answers no cursor) checks them again.
        summary.cursor = first_deferred.map(|(_, before)| before);
        summary.sessions_recovered = sessions.len() as u64;
        summary.seconds = started.elapsed().as_secs_f64();
        crate::metrics::reconcile(started.elapsed(), summary.candidates, summary.recovered);
        tracing::info!(
            listed = summary.objects_listed,
            candidates = summary.candidates,
            known = summary.known,
            recovered = summary.recovered,
            rejected = summary.rejected,
            failed = summary.failed.len(),
            deferred = summary.deferred,
            cursor = summary.cursor.as_deref().unwrap_or(""),
            "reconcile done"
        );
        Ok(summary)
    }

    fn chunk_bucket_for(&self, what: &str) -> Result<StorageUrl> {
        self.options.chunk_bucket.clone().ok_or_else(|| {
            ServiceError::InvalidRequest(format!(
                "{what} needs the chunk bucket: set RRSTITCH_CHUNKS"
            ))
        })
    }

    /// Checks one candidate: known to the index (by a head read and the session's chunks),
    /// or ingested now; deferred when the budget ran out before it started.
    async fn check(
        &self,
        store: &dyn ObjectStore,
        url: &StorageUrl,
        known: &Mutex<HashMap<SessionGuid, Known>>,
        name: ChunkName,
        meta: ObjectMeta,
        last_start: tokio::time::Instant,
    ) -> Checked {
        if tokio::time::Instant::now() >= last_start {
            return Checked::Deferred;
        }
        let object = ObjectRef {
            bucket: url.clone(),
            name: meta.name.clone(),
            generation: meta.generation.clone(),
        };
        if !name.is_gzip() {
            let head = match store.get_head(&meta.name, HEAD_BYTES).await {
                Ok(head) => head,
                Err(e) => return Checked::Failed(meta.name, e.into()),
            };
            if let Some(guid) = engine::peek_guid(&head) {
                match self.known_chunks(known, &guid).await {
                    Ok(set) => {
                        let key = (
                            meta.name.clone(),
                            meta.generation.clone().unwrap_or_default(),
                        );
                        if set.contains(&key) {
                            return Checked::Known;
                        }
                    }
                    Err(e) => return Checked::Failed(meta.name, e),
                }
            }
        }
        match self.ingest(&object).await {
            Ok(outcome) => Checked::Ingested(outcome),
            Err(e) => Checked::Failed(meta.name, e),
        }
    }

    /// The (name, generation) pairs the index holds for a session, read once per pass.
    async fn known_chunks(
        &self,
        cache: &Mutex<HashMap<SessionGuid, Known>>,
        guid: &SessionGuid,
    ) -> Result<Known> {
        if let Some(set) = cache.lock().await.get(guid) {
            return Ok(set.clone());
        }
        let set: Known = Arc::new(
            self.index
                .chunks(guid)
                .await?
                .into_iter()
                .map(|c| (c.name, c.generation))
                .collect(),
        );
        cache.lock().await.insert(guid.clone(), set.clone());
        Ok(set)
    }
}

/// The shortest stretch of upload time one range of a fanned-out pass covers. A pass over
/// more than [`MOST_RANGES`] of them gets wider ranges.
pub const RANGE_SPAN: Duration = Duration::from_secs(3600);

/// Most ranges one fanned-out pass is cut into. Range size is a matter of parallelism, not
/// of correctness (a range the budget cuts continues as a new message), and 256 is more than
/// the workers a deployment scales to, while a pass over years of sparse chunks stays a few
/// hundred messages, not one per (mostly empty) hour.
pub const MOST_RANGES: u64 = 256;

/// What cutting a reconcile pass into ranges did ([`Service::reconcile_fan_out`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FanOutSummary {
    /// Ranges the pass was cut into: one message each.
    pub ranges: usize,
    /// Messages the queue took.
    pub published: usize,
    /// Ranges not published, with why: run the pass again (ranges are idempotent).
    pub failed: Vec<RangeFailure>,
    /// The first range's start (`None`: the start of the chunk prefix).
    pub from: Option<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RangeFailure {
    pub range: NameRange,
    pub error: String,
    pub transient: bool,
}

/// What a worker did with one [`Job::Reconcile`] message.
#[derive(Debug, Clone, Serialize)]
pub struct RangeDone {
    pub range: NameRange,
    pub summary: ReconcileSummary,
    /// The rest of a range cut by the budget, published back to the queue as a new message.
    pub continued: Option<NameRange>,
}

/// The text bound of an instant in name order: the prefix and the instant to the second,
/// as [`window_bound`] writes it.
fn bound_at(prefix: &str, at: Millis) -> String {
    format!("{prefix}{}", &at.to_rfc3339()[..19])
}

/// The ranges `(after, b1], (b1, b2], …, (bn, end)` cutting the names from `after` on, with
/// bounds every `span` from `first` (the hour of the first name after `after`) up to `until`.
fn cut_ranges(
    prefix: &str,
    after: Option<String>,
    since_ms: Option<i64>,
    first: Millis,
    until: Millis,
) -> Vec<NameRange> {
    const HOUR_MS: i64 = 3_600_000;
    let start = first.0 - first.0.rem_euclid(HOUR_MS);
    let hours = (until.0 - start).max(0) / HOUR_MS + 1;
    let per_range = (hours as u64).div_ceil(MOST_RANGES).max(1) as i64;
    let step = (RANGE_SPAN.as_millis() as i64).max(HOUR_MS) * per_range;
    let mut bounds = Vec::new();
    let mut at = start + step;
    while at <= until.0 {
        bounds.push(bound_at(prefix, Millis(at)));
        at += step;
    }
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut from = after;
    for bound in bounds {
        ranges.push(NameRange {
            after: from,
            through: Some(bound.clone()),
            since_ms,
        });
        from = Some(bound);
    }
    ranges.push(NameRange {
        after: from,
        through: None,
        since_ms,
    });
    ranges
}

impl Service {
    /// Queue mode's reconcile: cuts the pass over the last `since` (after `cursor`) into
    /// ranges of names by upload time and publishes one [`Job::Reconcile`] message each, so
    /// the workers check them in parallel ([`Service::reconcile_queued`]). It reads one page
    /// of the listing (to find where the chunks start) and nothing else, so it takes seconds
    /// whatever the bucket holds. Names are cut by their text, so the ranges cover every name
    /// from the start exactly once; the window is applied by each range, by instant.
    pub async fn reconcile_fan_out(
        &self,
        queue: &dyn FinalizeQueue,
        since: Option<Duration>,
        cursor: Option<&str>,
    ) -> Result<FanOutSummary> {
        let started = tokio::time::Instant::now();
        let url = self.chunk_bucket_for("reconcile")?;
        let prefix = self.options.chunk_prefix.as_str();
        let (whole, _) = self.reconcile_start(since, cursor)?;
        let store = self.buckets.get(&url).await?;
        let page = store
            .list_page(prefix, whole.after.as_deref(), store.page_size())
            .await?;
        let first = page.objects.iter().find_map(|meta| {
            matches!(ChunkName::classify(&meta.name, prefix), NameClass::Chunk(_))
                .then(|| {
                    let text = &meta.name[prefix.len()..prefix.len() + 19];
                    Millis::parse_rfc3339(&format!("{text}Z"))
                })
                .flatten()
        });
        let ranges = match first {
            Some(first) => cut_ranges(
                prefix,
                whole.after.clone(),
                whole.since_ms,
                first,
                self.now(),
            ),
            // No chunk on the first page: one range, whatever is there.
            None => vec![whole.clone()],
        };
        let mut summary = FanOutSummary {
            ranges: ranges.len(),
            from: whole.after.clone(),
            ..FanOutSummary::default()
        };
        let budget = deadline(started, self.options.sweep_budget);
        let jobs = ranges.into_iter().map(Job::Reconcile).collect();
        let done = queue::publish_all(queue, jobs, Some(budget)).await;
        summary.published = done.published;
        summary
            .failed
            .extend(done.refused.into_iter().filter_map(|(job, e)| match job {
                Job::Reconcile(range) => Some(RangeFailure {
                    range,
                    transient: e.is_transient(),
                    error: e.to_string(),
                }),
                Job::Finalize(_) => None,
            }));
        if done.unanswered > 0 {
            summary.failed.push(RangeFailure {
                range: whole,
                error: format!(
                    "{} ranges unanswered within the sweep budget; run the pass again",
                    done.unanswered
                ),
                transient: true,
            });
        }
        summary.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            ranges = summary.ranges,
            published = summary.published,
            failed = summary.failed.len(),
            from = summary.from.as_deref().unwrap_or(""),
            "reconcile fanned out"
        );
        Ok(summary)
    }

    /// A worker's handling of one [`Job::Reconcile`] message: reconcile the range within the
    /// budget; when the budget cuts it, publish the rest as a new message (to `queue`), so a
    /// range of any size is finished by successive deliveries with nothing checked twice.
    /// Without a queue to continue on, or when that publish fails, the error asks for the
    /// message to be delivered again (a range is idempotent: what was recorded stays known).
    pub async fn reconcile_queued(
        &self,
        range: NameRange,
        queue: Option<&dyn FinalizeQueue>,
    ) -> Result<RangeDone> {
        let summary = self.reconcile_range(&range).await?;
        if let Some(failure) = summary.failed.first() {
            return Err(ServiceError::RangeUnfinished(format!(
                "{} objects could not be checked, first {}: {}",
                summary.failed.len(),
                failure.name,
                failure.error
            )));
        }
        let Some(cursor) = summary.cursor.clone() else {
            return Ok(RangeDone {
                range,
                summary,
                continued: None,
            });
        };
        let start = range
            .after
            .as_deref()
            .unwrap_or(self.options.chunk_prefix.as_str());
        if cursor.as_str() <= start {
            // Not one object checked: publishing the same range again could go on forever.
            return Err(ServiceError::RangeUnfinished(
                "the budget ran out before the first object was checked".into(),
            ));
        }
        let rest = NameRange {
            after: Some(cursor),
            ..range.clone()
        };
        let published = match queue {
            Some(queue) => {
                queue::publish_all(queue, vec![Job::Reconcile(rest.clone())], None)
                    .await
                    .published
            }
            None => 0,
        };
        if published == 1 {
            tracing::info!(
                after = rest.after.as_deref().unwrap_or(""),
                "reconcile range cut by the budget; the rest published as a new message"
            );
            Ok(RangeDone {
                range,
                summary,
                continued: Some(rest),
            })
        } else {
            Err(ServiceError::RangeUnfinished(
                "cut by the budget, and its rest could not be queued".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_bound_is_the_margin_before_to_the_second() {
        let start = Millis::parse_rfc3339("2025-05-02T12:00:00.500Z").unwrap();
        assert_eq!(window_bound("c/", start), "c/2025-05-01T12:00:00");
        // Before every name of the window's first second, whatever its offset.
        let earliest = "c/2025-05-01T12:00:00-2359.json";
        assert!(window_bound("c/", start).as_str() < earliest);
    }

    #[test]
    fn ranges_cover_every_name_once_by_the_hour() {
        let first = Millis::parse_rfc3339("2025-05-01T12:34:56Z").unwrap();
        let until = Millis::parse_rfc3339("2025-05-01T15:10:00Z").unwrap();
        let ranges = cut_ranges("c/", Some("c/2025-05-01T12".into()), Some(7), first, until);
        let bounds: Vec<(Option<&str>, Option<&str>)> = ranges
            .iter()
            .map(|r| (r.after.as_deref(), r.through.as_deref()))
            .collect();
        assert_eq!(
            bounds,
            [
                (Some("c/2025-05-01T12"), Some("c/2025-05-01T13:00:00")),
                (Some("c/2025-05-01T13:00:00"), Some("c/2025-05-01T14:00:00")),
                (Some("c/2025-05-01T14:00:00"), Some("c/2025-05-01T15:00:00")),
                (Some("c/2025-05-01T15:00:00"), None),
            ]
        );
        assert!(ranges.iter().all(|r| r.since_ms == Some(7)));
        for name in [
            "c/2025-05-01T12:59:59.999999+0000.json",
            "c/2025-05-01T13:00:00",
            "c/2025-05-01T13:00:00.000000+0000.json",
            "c/2025-05-01T20:00:00.000000+1400.json",
            "c/zzz",
        ] {
            assert_eq!(ranges.iter().filter(|r| r.holds(name)).count(), 1, "{name}");
        }
    }

    #[test]
    fn years_of_chunks_are_cut_into_at_most_the_most_ranges() {
        let first = Millis::parse_rfc3339("2020-01-01T00:00:00Z").unwrap();
        let until = Millis::parse_rfc3339("2025-01-01T00:00:00Z").unwrap();
        let ranges = cut_ranges("", None, None, first, until);
        assert!(ranges.len() as u64 <= MOST_RANGES + 1, "{}", ranges.len());
        assert!(ranges.len() as u64 > MOST_RANGES / 2, "{}", ranges.len());
        assert_eq!(ranges[0].after, None);
        assert_eq!(ranges.last().unwrap().through, None);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].through, pair[1].after);
        }
        // Chunks all from the current hour: one open range; across an hour's turn: two.
        let first = Millis::parse_rfc3339("2025-01-01T00:20:00Z").unwrap();
        assert_eq!(cut_ranges("", None, None, first, first).len(), 1);
        let later = Millis::parse_rfc3339("2025-01-01T01:10:00Z").unwrap();
        assert_eq!(cut_ranges("", None, None, first, later).len(), 2);
    }
}
