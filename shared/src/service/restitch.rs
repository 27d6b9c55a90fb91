//! Re-stitch: stitch finalized sessions again under today's rules.
//!
//! A session is stitched when it goes idle and then left alone, so a change that affects
//! results — new redaction rules, an engine upgrade, insights for sessions stitched before
//! they existed — reaches only sessions recorded after it. Re-stitch walks the index (or a
//! list of guids) and *re-opens* each finalized session it selects
//! ([`crate::index::SessionIndex::reopen`]: `finalized` becomes `open`, nothing else moves),
//! then has it stitched the way every session is:
//! - inline, it claims the session as `POST /finalize` does and stitches it now;
//! - in queue mode it publishes the sweep's own finalize message, and a worker's idle claim
//!   takes it ([`super::dispatch`]).
//!
//! Re-opening first is what makes every race harmless. The claim protocol decides, as for
//! any open session: a duplicate message finds the session claimed or finalized again, a
//! late chunk re-opens it as usual, an erasure leaves a tombstone that is never re-opened or
//! claimed. And a session re-opened but not stitched (a run that died, a message the queue
//! refused, a failure) is open and idle, so the next sweep stitches it: nothing re-opened is
//! ever left behind. Sessions that are open or being finalized are the sweep's already and
//! are only counted.
//!
//! Like a sweep, a run stops taking sessions at nine tenths of `sweep_budget` and answers a
//! cursor: everything before it was handled, nothing after it was touched, so the next run
//! given the cursor carries on with nothing missed or done twice. A walk of the index reads
//! one page (`sweep_limit` sessions) at a time, so memory does not grow with the index.

use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use super::{Progress, Result, Service, ServiceError};
use crate::engine::SessionGuid;
use crate::index::{ClaimMode, Reopen, SessionRecord, SessionStatus};
use crate::queue::{FinalizeQueue, Job};
use crate::time::deadline;

/// Which sessions a re-stitch takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Sessions of the index, walked page by page: all of them, or only those whose last
    /// chunk arrived within `since` (the recording's time, not when it was last stitched:
    /// a re-stitch must not pull every session it touched into the next window) and/or of
    /// one `environment`.
    Index {
        since: Option<Duration>,
        environment: Option<String>,
    },
    /// These sessions, in this order (a list file, standard input).
    Sessions(Vec<String>),
}

impl Selection {
    /// Every session of the index.
    pub fn all() -> Self {
        Selection::Index {
            since: None,
            environment: None,
        }
    }
}

/// A re-stitch to run: what to take, and where a run cut by its budget stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestitchRequest {
    pub selection: Selection,
    /// The `cursor` a run cut by its budget answered.
    pub cursor: Option<String>,
}

/// What one re-stitch run found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestitchSummary {
    /// `inline` (stitched here) or `queue` (one finalize message per session).
    pub mode: &'static str,
    /// Sessions the index listed (tombstones included), or guids of the list taken.
    pub listed: u64,
    /// Listed sessions the selection takes (a tombstone never).
    pub selected: u64,
    /// Sessions re-opened and stitched again by this run (inline).
    pub restitched: u64,
    /// Sessions re-opened and handed to the finalize queue (queue mode).
    pub dispatched: u64,
    /// Events and bytes the inline stitches wrote.
    pub events: u64,
    pub bytes: u64,
    /// Erased sessions (tombstones), and sessions erased while this run had them: never
    /// re-stitched.
    pub tombstoned: u64,
    /// Sessions already open or being finalized, or taken by a sweep once re-opened: the
    /// sweep stitches them under the current rules anyway.
    pub left_to_sweep: u64,
    /// Listed guids the index does not know.
    pub unknown: u64,
    /// Sessions that could not be re-opened, stitched or published. One that was re-opened
    /// is open, so the next sweep stitches it; one that was not is still finalized: run the
    /// re-stitch again for it (`--from`).
    pub failed: Vec<RestitchFailure>,
    /// Sessions listed but left untouched because the budget ran out; `cursor` says where
    /// the next run starts (more may follow it).
    pub deferred: u64,
    /// Set when the budget ran out: pass it to the next run. `None` when the run finished.
    pub cursor: Option<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestitchFailure {
    pub session_guid: String,
    pub error: String,
    pub transient: bool,
}

impl RestitchSummary {
    /// Whether another attempt could fix a failure (503 rather than 500 at the edge).
    pub fn is_transient(&self) -> bool {
        self.failed.iter().any(|f| f.transient)
    }
}

