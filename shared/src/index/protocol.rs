//! The claim/lease protocol as pure decisions over one session's state.
//!
//! Every adapter only reads a session with its revision and writes it back if nobody wrote in
//! between ([`super::store`]); [`super::driver`] runs that loop and asks the functions here
//! what to write. So there is one protocol, and every adapter agrees with it by construction
//! (all of them also pass one conformance suite).

use std::time::Duration;

use super::{
    earlier, later, ChunkRecord, Claim, ClaimMode, ClaimOutcome, Completion, Recorded, Reopen,
    SessionRecord, SessionStatus, Tombstoned,
};
use crate::time::Millis;

/// A session as a document store keeps it: the record plus the claim it is under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub record: SessionRecord,
    pub claim_token: Option<String>,
    pub claimed_version: Option<u64>,
    /// The idle-index shard the session was last written under ([`super::shard`]); `None`
    /// until the driver stamps it (and on records written before shards existed).
    pub shard: Option<u32>,
}

impl SessionState {
    /// A session under no claim and not yet stamped with a shard: a new one, or a tombstone.
    fn unclaimed(record: SessionRecord) -> Self {
        SessionState {
            record,
            claim_token: None,
            claimed_version: None,
            shard: None,
        }
    }
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
    // An expired tombstone is as good as no session: the chunk starts a new one.
    let before = before.filter(|b| b.record.status != SessionStatus::Deleted);
    let Some(b) = before else {
        let state = SessionState::unclaimed(SessionRecord {
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
            recorded_bytes: c.size,
        });
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
    r.recorded_bytes = r.recorded_bytes.saturating_add(c.size);
    (after, reopened)
}

/// Recording a new chunk writes, unless the session is erased or the chunk would take it past
/// `max_bytes`; the store answers [`Recorded::AlreadyKnown`] instead when the chunk's record
/// exists already.
///
/// The quota rule is `recorded_bytes + size > max_bytes` → refused: a chunk that would cross
/// the quota is refused whole (never recorded in part), so a session never holds more than
/// the quota, and a chunk alone larger than it is refused from the start. Decided on the
/// state the write is conditioned on, so concurrent records of one session cannot both fit
/// into the last room: the loser's write conflicts, it reads again and decides again.
pub fn record(
    before: Option<&SessionState>,
    c: &ChunkRecord,
    max_bytes: Option<u64>,
    now: Millis,
) -> Decision<Recorded> {
    if before.is_some_and(|b| is_tombstone(b, now)) {
        return Decision::Done(Recorded::Deleted);
    }
    if let Some(max_bytes) = max_bytes {
        // An expired tombstone holds nothing: the chunk would start a new session.
        let recorded_bytes = before
            .filter(|b| b.record.status != SessionStatus::Deleted)
            .map_or(0, |b| b.record.recorded_bytes);
        if recorded_bytes.saturating_add(c.size) > max_bytes {
            return Decision::Done(Recorded::OverQuota {
                recorded_bytes,
                max_bytes,
            });
        }
    }
    let (after, reopened) = with_chunk(before, c, now);
    Decision::Write(Box::new(after), Recorded::New { reopened })
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
    // Erased (or a tombstone that expired with no chunk since): nothing to finalize.
    if r.status == SessionStatus::Deleted {
        return Decision::Done(ClaimOutcome::NotFound);
    }
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
            SessionStatus::Finalized | SessionStatus::Deleted => false,
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

impl Claim {
    /// This claim as it stands for the chunk set `listed`, the listing a finalizer stitched.
    ///
    /// The listing can be newer than the claim: a chunk recorded between the two is already
    /// in the stitch. Every chunk record bumps the version by one from 1 (a session's version
    /// is its chunk count, and a chunk and its session are written atomically), so the version
    /// of the listed set is its size; completing against it re-opens the session only for a
    /// chunk the stitch did not see, never for one it did.
    pub fn covering(&self, listed: &[ChunkRecord]) -> Claim {
        Claim {
            version: self.version.max(listed.len() as u64),
            ..self.clone()
        }
    }
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

/// Re-opening a session for another stitch: only a finalized one, whose lease and claim are
/// already gone (completion cleared them). Nothing else moves: the version still equals the
/// chunk count, and `last_chunk_at` still says when the session went quiet, so an idle claim
/// takes it at once, and a chunk that arrives meanwhile re-opens it the usual way.
pub fn reopen(before: Option<&SessionState>) -> Decision<Reopen> {
    let Some(b) = before else {
        return Decision::Done(Reopen::NotFound);
    };
    match b.record.status {
        SessionStatus::Finalized => {
            let mut after = b.clone();
            after.record.status = SessionStatus::Open;
            Decision::Write(Box::new(after), Reopen::Reopened)
        }
        SessionStatus::Deleted => Decision::Done(Reopen::Deleted),
        status => Decision::Done(Reopen::NotFinalized(status)),
    }
}

/// Whether `state` is a tombstone that still refuses the session's chunks at `now`. The
/// expiry is checked here, on read, so a store without a native TTL (SQLite) needs no
/// cleanup job; Firestore and DynamoDB also delete expired tombstones by their TTL.
pub fn is_tombstone(state: &SessionState, now: Millis) -> bool {
    state.record.is_tombstone(now)
}

/// Erasing the session `guid`: its document becomes a tombstone holding nothing but the guid
/// and its expiry. Any claim loses its token with it, which is what makes an earlier
/// finalizer's renew (its fence) and complete fail. A live tombstone is left as it is.
pub fn tombstone(
    before: Option<&SessionState>,
    guid: &crate::engine::SessionGuid,
    now: Millis,
    ttl: Duration,
) -> Decision<Tombstoned> {
    if let Some(b) = before.filter(|b| is_tombstone(b, now)) {
        return Decision::Done(Tombstoned {
            had_session: false,
            already: true,
            until: b.record.lease_until.unwrap_or(now),
        });
    }
    let until = now.plus(ttl);
    let had_session = before.is_some_and(|b| b.record.status != SessionStatus::Deleted);
    let state = SessionState::unclaimed(SessionRecord {
        guid: guid.clone(),
        status: SessionStatus::Deleted,
        environment: String::new(),
        chunk_count: 0,
        first_chunk_time: String::new(),
        last_chunk_time: String::new(),
        last_chunk_at: now,
        // Kept, never lowered: a version is never reused for one guid.
        version: before.map_or(0, |b| b.record.version),
        lease_until: Some(until),
        result_object: None,
        finalized_at: None,
        finalize_count: 0,
        recorded_bytes: 0,
    });
    Decision::Write(
        Box::new(state),
        Tombstoned {
            had_session,
            already: false,
            until,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SessionGuid;

    fn chunk(name: &str) -> ChunkRecord {
        ChunkRecord {
            guid: SessionGuid::parse("g-1").unwrap(),
            bucket: "/b".into(),
            name: format!("{name}.json"),
            generation: "1".into(),
            timestamp: name.into(),
            environment: "e".into(),
            size: 1,
            event_count: 1,
            content_hash: String::new(),
        }
    }

    fn claim(version: u64) -> Claim {
        Claim {
            guid: SessionGuid::parse("g-1").unwrap(),
            token: "t".into(),
            version,
            lease_until: Millis(0),
        }
    }

    #[test]
    fn a_claim_covers_the_chunks_its_finalizer_listed() {
        let listed: Vec<ChunkRecord> = (0..3).map(|i| chunk(&format!("c{i}"))).collect();
        assert_eq!(
            claim(2).covering(&listed).version,
            3,
            "one chunk came after the claim"
        );
        assert_eq!(
            claim(5).covering(&listed).version,
            5,
            "never below the claim's version"
        );
        assert_eq!(claim(3).covering(&[]).token, "t");
    }

    #[test]
    fn completing_against_the_listing_reopens_only_for_an_unseen_chunk() {
        // Claimed at version 1, a chunk lands (version 2), the finalizer lists both.
        let (s1, _) = with_chunk(None, &chunk("2025-05-02T12:00:00Z"), Millis(0));
        let Decision::Write(claimed, ClaimOutcome::Claimed(c)) = super::claim(
            Some(&s1),
            ClaimMode::Force,
            Millis(1),
            Duration::from_secs(60),
            "t",
        ) else {
            panic!("claimable");
        };
        let (s2, _) = with_chunk(Some(&claimed), &chunk("2025-05-02T12:00:05Z"), Millis(2));
        let listed = [chunk("a"), chunk("b")];
        let Decision::Write(_, done) = complete(Some(&s2), &c.covering(&listed), "r", Millis(3))
        else {
            panic!("ours to complete");
        };
        assert_eq!(done, Completion::Finalized);
        // Listed before the second chunk: that one was not stitched.
        let Decision::Write(after, done) =
            complete(Some(&s2), &c.covering(&listed[..1]), "r", Millis(3))
        else {
            panic!("ours to complete");
        };
        assert_eq!(done, Completion::Reopened);
        assert_eq!(after.record.status, SessionStatus::Open);
    }

    #[test]
    fn recording_always_writes_and_reports_a_reopen() {
        let (s, _) = with_chunk(None, &chunk("2025-05-02T12:00:00Z"), Millis(0));
        let mut finalized = s.clone();
        finalized.record.status = SessionStatus::Finalized;
        let Decision::Write(after, recorded) = record(
            Some(&finalized),
            &chunk("2025-05-02T12:00:09Z"),
            None,
            Millis(5),
        ) else {
            panic!("a new chunk always writes");
        };
        assert_eq!(recorded, Recorded::New { reopened: true });
        assert_eq!(after.record.status, SessionStatus::Open);
        assert_eq!((after.record.version, after.record.chunk_count), (2, 2));
        assert_eq!(after.record.recorded_bytes, 2, "two chunks of one byte");
    }

    #[test]
    fn a_chunk_that_would_pass_the_quota_is_refused_whole() {
        let sized = |name: &str, size: u64| ChunkRecord {
            size,
            ..chunk(name)
        };
        let (s, _) = with_chunk(None, &sized("2025-05-02T12:00:00Z", 60), Millis(0));
        assert_eq!(s.record.recorded_bytes, 60);
        // Exactly up to the quota fits; one byte past it does not, and nothing is written.
        let fits = record(
            Some(&s),
            &sized("2025-05-02T12:00:01Z", 40),
            Some(100),
            Millis(1),
        );
        assert!(
            matches!(fits, Decision::Write(ref after, Recorded::New { .. })
            if after.record.recorded_bytes == 100)
        );
        let over = record(
            Some(&s),
            &sized("2025-05-02T12:00:01Z", 41),
            Some(100),
            Millis(1),
        );
        assert!(matches!(
            over,
            Decision::Done(Recorded::OverQuota {
                recorded_bytes: 60,
                max_bytes: 100
            })
        ));
        // A first chunk larger than the quota starts no session.
        let alone = record(
            None,
            &sized("2025-05-02T12:00:00Z", 101),
            Some(100),
            Millis(0),
        );
        assert!(matches!(
            alone,
            Decision::Done(Recorded::OverQuota {
                recorded_bytes: 0,
                ..
            })
        ));
        // No quota: anything fits.
        let free = record(
            Some(&s),
            &sized("2025-05-02T12:00:01Z", u64::MAX),
            None,
            Millis(1),
        );
        assert!(matches!(free, Decision::Write(..)));
    }
}
