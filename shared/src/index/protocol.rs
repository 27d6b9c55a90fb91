//! The claim/lease protocol as pure decisions over one session's state.
//!
//! The document stores (DynamoDB, Firestore) cannot run SQL; they read a session, decide, and
//! write back only if nobody wrote in between. The deciding is the same for both and lives
//! here, so the two adapters differ only in how they read and conditionally write, and both
//! agree with the SQLite adapter (all three pass one conformance suite).

use std::time::Duration;

use super::{
    earlier, later, ChunkRecord, Claim, ClaimMode, ClaimOutcome, Completion, SessionRecord,
    SessionStatus,
};
use crate::time::Millis;

/// A session as a document store keeps it: the record plus the claim it is under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub record: SessionRecord,
    pub claim_token: Option<String>,
    pub claimed_version: Option<u64>,
}

/// What a read-decide-write step wants done.
#[derive(Debug)]
pub enum Decision<T> {
    /// Write this state (conditionally on the one read) and answer `T`.
    Write(Box<SessionState>, T),
    /// Nothing to write; answer `T`.
    Done(T),
}

/// The session after one more chunk, and whether that re-opened a finalized session.
pub fn with_chunk(
    before: Option<&SessionState>,
    c: &ChunkRecord,
    now: Millis,
) -> (SessionState, bool) {
    let Some(b) = before else {
        let state = SessionState {
            record: SessionRecord {
                guid: c.guid.clone(),
                status: SessionStatus::Open,
                environment: c.environment.clone(),
                chunk_count: 1,
                first_chunk_time: c.timestamp.clone(),
                last_chunk_time: c.timestamp.clone(),
                last_chunk_at: now,
                version: 1,
                lease_until: None,
                result_object: None,
                finalized_at: None,
                finalize_count: 0,
            },
            claim_token: None,
            claimed_version: None,
        };
        return (state, false);
    };
    let mut after = b.clone();
    let r = &mut after.record;
    let reopened = r.status == SessionStatus::Finalized;
    // A finalizing session stays claimed: its finalizer sees the version move at completion
    // and re-opens it then.
    if r.status != SessionStatus::Finalizing {
        r.status = SessionStatus::Open;
    }
    r.chunk_count += 1;
    r.first_chunk_time = earlier(&b.record.first_chunk_time, &c.timestamp).to_owned();
    r.last_chunk_time = later(&b.record.last_chunk_time, &c.timestamp).to_owned();
    r.last_chunk_at = r.last_chunk_at.max(now);
    r.version += 1;
    (after, reopened)
}

/// Whether (and how) `token` may claim the session.
pub fn claim(
    before: Option<&SessionState>,
    mode: ClaimMode,
    now: Millis,
    lease: Duration,
    token: &str,
) -> Decision<ClaimOutcome> {
    let Some(b) = before else {
        return Decision::Done(ClaimOutcome::NotFound);
    };
    let r = &b.record;
    if r.status == SessionStatus::Finalizing && r.lease_until.is_some_and(|u| u >= now) {
        return Decision::Done(ClaimOutcome::Busy {
            lease_until: r.lease_until.unwrap_or(now),
        });
    }
    let eligible = match mode {
        ClaimMode::Force => true,
        ClaimMode::Idle { idle_before } => match r.status {
            SessionStatus::Open => r.last_chunk_at < idle_before,
            // Its lease expired (checked above): the finalizer died.
            SessionStatus::Finalizing => true,
            SessionStatus::Finalized => false,
        },
    };
    if !eligible {
        return Decision::Done(ClaimOutcome::NotEligible);
    }
    let lease_until = now.plus(lease);
    let mut after = b.clone();
    after.record.status = SessionStatus::Finalizing;
    after.record.lease_until = Some(lease_until);
    after.claim_token = Some(token.to_owned());
    after.claimed_version = Some(r.version);
    let claim = Claim {
        guid: r.guid.clone(),
        token: token.to_owned(),
        version: r.version,
        lease_until,
    };
    Decision::Write(Box::new(after), ClaimOutcome::Claimed(claim))
}

/// Completing `claim` after its result was written as `result_object`.
pub fn complete(
    before: Option<&SessionState>,
    claim: &Claim,
    result_object: &str,
    now: Millis,
) -> Decision<Completion> {
    let Some(b) = before else {
        return Decision::Done(Completion::LostClaim);
    };
    if b.record.status != SessionStatus::Finalizing
        || b.claim_token.as_deref() != Some(&claim.token)
    {
        return Decision::Done(Completion::LostClaim);
    }
    let (status, completion) = if b.record.version == claim.version {
        (SessionStatus::Finalized, Completion::Finalized)
    } else {
        (SessionStatus::Open, Completion::Reopened)
    };
    let mut after = b.clone();
    after.record.status = status;
    after.record.lease_until = None;
    after.record.result_object = Some(result_object.to_owned());
    after.record.finalized_at = Some(now);
    after.record.finalize_count += 1;
    after.claim_token = None;
    after.claimed_version = None;
    Decision::Write(Box::new(after), completion)
}

/// Extending `claim`'s lease: only while the claim is still the session's. A `true` answer
/// is linearized after every earlier claim of the session and before any later one, which is
/// what makes it a fence: a finalizer that reads its result object's generation, then renews,
/// then writes on that generation cannot overwrite a result a later claim wrote (see
/// [`crate::service::finalize`]).
pub fn renew(
    before: Option<&SessionState>,
    claim: &Claim,
    now: Millis,
    lease: Duration,
) -> Decision<Option<Millis>> {
    match before {
        Some(b)
            if b.record.status == SessionStatus::Finalizing
                && b.claim_token.as_deref() == Some(&claim.token) =>
        {
            let lease_until = now.plus(lease);
            let mut after = b.clone();
            after.record.lease_until = Some(lease_until);
            Decision::Write(Box::new(after), Some(lease_until))
        }
        _ => Decision::Done(None),
    }
}

/// Giving `claim` back after a failure: open again, unless someone else holds it now.
pub fn release(before: Option<&SessionState>, claim: &Claim) -> Decision<()> {
    match before {
        Some(b) if b.claim_token.as_deref() == Some(&claim.token) => {
            let mut after = b.clone();
            after.record.status = SessionStatus::Open;
            after.record.lease_until = None;
            after.claim_token = None;
            after.claimed_version = None;
            Decision::Write(Box::new(after), ())
        }
        _ => Decision::Done(()),
    }
}