/// A [`RestitchRequest`] from a request body (`POST /restitch`, the Lambda's
/// `{"restitch": {…}}`); the error says what is wrong with it. `{"all": true}`,
/// `{"since_secs": N}` and/or `{"environment": "…"}`, or `{"session_guids": […]}`, each with
/// an optional `"cursor"`. Unknown fields are refused: a misspelt filter must not widen a
/// re-stitch to every session.
pub fn restitch_request(body: &[u8]) -> std::result::Result<RestitchRequest, String> {
    const SHAPE: &str = "expected {\"all\": true}, {\"since_secs\": N} and/or {\"environment\": \"…\"}, or {\"session_guids\": [\"…\"]}, with an optional \"cursor\"";
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        all: bool,
        since_secs: Option<u64>,
        environment: Option<String>,
        session_guids: Option<Vec<String>>,
        cursor: Option<String>,
    }
    let body: Body = serde_json::from_slice(body).map_err(|e| format!("{SHAPE}: {e}"))?;
    let filtered = body.since_secs.is_some() || body.environment.is_some();
    let selection = match body.session_guids {
        Some(_) if body.all || filtered => {
            return Err(format!(
                "{SHAPE}: session_guids names the sessions; no filter goes with it"
            ))
        }
        Some(guids) => {
            super::erase::parse_guids(&guids).map_err(|e| e.to_string())?;
            Selection::Sessions(guids)
        }
        None if body.all && filtered => {
            return Err(format!("{SHAPE}: \"all\" takes no filter"));
        }
        None if !body.all && !filtered => return Err(format!("{SHAPE}: nothing selected")),
        None => Selection::Index {
            since: body.since_secs.map(Duration::from_secs),
            environment: body.environment,
        },
    };
    Ok(RestitchRequest {
        selection,
        cursor: body.cursor,
    })
}

/// What became of one listed session.
enum Did {
    Restitched {
        events: u64,
        bytes: u64,
    },
    /// Re-opened; its message is to be published.
    Queued(SessionGuid),
    NotSelected,
    Tombstoned,
    LeftToSweep,
    Unknown,
    Failed(String, ServiceError),
    /// Not touched: the budget ran out first.
    Deferred,
}

/// One session to handle: a listed record (the selection decides), or a named guid.
enum Item {
    Listed(SessionRecord),
    Named(String),
}

