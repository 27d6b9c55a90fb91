//! The optimistic loop every driven write runs: read the session with its revision, let the
//! protocol decide, write only if the revision is unchanged; on a conflict wait and start
//! again, a bounded number of times.
//!
//! Separate from the operations because it is the one place contention is handled: how long
//! to wait, how often to try, and what a caller sees when a session stays contended
//! (a transient error, so the platform retries the whole delivery later).

use std::future::Future;
use std::time::Duration;

use super::Driver;
use crate::engine::SessionGuid;
use crate::index::protocol::{Decision, SessionState};
use crate::index::store::{NewChunk, SessionStore, Written};
use crate::index::{IndexError, Result};

/// Optimistic-concurrency attempts before contention is reported as transient: with the
/// jittered backoff between them (up to 1.28 s), about 15 s of trying.
pub const ATTEMPTS: usize = 20;

/// Waits before the next attempt of an optimistic write that lost a race (`attempt` counts
/// from 0): exponential backoff with full jitter, from 10 ms up to 1.28 s. Without it, writers
/// that collided retry in lockstep and collide again: 32 concurrent records of one session
/// saw about a fifth of them give up after 16 immediate retries.
async fn contention_pause(attempt: u32) {
    let cap_ms = 10u64 << attempt.min(7);
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    let wait = u64::from_le_bytes(bytes) % (cap_ms + 1);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// How one driven write ended.
pub(super) enum Step<T> {
    Done(T),
    /// The chunk to record was recorded before: nothing was written.
    ChunkKnown,
}

/// How one optimistic attempt ended.
pub(super) enum Attempt<T> {
    Done(T),
    /// The revision read was no longer current: read again.
    Conflict,
}

/// Runs `attempt` until it is done, pausing after each conflict, at most [`ATTEMPTS`] times;
/// then contention is reported as transient.
pub(super) async fn optimistic<T, F, Fut>(
    op: &'static str,
    guid: &SessionGuid,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>>>,
{
    for n in 0..ATTEMPTS {
        if n > 0 {
            contention_pause(n as u32 - 1).await;
        }
        match attempt().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Conflict => {
                tracing::debug!(session_guid = %guid, op, attempt = n, "session changed under us; reading again")
            }
        }
    }
    tracing::warn!(session_guid = %guid, op, attempts = ATTEMPTS, "too much contention on one session; giving up for now");
    Err(IndexError::Transient {
        op,
        source: "too much contention on one session; retry".into(),
    })
}

impl<S: SessionStore> Driver<S> {
    /// Read, decide, write if unchanged; again on conflict.
    pub(super) async fn drive<T>(
        &self,
        op: &'static str,
        guid: &SessionGuid,
        chunk: Option<NewChunk<'_>>,
        decide: impl Fn(Option<&SessionState>) -> Decision<T>,
    ) -> Result<Step<T>> {
        let decide = &decide;
        optimistic(op, guid, move || async move {
            let before = self.store.read(guid).await?;
            let (mut after, value) = match decide(before.as_ref().map(|b| &b.state)) {
                Decision::Done(value) => return Ok(Attempt::Done(Step::Done(value))),
                Decision::Write(after, value) => (*after, value),
            };
            after.shard = Some(self.shards.of(guid));
            self.ensure_mark().await?;
            let expected = before.as_ref().map(|b| &b.revision);
            Ok(match self.store.write(expected, &after, chunk).await? {
                Written::Written => Attempt::Done(Step::Done(value)),
                Written::ChunkKnown => Attempt::Done(Step::ChunkKnown),
                Written::Conflict => Attempt::Conflict,
            })
        })
        .await
    }

    /// [`Self::drive`] for a write without a chunk record.
    pub(super) async fn update<T>(
        &self,
        op: &'static str,
        guid: &SessionGuid,
        decide: impl Fn(Option<&SessionState>) -> Decision<T>,
    ) -> Result<T> {
        match self.drive(op, guid, None, decide).await? {
            Step::Done(value) => Ok(value),
            Step::ChunkKnown => Err(IndexError::Permanent {
                op,
                source: "the store reported a chunk record for a write without one".into(),
            }),
        }
    }
}