impl Service {
    /// Re-stitches the sessions `request` selects, from its cursor on (see the module docs).
    /// With a `queue` (queue mode) each re-opened session is published to it instead of
    /// stitched here.
    pub async fn restitch(
        &self,
        request: &RestitchRequest,
        queue: Option<&dyn FinalizeQueue>,
        progress: &dyn Progress,
    ) -> Result<RestitchSummary> {
        let started = tokio::time::Instant::now();
        let last_start = deadline(started, self.options.sweep_budget.mul_f64(0.9));
        let page_size = self.options.sweep_limit.max(1);
        let mut summary = RestitchSummary {
            mode: if queue.is_some() { "queue" } else { "inline" },
            ..RestitchSummary::default()
        };
        let cut = std::sync::atomic::AtomicBool::new(false);
        match &request.selection {
            Selection::Index { since, environment } => {
                let window_start = since.map(|d| self.now().minus(d));
                let selects = |r: &SessionRecord| {
                    window_start.is_none_or(|w| r.last_chunk_at >= w)
                        && environment.as_ref().is_none_or(|e| &r.environment == e)
                };
                // "" is the start of the listing: a run cut before it handled anything answers
                // it, since `None` would say the walk is done.
                let mut after = match request.cursor.as_deref() {
                    None | Some("") => String::new(),
                    Some(c) => {
                        SessionGuid::parse(c).map_err(|e| {
                            ServiceError::InvalidRequest(format!(
                                "the re-stitch cursor {c:?} is not a session guid: {e}"
                            ))
                        })?;
                        c.to_owned()
                    }
                };
                progress.phase("re-stitching", 0);
                loop {
                    let page = self
                        .index
                        .sessions_page(Some(after.as_str()).filter(|a| !a.is_empty()), page_size)
                        .await?;
                    summary.listed += page.sessions.len() as u64;
                    let guids: Vec<String> =
                        page.sessions.iter().map(|s| s.guid.to_string()).collect();
                    let items = page.sessions.into_iter().map(Item::Listed).collect();
                    let did = self
                        .restitch_batch(items, &selects, queue, last_start, &cut, progress)
                        .await;
                    let first_deferred = self.tally(&mut summary, did, queue).await;
                    if let Some(i) = first_deferred {
                        summary.cursor = Some(if i == 0 { after } else { guids[i - 1].clone() });
                        break;
                    }
                    match page.next {
                        Some(next) => after = next,
                        None => break,
                    }
                }
            }
            Selection::Sessions(guids) => {
                let start = match request.cursor.as_deref() {
                    None => 0,
                    Some(c) => c
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n <= guids.len())
                        .ok_or_else(|| {
                            ServiceError::InvalidRequest(format!(
                                "the re-stitch cursor {c:?} is no place in a list of {} sessions",
                                guids.len()
                            ))
                        })?,
                };
                progress.phase("re-stitching", (guids.len() - start) as u64);
                let mut place = start;
                for batch in guids[start..].chunks(page_size) {
                    summary.listed += batch.len() as u64;
                    let items = batch.iter().cloned().map(Item::Named).collect();
                    let did = self
                        .restitch_batch(
                            items,
                            &|_: &SessionRecord| true,
                            queue,
                            last_start,
                            &cut,
                            progress,
                        )
                        .await;
                    if let Some(i) = self.tally(&mut summary, did, queue).await {
                        summary.cursor = Some((place + i).to_string());
                        break;
                    }
                    place += batch.len();
                }
            }
        }
        progress.done();
        summary.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            mode = summary.mode,
            listed = summary.listed,
            selected = summary.selected,
            restitched = summary.restitched,
            dispatched = summary.dispatched,
            tombstoned = summary.tombstoned,
            left_to_sweep = summary.left_to_sweep,
            unknown = summary.unknown,
            failed = summary.failed.len(),
            deferred = summary.deferred,
            cursor = summary.cursor.as_deref().unwrap_or(""),
            seconds = summary.seconds,
            "re-stitch done"
        );
        Ok(summary)
    }

    /// Handles `items` in order, answering in their order: `session_parallelism` at a time
    /// inline, where each stitches a session, but `read_parallelism` at a time in queue mode,
    /// where each is only a re-open in the index (one round trip's latency, no CPU), so a
    /// dispatch is not held to one session per core behind a slow index. Whether an
    /// item is deferred is decided as it is taken, in order, so once one is deferred every
    /// later one is too: the cursor can then stand just before the first.
    async fn restitch_batch(
        &self,
        items: Vec<Item>,
        selects: &(dyn Fn(&SessionRecord) -> bool + Sync),
        queue: Option<&dyn FinalizeQueue>,
        last_start: tokio::time::Instant,
        cut: &std::sync::atomic::AtomicBool,
        progress: &dyn Progress,
    ) -> Vec<Did> {
        use std::sync::atomic::Ordering::SeqCst;
        stream::iter(items)
            .map(|item| {
                if cut.load(SeqCst) || tokio::time::Instant::now() >= last_start {
                    cut.store(true, SeqCst);
                }
                let deferred = cut.load(SeqCst);
                async move {
                    if deferred {
                        return Did::Deferred;
                    }
                    let did = match item {
                        Item::Listed(r) if r.status == SessionStatus::Deleted => Did::Tombstoned,
                        Item::Listed(r) if !selects(&r) => Did::NotSelected,
                        Item::Listed(r) if r.status != SessionStatus::Finalized => Did::LeftToSweep,
                        Item::Listed(r) => self.restitch_one(r.guid, queue.is_some()).await,
                        Item::Named(g) => match SessionGuid::parse(&g) {
                            Ok(guid) => self.restitch_one(guid, queue.is_some()).await,
                            Err(e) => Did::Failed(g, ServiceError::InvalidRequest(e.to_string())),
                        },
                    };
                    progress.advance(1);
                    did
                }
            })
            .buffered(if queue.is_some() {
                self.options.read_parallelism.max(1)
            } else {
                self.options.session_parallelism.max(1)
            })
            .collect()
            .await
    }

    /// Re-opens one session and, inline, stitches it now.
    async fn restitch_one(&self, guid: SessionGuid, queued: bool) -> Did {
        let failed = |e: ServiceError| Did::Failed(guid.to_string(), e);
        match self.index.reopen(&guid, self.now()).await {
            Err(e) => return failed(e.into()),
            Ok(Reopen::Deleted) => return Did::Tombstoned,
            Ok(Reopen::NotFound) => return Did::Unknown,
            Ok(Reopen::NotFinalized(_)) => return Did::LeftToSweep,
            Ok(Reopen::Reopened) => {}
        }
        if queued {
            return Did::Queued(guid);
        }
        match self.claim_and_finalize(&guid, ClaimMode::Force).await {
            Ok(Some(report)) => Did::Restitched {
                events: report.events,
                bytes: report.bytes,
            },
            // A sweep claimed it between our re-open and our claim: it stitches it now.
            Ok(None) | Err(ServiceError::Busy { .. } | ServiceError::Superseded(_)) => {
                Did::LeftToSweep
            }
            // Erased between the re-open and the claim (the claim finds a tombstone), or
            // while stitching (what was written is gone again).
            Err(ServiceError::UnknownSession(_) | ServiceError::Erased(_)) => Did::Tombstoned,
            Err(e) => {
                tracing::error!(session_guid = %guid, error = %e, "re-stitch failed; the session is open again, so the next sweep stitches it");
                failed(e)
            }
        }
    }

    /// Adds a batch's outcomes to `summary`, publishes what it re-opened (queue mode), and
    /// answers the place of its first deferred item.
    async fn tally(
        &self,
        summary: &mut RestitchSummary,
        did: Vec<Did>,
        queue: Option<&dyn FinalizeQueue>,
    ) -> Option<usize> {
        let mut first_deferred = None;
        let mut queued = Vec::new();
        for (i, did) in did.into_iter().enumerate() {
            let selected = !matches!(did, Did::NotSelected | Did::Tombstoned | Did::Deferred);
            summary.selected += u64::from(selected);
            match did {
                Did::Restitched { events, bytes } => {
                    summary.restitched += 1;
                    summary.events += events;
                    summary.bytes += bytes;
                }
                Did::Queued(guid) => queued.push(guid),
                Did::NotSelected => {}
                Did::Tombstoned => summary.tombstoned += 1,
                Did::LeftToSweep => summary.left_to_sweep += 1,
                Did::Unknown => summary.unknown += 1,
                Did::Failed(session_guid, e) => summary.failed.push(RestitchFailure {
                    session_guid,
                    transient: e.is_transient(),
                    error: e.to_string(),
                }),
                Did::Deferred => {
                    summary.deferred += 1;
                    first_deferred.get_or_insert(i);
                }
            }
        }
        if let (Some(queue), false) = (queue, queued.is_empty()) {
            self.publish_reopened(summary, queue, queued).await;
        }
        first_deferred
    }

    /// Publishes the sweep's finalize message for each re-opened session. One the queue
    /// refuses is reported and stays open, so the next dispatch offers it again.
    async fn publish_reopened(
        &self,
        summary: &mut RestitchSummary,
        queue: &dyn FinalizeQueue,
        guids: Vec<SessionGuid>,
    ) {
        let jobs = guids.into_iter().map(Job::Finalize).collect();
        let done = crate::queue::publish_all(queue, jobs, None).await;
        summary.dispatched += done.published as u64;
        if !done.refused.is_empty() {
            tracing::error!(sessions = done.refused.len(), "re-stitch messages not published; the sessions are open, so the next dispatch offers them");
        }
        summary
            .failed
            .extend(done.refused.into_iter().map(|(job, e)| RestitchFailure {
                session_guid: match job {
                    Job::Finalize(guid) => guid.to_string(),
                    other => other.body(),
                },
                error: e.to_string(),
                transient: e.is_transient(),
            }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies() {
        let all = restitch_request(br#"{"all": true}"#).unwrap();
        assert_eq!(all.selection, Selection::all());
        assert_eq!(all.cursor, None);
        let windowed =
            restitch_request(br#"{"since_secs": 60, "environment": "prod", "cursor": "g-1"}"#)
                .unwrap();
        assert_eq!(
            windowed.selection,
            Selection::Index {
                since: Some(Duration::from_secs(60)),
                environment: Some("prod".into())
            }
        );
        assert_eq!(windowed.cursor.as_deref(), Some("g-1"));
        let named =
            restitch_request(br#"{"session_guids": ["a-1", "b-2"], "cursor": "1"}"#).unwrap();
        assert_eq!(
            named.selection,
            Selection::Sessions(vec!["a-1".into(), "b-2".into()])
        );
        for bad in [
            &br#"{}"#[..],
            br#"{"all": false}"#,
            br#"{"all": true, "environment": "prod"}"#,
            br#"{"session_guids": []}"#,
            br#"{"session_guids": ["a/b"]}"#,
            br#"{"session_guids": ["a-1"], "since_secs": 5}"#,
            br#"{"since": "2d"}"#,
            b"nope",
        ] {
            assert!(
                restitch_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
