//! One behaviour for every session index adapter.
//!
//! SQLite runs it in its unit tests; Firestore and DynamoDB run it against their emulators
//! from the `tests/` crate. Session ids are made unique per call, so the suite can run
//! against a shared emulator without resetting it.

use std::time::Duration;

use super::shard::Shards;
use super::{
    new_token, ChunkRecord, Claim, ClaimMode, ClaimOutcome, Completion, Recorded, RejectRecord,
    Reopen, SessionIndex, SessionRecord, SessionStatus, Tombstoned,
};
use crate::engine::SessionGuid;
use crate::time::Millis;

const LEASE: Duration = Duration::from_secs(60);

/// Runs every check.
pub async fn run_all(index: &dyn SessionIndex) {
    recording_is_idempotent(index).await;
    first_and_last_chunk_times(index).await;
    idle_query_and_claims(index).await;
    chunk_during_finalize_reopens(index).await;
    late_chunk_reopens_a_finalized_session(index).await;
    expired_lease_is_claimable_and_stale_claim_loses(index).await;
    release_returns_to_open(index).await;
    renew_holds_only_while_the_claim_is_current(index).await;
    force_claim_and_unknown_sessions(index).await;
    rejects_are_recorded_once(index).await;
    rejects_naming_a_session_are_found_and_forgotten(index).await;
    same_bytes_again_are_one_upload(index).await;
    claims_are_exclusive_across_handles(index, index).await;
    a_tombstone_refuses_chunks_and_claims(index).await;
    a_tombstone_needs_no_session(index).await;
    an_expired_tombstone_lets_a_session_start_over(index).await;
    forgetting_a_session_leaves_no_tombstone(index).await;
    paged_listing_covers_every_session_once(index).await;
    reopen_takes_only_a_finalized_session(index).await;
    the_quota_is_exact_under_concurrent_records(index).await;
    bookmarks_are_kept_replaced_and_cleared(index).await;
    counts_come_from_the_index_ranges(index).await;
    recent_rejects_are_a_time_range(index).await;
}

fn guid(tag: &str) -> SessionGuid {
    SessionGuid::parse(&format!("{tag}-{}", &new_token()[..12])).unwrap()
}

pub fn chunk(guid: &SessionGuid, name: &str, generation: &str) -> ChunkRecord {
    ChunkRecord {
        guid: guid.clone(),
        bucket: "/conformance".into(),
        // Object names are unique within a bucket (they are upload times); a per-session
        // folder keeps them unique across sessions here.
        name: format!("{guid}/{name}.json"),
        generation: generation.into(),
        timestamp: name.into(),
        environment: "test".into(),
        size: 10,
        event_count: 2,
        content_hash: String::new(),
    }
}

const T0: Millis = Millis(1_700_000_000_000);

fn at(secs: i64) -> Millis {
    Millis(T0.0 + secs * 1000)
}

/// Records the chunk named `name` (generation 1) of `g`.
async fn record(index: &dyn SessionIndex, g: &SessionGuid, name: &str, now: Millis) -> Recorded {
    index.record_chunk(&chunk(g, name, "1"), now).await.unwrap()
}

/// A claim that must win, else the test fails saying `why`.
async fn must_claim(
    index: &dyn SessionIndex,
    g: &SessionGuid,
    mode: ClaimMode,
    now: Millis,
    why: &str,
) -> Claim {
    match index.claim(g, mode, now, LEASE).await.unwrap() {
        ClaimOutcome::Claimed(claim) => claim,
        _ => panic!("{why}"),
    }
}

/// A manual finalize's claim, which must win.
async fn force_claim(index: &dyn SessionIndex, g: &SessionGuid, now: Millis) -> Claim {
    must_claim(index, g, ClaimMode::Force, now, "claimable").await
}

/// A sweep's claim mode.
fn idle(before: Millis) -> ClaimMode {
    ClaimMode::Idle {
        idle_before: before,
    }
}

/// The session's record, which must exist.
async fn session(index: &dyn SessionIndex, g: &SessionGuid) -> SessionRecord {
    index.session(g).await.unwrap().expect("session exists")
}

/// Whether a sweep with these bounds is offered `g`.
async fn offered(
    index: &dyn SessionIndex,
    g: &SessionGuid,
    idle_before: Millis,
    now: Millis,
) -> bool {
    index
        .idle_sessions(idle_before, now, 10_000)
        .await
        .unwrap()
        .contains(g)
}

/// The same bytes uploaded again under the same name (a new generation) are not new data:
/// nothing changes and a finalized session stays finalized; other bytes under that name are a
/// new upload.
pub async fn same_bytes_again_are_one_upload(index: &dyn SessionIndex) {
    let g = guid("rehash");
    let first = ChunkRecord {
        content_hash: super::content_hash(b"the bytes"),
        ..chunk(&g, "2025-05-02T12:00:00Z", "1")
    };
    index.record_chunk(&first, at(0)).await.unwrap();
    let claim = force_claim(index, &g, at(1)).await;
    assert_eq!(
        index.complete(&claim, "r.json", at(2)).await.unwrap(),
        Completion::Finalized
    );
    let again = ChunkRecord {
        generation: "2".into(),
        ..first.clone()
    };
    assert_eq!(
        index.record_chunk(&again, at(3)).await.unwrap(),
        Recorded::AlreadyKnown,
        "an identical re-upload is the upload already recorded"
    );
    let s = session(index, &g).await;
    assert_eq!(
        s.status,
        SessionStatus::Finalized,
        "nothing to stitch again"
    );
    assert_eq!(s.chunk_count, 1);
    let changed = ChunkRecord {
        generation: "3".into(),
        content_hash: super::content_hash(b"other bytes"),
        ..first
    };
    assert_eq!(
        index.record_chunk(&changed, at(4)).await.unwrap(),
        Recorded::New { reopened: true },
        "new bytes under the same name are new data"
    );
}

pub async fn recording_is_idempotent(index: &dyn SessionIndex) {
    let g = guid("idem");
    let c = chunk(&g, "2025-05-02T12:00:00Z", "1");
    assert_eq!(
        index.record_chunk(&c, at(0)).await.unwrap(),
        Recorded::New { reopened: false }
    );
    let before = index.session(&g).await.unwrap().expect("session exists");
    assert_eq!(
        index.record_chunk(&c, at(5)).await.unwrap(),
        Recorded::AlreadyKnown,
        "the same bucket+name+generation twice is one chunk"
    );
    let after = session(index, &g).await;
    assert_eq!(before, after, "a redelivered chunk changes nothing");
    assert_eq!(after.chunk_count, 1);
    assert_eq!(after.status, SessionStatus::Open);
    // A new generation of the same name is a new upload.
    let c2 = chunk(&g, "2025-05-02T12:00:00Z", "2");
    assert_eq!(
        index.record_chunk(&c2, at(6)).await.unwrap(),
        Recorded::New { reopened: false }
    );
    assert_eq!(index.chunks(&g).await.unwrap().len(), 2);
}

pub async fn first_and_last_chunk_times(index: &dyn SessionIndex) {
    let g = guid("times");
    for (name, t) in [
        ("2025-05-02T12:00:05Z", 0),
        ("2025-05-02T12:00:01Z", 1),
        ("2025-05-02T14:00:09+0200", 2), // 12:00:09Z: the latest
    ] {
        index
            .record_chunk(&chunk(&g, name, "1"), at(t))
            .await
            .unwrap();
    }
    let s = session(index, &g).await;
    assert_eq!(s.first_chunk_time, "2025-05-02T12:00:01Z");
    assert_eq!(s.last_chunk_time, "2025-05-02T14:00:09+0200");
    assert_eq!(s.last_chunk_at, at(2), "arrival time of the latest chunk");
    assert_eq!(s.chunk_count, 3);
    assert_eq!(s.environment, "test");
}

pub async fn idle_query_and_claims(index: &dyn SessionIndex) {
    let (old, fresh) = (guid("old"), guid("fresh"));
    record(index, &old, "2025-05-02T12:00:00Z", at(0)).await;
    record(index, &fresh, "2025-05-02T12:00:00Z", at(100)).await;
    let swept = index.idle_sessions(at(50), at(100), 10_000).await.unwrap();
    assert!(swept.contains(&old), "{old} is idle");
    assert!(!swept.contains(&fresh), "{fresh} is not idle");

    let mode = idle(at(50));
    let claim = must_claim(index, &old, mode, at(100), "an idle session is claimable").await;
    assert_eq!(claim.lease_until, at(100).plus(LEASE));
    assert!(matches!(
        index.claim(&old, mode, at(101), LEASE).await.unwrap(),
        ClaimOutcome::Busy { .. }
    ));
    assert_eq!(
        index.claim(&fresh, mode, at(101), LEASE).await.unwrap(),
        ClaimOutcome::NotEligible,
        "a session that is not idle is not claimed by a sweep"
    );
    let s = session(index, &old).await;
    assert_eq!(s.status, SessionStatus::Finalizing);
    assert!(!offered(index, &old, at(50), at(101)).await);

    assert_eq!(
        index
            .complete(&claim, "results/old.json", at(102))
            .await
            .unwrap(),
        Completion::Finalized
    );
    let s = session(index, &old).await;
    assert_eq!(s.status, SessionStatus::Finalized);
    assert_eq!(s.result_object.as_deref(), Some("results/old.json"));
    assert_eq!(s.finalized_at, Some(at(102)));
    assert_eq!(s.finalize_count, 1);
    assert_eq!(s.lease_until, None);
    assert_eq!(
        index
            .claim(&old, idle(at(500)), at(500), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::NotEligible,
        "a finalized session is not swept again"
    );
    assert!(!offered(index, &old, at(500), at(500)).await);
}

pub async fn chunk_during_finalize_reopens(index: &dyn SessionIndex) {
    let g = guid("mid");
    record(index, &g, "2025-05-02T12:00:00Z", at(0)).await;
    let claim = force_claim(index, &g, at(10)).await;
    record(index, &g, "2025-05-02T12:00:30Z", at(11)).await;
    assert_eq!(
        session(index, &g).await.status,
        SessionStatus::Finalizing,
        "a chunk does not break a live claim"
    );
    assert_eq!(
        index.complete(&claim, "r.json", at(12)).await.unwrap(),
        Completion::Reopened
    );
    let s = session(index, &g).await;
    assert_eq!(s.status, SessionStatus::Open);
    assert!(offered(index, &g, at(100), at(100)).await);
}

pub async fn late_chunk_reopens_a_finalized_session(index: &dyn SessionIndex) {
    let g = guid("late");
    record(index, &g, "2025-05-02T12:00:00Z", at(0)).await;
    let claim = force_claim(index, &g, at(10)).await;
    index.complete(&claim, "r.json", at(11)).await.unwrap();
    assert_eq!(
        record(index, &g, "2025-05-02T12:10:00Z", at(20)).await,
        Recorded::New { reopened: true }
    );
    let s = session(index, &g).await;
    assert_eq!(s.status, SessionStatus::Open);
    assert_eq!(s.chunk_count, 2);
    // A duplicate of an already-finalized chunk does not re-open anything.
    let h = guid("late-dup");
    let c = chunk(&h, "2025-05-02T12:00:00Z", "1");
    index.record_chunk(&c, at(0)).await.unwrap();
    let claim = force_claim(index, &h, at(10)).await;
    index.complete(&claim, "r.json", at(11)).await.unwrap();
    assert_eq!(
        index.record_chunk(&c, at(30)).await.unwrap(),
        Recorded::AlreadyKnown
    );
    assert_eq!(session(index, &h).await.status, SessionStatus::Finalized);
}

/// Renewal is the finalizer's fence: it must succeed for the current claim (even past its
/// lease, if nobody took over), keep the session out of the sweep query while it holds, and
/// fail once another claim, a completion or a release has happened.
pub async fn renew_holds_only_while_the_claim_is_current(index: &dyn SessionIndex) {
    let g = guid("renew");
    record(index, &g, "2025-05-02T12:00:00Z", at(0)).await;
    let first = force_claim(index, &g, at(10)).await;
    let past_lease = at(10).plus(LEASE).plus(Duration::from_secs(5));
    assert_eq!(
        index.renew(&first, past_lease, LEASE).await.unwrap(),
        Some(past_lease.plus(LEASE)),
        "an expired claim nobody took over may still renew"
    );
    let record = session(index, &g).await;
    assert_eq!(record.lease_until, Some(past_lease.plus(LEASE)));
    assert_eq!(record.status, SessionStatus::Finalizing);
    let soon = past_lease.plus(Duration::from_secs(1));
    assert!(
        !offered(index, &g, at(5), soon).await,
        "a renewed lease is live again: no sweep offers the session"
    );
    assert!(matches!(
        index.claim(&g, idle(at(5)), soon, LEASE).await.unwrap(),
        ClaimOutcome::Busy { .. }
    ));
    // Let it expire again, and another finalizer takes over: the first may not renew now.
    let later = past_lease.plus(LEASE).plus(Duration::from_secs(5));
    let second = must_claim(
        index,
        &g,
        idle(at(5)),
        later,
        "an expired lease is claimable",
    )
    .await;
    assert_eq!(
        index.renew(&first, later, LEASE).await.unwrap(),
        None,
        "a superseded claim cannot renew"
    );
    assert_eq!(
        session(index, &g).await.lease_until,
        Some(later.plus(LEASE)),
        "the superseded renewal changed nothing"
    );
    assert!(index.renew(&second, later, LEASE).await.unwrap().is_some());
    assert_eq!(
        index.complete(&second, "r.json", later).await.unwrap(),
        Completion::Finalized
    );
    assert_eq!(
        index.renew(&second, later, LEASE).await.unwrap(),
        None,
        "a completed claim cannot renew"
    );
    assert_eq!(session(index, &g).await.status, SessionStatus::Finalized);
}

pub async fn expired_lease_is_claimable_and_stale_claim_loses(index: &dyn SessionIndex) {
    let g = guid("lease");
    record(index, &g, "2025-05-02T12:00:00Z", at(0)).await;
    let dead = force_claim(index, &g, at(10)).await;
    let after_lease = at(10).plus(LEASE).plus(Duration::from_secs(1));
    assert!(
        offered(index, &g, at(5), after_lease).await,
        "an expired lease shows up in the sweep query"
    );
    let second = must_claim(
        index,
        &g,
        idle(at(5)),
        after_lease,
        "an expired lease is claimable by a sweep",
    )
    .await;
    assert_ne!(second.token, dead.token);
    assert_eq!(
        index
            .complete(&dead, "stale.json", after_lease)
            .await
            .unwrap(),
        Completion::LostClaim,
        "the dead finalizer's late completion changes nothing"
    );
    assert_eq!(session(index, &g).await.status, SessionStatus::Finalizing);
    assert_eq!(
        index
            .complete(&second, "r.json", after_lease)
            .await
            .unwrap(),
        Completion::Finalized
    );
    assert_eq!(
        session(index, &g).await.result_object.as_deref(),
        Some("r.json")
    );
}

pub async fn release_returns_to_open(index: &dyn SessionIndex) {
    let g = guid("release");
    record(index, &g, "2025-05-02T12:00:00Z", at(0)).await;
    let claim = force_claim(index, &g, at(10)).await;
    index.release(&claim, at(11)).await.unwrap();
    let s = session(index, &g).await;
    assert_eq!(s.status, SessionStatus::Open);
    assert_eq!(s.lease_until, None);
    assert!(matches!(
        index.claim(&g, idle(at(12)), at(12), LEASE).await.unwrap(),
        ClaimOutcome::Claimed(_)
    ));
}

pub async fn force_claim_and_unknown_sessions(index: &dyn SessionIndex) {
    let g = guid("force");
    record(index, &g, "2025-05-02T12:00:00Z", at(0)).await;
    assert!(
        matches!(
            index
                .claim(&g, ClaimMode::Force, at(1), LEASE)
                .await
                .unwrap(),
            ClaimOutcome::Claimed(_)
        ),
        "a manual finalize does not wait for idleness"
    );
    let unknown = guid("unknown");
    assert_eq!(
        index
            .claim(&unknown, ClaimMode::Force, at(1), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::NotFound
    );
    assert_eq!(index.session(&unknown).await.unwrap(), None);
    assert!(index.chunks(&unknown).await.unwrap().is_empty());
}

pub async fn rejects_are_recorded_once(index: &dyn SessionIndex) {
    let r = RejectRecord {
        bucket: "/conformance".into(),
        name: format!("bad-{}.json", new_token()),
        generation: "1".into(),
        kind: "bad_json".into(),
        reason: "invalid JSON: EOF".into(),
        session_guid: None,
        size: 0,
    };
    assert!(index.record_rejected(&r, at(0)).await.unwrap());
    assert!(
        !index.record_rejected(&r, at(1)).await.unwrap(),
        "a redelivery is not a new reject"
    );
    let listed = index.rejected(10_000).await.unwrap();
    assert_eq!(listed.iter().filter(|x| **x == r).count(), 1);
}

/// A refused object whose bytes name a session is found by that session, whole, and
/// forgotten with it (erasure); rejects naming another session or none stay.
pub async fn rejects_naming_a_session_are_found_and_forgotten(index: &dyn SessionIndex) {
    let (g, other) = (guid("rejected"), guid("rejected-other"));
    let reject = |n: usize, guid: Option<&SessionGuid>| RejectRecord {
        bucket: "/conformance".into(),
        name: format!("bad-{}-{n}.json", new_token()),
        generation: "1".into(),
        kind: "bad_event".into(),
        reason: "event 3: missing field `type`".into(),
        session_guid: guid.cloned(),
        size: 1000 + n as u64,
    };
    let ours = [reject(0, Some(&g)), reject(1, Some(&g))];
    let theirs = [reject(2, Some(&other)), reject(3, None)];
    for r in ours.iter().chain(&theirs) {
        assert!(index.record_rejected(r, at(0)).await.unwrap());
    }
    let sorted = |mut v: Vec<RejectRecord>| {
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    assert_eq!(
        sorted(index.rejected_of(&g).await.unwrap()),
        sorted(ours.to_vec()),
        "a session's rejects, whole, with their guid"
    );
    assert_eq!(index.forget_rejected(&g).await.unwrap(), 2);
    assert!(index.rejected_of(&g).await.unwrap().is_empty());
    assert_eq!(index.forget_rejected(&g).await.unwrap(), 0, "idempotent");
    let listed = index.rejected(10_000).await.unwrap();
    assert!(
        !listed.iter().any(|r| ours.contains(r)),
        "forgotten rejects are not listed"
    );
    for r in &theirs {
        assert_eq!(listed.iter().filter(|x| *x == r).count(), 1, "{r:?} stays");
    }
    assert_eq!(
        index.rejected_of(&other).await.unwrap(),
        [theirs[0].clone()]
    );
}

/// Two handles (two processes, in effect) race for one session: exactly one wins.
pub async fn claims_are_exclusive_across_handles(a: &dyn SessionIndex, b: &dyn SessionIndex) {
    let g = guid("race");
    record(a, &g, "2025-05-02T12:00:00Z", at(0)).await;
    let mode = idle(at(10));
    let (x, y) = tokio::join!(
        a.claim(&g, mode, at(10), LEASE),
        b.claim(&g, mode, at(10), LEASE)
    );
    let wins = [x.unwrap(), y.unwrap()]
        .iter()
        .filter(|o| matches!(o, ClaimOutcome::Claimed(_)))
        .count();
    assert_eq!(wins, 1, "exactly one of two racing claims wins");
    assert!(
        b.session(&g).await.unwrap().is_some(),
        "both handles see the session"
    );
}

/// Changing the shard count strands nothing. `four`, `eight` and `two` are handles on one
/// backend stamping with 4, 8 and 2 shards (one deployment before and after a reshard, or
/// two versions of it running side by side): sessions the 4-shard writer stamped are offered
/// by a sweep on either of the others, as idle and as expired leases, and what a 2-shard
/// writer re-stamps is still found by the others.
pub async fn resharding_strands_nothing(
    four: &dyn SessionIndex,
    eight: &dyn SessionIndex,
    two: &dyn SessionIndex,
) {
    let guids: Vec<SessionGuid> = (0..24).map(|i| guid(&format!("reshard{i}"))).collect();
    for g in &guids {
        record(four, g, "2025-05-02T12:00:00Z", at(0)).await;
    }
    let beyond_two: Vec<&SessionGuid> =
        guids.iter().filter(|g| Shards::new(4).of(g) >= 2).collect();
    assert!(
        !beyond_two.is_empty(),
        "some session must live in a shard a 2-shard writer never stamps"
    );
    for (label, index) in [("8", eight), ("2", two), ("4", four)] {
        let swept = index.idle_sessions(at(50), at(50), 10_000).await.unwrap();
        for g in &guids {
            assert!(
                swept.contains(g),
                "{g}, stamped with 4 shards, is not offered by a {label}-shard sweep"
            );
        }
    }

    // The 2-shard writer records a chunk: the session moves into its range; both find it.
    let moved = beyond_two[0];
    record(two, moved, "2025-05-02T12:01:00Z", at(60)).await;
    for (label, index) in [("8", eight), ("2", two)] {
        assert!(
            offered(index, moved, at(100), at(100)).await,
            "a session re-stamped by a 2-shard writer is not offered by a {label}-shard sweep"
        );
    }

    // A lease taken by the 8-shard process and left to expire: the 2-shard sweep takes over.
    let held = *beyond_two.last().unwrap();
    let dead = force_claim(eight, held, at(100)).await;
    let expired = at(100).plus(LEASE).plus(Duration::from_secs(1));
    assert!(
        offered(two, held, at(50), expired).await,
        "an expired lease stamped with 8 shards is not offered by a 2-shard sweep"
    );
    let second = must_claim(
        two,
        held,
        idle(at(50)),
        expired,
        "an expired lease is claimable whatever the shard count",
    )
    .await;
    assert_eq!(
        four.complete(&dead, "stale.json", expired).await.unwrap(),
        Completion::LostClaim
    );
    assert_eq!(
        four.complete(&second, "r.json", expired).await.unwrap(),
        Completion::Finalized
    );
    for index in [four, eight, two] {
        assert!(
            !offered(index, held, at(500), at(500)).await,
            "a finalized session is in no sweep query"
        );
    }
    let listed = two.sessions(10_000).await.unwrap();
    for g in &guids {
        assert!(
            listed.iter().any(|s| &s.guid == g),
            "{g} is missing from the 2-shard listing"
        );
    }
}

const TTL: Duration = Duration::from_secs(400 * 24 * 3600);

/// An erased session: its tombstone refuses every chunk (new or already seen), every claim,
/// and an earlier claim's renew and complete; it is in no listing or idle query; its chunk
/// records go with `forget_chunks`; and tombstoning again changes nothing.
pub async fn a_tombstone_refuses_chunks_and_claims(index: &dyn SessionIndex) {
    let g = guid("tomb");
    let first = chunk(&g, "2025-05-02T12:00:00Z", "1");
    index.record_chunk(&first, at(0)).await.unwrap();
    record(index, &g, "2025-05-02T12:00:05Z", at(1)).await;
    let claim = must_claim(
        index,
        &g,
        ClaimMode::Force,
        at(2),
        "claimable before the delete",
    )
    .await;
    let done = index.tombstone(&g, at(3), TTL).await.unwrap();
    assert_eq!(
        done,
        Tombstoned {
            had_session: true,
            already: false,
            until: at(3).plus(TTL)
        }
    );
    let late = chunk(&g, "2025-05-02T12:00:09Z", "1");
    assert_eq!(
        index.record_chunk(&late, at(4)).await.unwrap(),
        Recorded::Deleted,
        "a new chunk of an erased session is refused"
    );
    assert_eq!(
        index.record_chunk(&first, at(4)).await.unwrap(),
        Recorded::Deleted,
        "a redelivered chunk of an erased session is refused too"
    );
    assert_eq!(
        index.renew(&claim, at(5), LEASE).await.unwrap(),
        None,
        "the fence of a finalizer that claimed before the delete fails"
    );
    assert_eq!(
        index.complete(&claim, "r.json", at(5)).await.unwrap(),
        Completion::LostClaim
    );
    index.release(&claim, at(5)).await.unwrap();
    for mode in [ClaimMode::Force, idle(at(10_000))] {
        assert_eq!(
            index.claim(&g, mode, at(6), LEASE).await.unwrap(),
            ClaimOutcome::NotFound,
            "nothing to finalize ({mode:?})"
        );
    }
    let s = index.session(&g).await.unwrap().expect("the tombstone");
    assert_eq!(s.status, SessionStatus::Deleted);
    assert_eq!((s.chunk_count, s.environment.as_str()), (0, ""));
    assert_eq!(s.lease_until, Some(at(3).plus(TTL)), "expiry is kept");
    assert!(s.result_object.is_none());
    assert!(
        !offered(index, &g, at(10_000), at(10_000)).await,
        "a tombstone is never idle"
    );
    let listed = index.sessions(10_000).await.unwrap();
    assert!(listed.iter().all(|s| s.guid != g), "nor listed");
    assert_eq!(index.chunks(&g).await.unwrap().len(), 2);
    assert_eq!(index.forget_chunks(&g).await.unwrap(), 2);
    assert!(index.chunks(&g).await.unwrap().is_empty());
    assert_eq!(index.forget_chunks(&g).await.unwrap(), 0, "idempotent");
    let again = index.tombstone(&g, at(7), TTL).await.unwrap();
    assert!(again.already && !again.had_session, "{again:?}");
    assert_eq!(
        again.until,
        at(3).plus(TTL),
        "a live tombstone is left as it is"
    );
}

/// A guid the index never saw can be tombstoned, so chunks still in flight are refused.
pub async fn a_tombstone_needs_no_session(index: &dyn SessionIndex) {
    let g = guid("tomb-unseen");
    let done = index.tombstone(&g, at(0), TTL).await.unwrap();
    assert!(!done.had_session && !done.already, "{done:?}");
    assert_eq!(
        record(index, &g, "2025-05-02T12:00:00Z", at(1)).await,
        Recorded::Deleted
    );
    assert!(index.chunks(&g).await.unwrap().is_empty());
}

/// Past its expiry a tombstone refuses nothing: a chunk starts a new session from scratch
/// (checked on read, so stores without a native TTL agree).
pub async fn an_expired_tombstone_lets_a_session_start_over(index: &dyn SessionIndex) {
    let g = guid("tomb-expired");
    record(index, &g, "2025-05-02T12:00:00Z", at(0)).await;
    index
        .tombstone(&g, at(1), Duration::from_secs(10))
        .await
        .unwrap();
    index.forget_chunks(&g).await.unwrap();
    assert_eq!(
        index
            .claim(&g, ClaimMode::Force, at(20), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::NotFound,
        "an expired tombstone is still nothing to finalize"
    );
    assert_eq!(
        record(index, &g, "2025-05-02T13:00:00Z", at(20)).await,
        Recorded::New { reopened: false }
    );
    let s = session(index, &g).await;
    assert_eq!(s.status, SessionStatus::Open);
    assert_eq!((s.chunk_count, s.version), (1, 1));
    assert_eq!(s.first_chunk_time, "2025-05-02T13:00:00Z");
    assert_eq!(s.lease_until, None);
    let again = index.tombstone(&g, at(21), TTL).await.unwrap();
    assert!(again.had_session && !again.already, "{again:?}");
}

/// Retention removes a session's document without a tombstone: a later chunk is a new
/// session. A tombstone is not retention's to remove.
pub async fn forgetting_a_session_leaves_no_tombstone(index: &dyn SessionIndex) {
    let g = guid("forget");
    record(index, &g, "2025-05-02T12:00:00Z", at(0)).await;
    assert_eq!(index.forget_chunks(&g).await.unwrap(), 1);
    assert!(index.forget_session(&g).await.unwrap());
    assert_eq!(index.session(&g).await.unwrap(), None);
    assert!(!index.forget_session(&g).await.unwrap(), "nothing left");
    assert_eq!(
        record(index, &g, "2025-05-02T12:00:00Z", at(1)).await,
        Recorded::New { reopened: false },
        "the chunk record went too, so the same chunk is new again"
    );
    index.tombstone(&g, at(2), TTL).await.unwrap();
    assert!(!index.forget_session(&g).await.unwrap());
    assert_eq!(session(index, &g).await.status, SessionStatus::Deleted);
}

/// The paged listing a bulk walk (re-stitch) makes: pages of at most the limit, each cursor
/// continuing the last, every session listed exactly once (tombstones too, as such) and a last
/// page that says the walk is done. The store may hold other tests' sessions: only the order
/// of ours is not assumed (DynamoDB lists in its scan order).
pub async fn paged_listing_covers_every_session_once(index: &dyn SessionIndex) {
    let ours: Vec<SessionGuid> = (0..5).map(|i| guid(&format!("page{i}"))).collect();
    for (i, g) in ours.iter().enumerate() {
        record(index, g, "2025-05-02T12:00:00Z", at(i as i64)).await;
    }
    let erased = guid("page-tomb");
    index.tombstone(&erased, at(9), TTL).await.unwrap();
    let (mut after, mut seen, mut pages) = (None::<String>, Vec::new(), 0);
    loop {
        let page = index.sessions_page(after.as_deref(), 3).await.unwrap();
        pages += 1;
        assert!(page.sessions.len() <= 3, "a page holds at most its limit");
        if let Some(next) = &page.next {
            assert_eq!(page.sessions.len(), 3, "only a full page has a next one");
            assert_eq!(
                Some(next.as_str()),
                page.sessions.last().map(|s| s.guid.as_str()),
                "the cursor is the last guid listed"
            );
        }
        seen.extend(page.sessions);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10_000, "the walk ends");
    }
    for g in &ours {
        let n = seen.iter().filter(|s| &s.guid == g).count();
        assert_eq!(n, 1, "{g} listed once");
    }
    let tomb: Vec<_> = seen.iter().filter(|s| s.guid == erased).collect();
    assert_eq!(tomb.len(), 1, "the tombstone is listed, once");
    assert_eq!(tomb[0].status, SessionStatus::Deleted);
    let mut guids: Vec<&str> = seen.iter().map(|s| s.guid.as_str()).collect();
    guids.sort_unstable();
    let total = guids.len();
    guids.dedup();
    assert_eq!(guids.len(), total, "no session is listed twice");
    // A cursor whose session is gone (retention forgot it) still continues after it.
    let gone = &ours[2];
    index.forget_session(gone).await.unwrap();
    let rest = index
        .sessions_page(Some(gone.as_str()), 10_000)
        .await
        .unwrap();
    assert!(rest.sessions.iter().all(|s| &s.guid != gone));
}

/// Re-opening for another stitch: a finalized session becomes open (chunks, version and last
/// arrival untouched, so the sweep's idle claim takes it); an open, finalizing, erased or
/// unknown session is left as it is.
pub async fn reopen_takes_only_a_finalized_session(index: &dyn SessionIndex) {
    let g = guid("reopen");
    record(index, &g, "2025-05-02T12:00:00Z", at(0)).await;
    record(index, &g, "2025-05-02T12:00:05Z", at(1)).await;
    assert_eq!(
        index.reopen(&g, at(2)).await.unwrap(),
        Reopen::NotFinalized(SessionStatus::Open)
    );
    let claim = force_claim(index, &g, at(2)).await;
    assert_eq!(
        index.reopen(&g, at(3)).await.unwrap(),
        Reopen::NotFinalized(SessionStatus::Finalizing),
        "a finalizer's claim is left alone"
    );
    index.complete(&claim, "r.json", at(4)).await.unwrap();
    let finalized = session(index, &g).await;
    assert_eq!(index.reopen(&g, at(50)).await.unwrap(), Reopen::Reopened);
    let s = session(index, &g).await;
    assert_eq!(s.status, SessionStatus::Open);
    assert_eq!(
        (s.version, s.chunk_count, s.last_chunk_at, s.finalize_count),
        (
            finalized.version,
            finalized.chunk_count,
            finalized.last_chunk_at,
            finalized.finalize_count
        )
    );
    assert!(
        offered(index, &g, at(10), at(50)).await,
        "the sweep finds it"
    );
    let again = must_claim(index, &g, idle(at(10)), at(51), "an idle claim takes it").await;
    assert_eq!(
        index.complete(&again, "r.json", at(52)).await.unwrap(),
        Completion::Finalized
    );
    assert_eq!(session(index, &g).await.finalize_count, 2);
    let erased = guid("reopen-tomb");
    record(index, &erased, "2025-05-02T12:00:00Z", at(0)).await;
    let claim = force_claim(index, &erased, at(1)).await;
    index.complete(&claim, "r.json", at(2)).await.unwrap();
    index.tombstone(&erased, at(3), TTL).await.unwrap();
    assert_eq!(index.reopen(&erased, at(4)).await.unwrap(), Reopen::Deleted);
    assert_eq!(
        session(index, &erased).await.status,
        SessionStatus::Deleted,
        "a tombstone is never re-opened"
    );
    assert_eq!(
        index.reopen(&guid("reopen-none"), at(4)).await.unwrap(),
        Reopen::NotFound
    );
}

/// The per-session quota: 32 chunks of 100 bytes recorded at once into a 1000-byte quota
/// record exactly 10 (the last one filling it to the byte); the other 22 are refused and
/// write nothing. A redelivery of a recorded chunk stays `AlreadyKnown` once the session is
/// full, one of a refused chunk stays refused, and a chunk alone larger than the quota starts
/// no session. Decided in the protocol's conditional write, so it holds on every backend.
pub async fn the_quota_is_exact_under_concurrent_records(index: &dyn SessionIndex) {
    const RACERS: usize = 32;
    const SIZE: u64 = 100;
    const MAX: u64 = 1000;
    let g = guid("quota");
    let sized = |n: usize| ChunkRecord {
        size: SIZE,
        ..chunk(&g, &format!("2025-05-02T12:00:{n:02}Z"), "1")
    };
    let chunks: Vec<ChunkRecord> = (0..RACERS).map(sized).collect();
    // Each racer retries what the platform would redeliver: a transient contention error.
    let race = chunks.iter().map(|c| async move {
        for _ in 0..5 {
            match index.record_chunk_within(c, Some(MAX), at(0)).await {
                Err(e) if e.is_transient() => continue,
                other => return other.unwrap(),
            }
        }
        panic!("{}: contended five times over", c.name);
    });
    let outcomes = futures::future::join_all(race).await;
    let recorded: Vec<&ChunkRecord> = chunks
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Recorded::New { .. }))
        .map(|(c, _)| c)
        .collect();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Recorded::OverQuota { max_bytes: MAX, .. }))
        .count();
    assert_eq!(
        (recorded.len(), refused),
        ((MAX / SIZE) as usize, RACERS - (MAX / SIZE) as usize),
        "{outcomes:?}"
    );
    let s = session(index, &g).await;
    assert_eq!(s.recorded_bytes, MAX, "filled to the byte, never past it");
    assert_eq!((s.chunk_count, s.version), (MAX / SIZE, MAX / SIZE));
    assert_eq!(index.chunks(&g).await.unwrap().len(), (MAX / SIZE) as usize);

    assert_eq!(
        index
            .record_chunk_within(recorded[0], Some(MAX), at(1))
            .await
            .unwrap(),
        Recorded::AlreadyKnown,
        "a redelivery of a recorded chunk is not a refusal, even with the session full"
    );
    let refused_one = chunks
        .iter()
        .zip(&outcomes)
        .find(|(_, o)| matches!(o, Recorded::OverQuota { .. }))
        .map(|(c, _)| c)
        .unwrap();
    assert_eq!(
        index
            .record_chunk_within(refused_one, Some(MAX), at(1))
            .await
            .unwrap(),
        Recorded::OverQuota {
            recorded_bytes: MAX,
            max_bytes: MAX
        },
        "a redelivery of a refused chunk is refused again"
    );
    // Without a quota the same index records it: the quota is the caller's, per call.
    assert!(matches!(
        index.record_chunk(refused_one, at(2)).await.unwrap(),
        Recorded::New { .. }
    ));
    assert_eq!(session(index, &g).await.recorded_bytes, MAX + SIZE);

    let lone = guid("quota-lone");
    let big = ChunkRecord {
        size: MAX + 1,
        ..chunk(&lone, "2025-05-02T12:00:00Z", "1")
    };
    assert_eq!(
        index
            .record_chunk_within(&big, Some(MAX), at(0))
            .await
            .unwrap(),
        Recorded::OverQuota {
            recorded_bytes: 0,
            max_bytes: MAX
        }
    );
    assert_eq!(
        index.session(&lone).await.unwrap(),
        None,
        "no session started"
    );
}

/// Bookmarks: unset reads `None`; a value set is read back whole (a chunk name with `/`, `:`
/// and `+`), a second set replaces it, another name is another bookmark, clearing removes it
/// and clearing again is no error. None of it is a session: the listings never show it.
pub async fn bookmarks_are_kept_replaced_and_cleared(index: &dyn SessionIndex) {
    let name = "conformance-job";
    assert_eq!(index.bookmark(name).await.unwrap(), None);
    let first = "chunks/2025-05-02T12:10:50.644191+0000.json";
    index.set_bookmark(name, Some(first)).await.unwrap();
    assert_eq!(index.bookmark(name).await.unwrap().as_deref(), Some(first));
    let second = "chunks/2025-05-03T00:00:00.000000-0700.json";
    index.set_bookmark(name, Some(second)).await.unwrap();
    index
        .set_bookmark("conformance-other", Some("x"))
        .await
        .unwrap();
    assert_eq!(index.bookmark(name).await.unwrap().as_deref(), Some(second));
    assert_eq!(
        index
            .bookmark("conformance-other")
            .await
            .unwrap()
            .as_deref(),
        Some("x")
    );
    index.set_bookmark(name, None).await.unwrap();
    assert_eq!(index.bookmark(name).await.unwrap(), None);
    index.set_bookmark(name, None).await.unwrap();
    index.set_bookmark("conformance-other", None).await.unwrap();
    let listed = index.sessions(10_000).await.unwrap();
    assert!(
        listed
            .iter()
            .all(|s| !s.guid.as_str().contains("conformance-")),
        "a bookmark is not a session"
    );
    let page = index.sessions_page(None, 10_000).await.unwrap();
    assert!(page
        .sessions
        .iter()
        .all(|s| !s.guid.as_str().contains("conformance-")));
}

/// `status`'s counts come from the index ranges, across every shard: open sessions and the
/// one idle longest, finalizing ones and the leases past due, tombstones; finalized sessions
/// are in none. Measured as differences, so whatever the other checks left stays out of it.
pub async fn counts_come_from_the_index_ranges(index: &dyn SessionIndex) {
    // 400 days before every other check's times: these are the oldest sessions here.
    let base = Millis(T0.0 - 400 * 86_400_000);
    let now = Millis(base.0 + 3_600_000);
    let was = index.counts(now).await.unwrap();

    let (open_a, open_b) = (guid("count-open-a"), guid("count-open-b"));
    record(index, &open_a, "2023-01-01T00:00:00.000000+0000", base).await;
    record(
        index,
        &open_b,
        "2023-01-01T00:00:10.000000+0000",
        Millis(base.0 + 10_000),
    )
    .await;
    let (live, dead) = (guid("count-live"), guid("count-dead"));
    record(
        index,
        &live,
        "2023-01-01T00:00:20.000000+0000",
        Millis(base.0 + 20_000),
    )
    .await;
    force_claim(index, &live, now).await;
    record(
        index,
        &dead,
        "2023-01-01T00:00:30.000000+0000",
        Millis(base.0 + 30_000),
    )
    .await;
    let stalled = force_claim(index, &dead, Millis(base.0 + 40_000)).await;
    let done = guid("count-done");
    record(
        index,
        &done,
        "2023-01-01T00:00:40.000000+0000",
        Millis(base.0 + 40_000),
    )
    .await;
    let claim = force_claim(index, &done, now).await;
    index.complete(&claim, "done.json", now).await.unwrap();
    index
        .tombstone(&guid("count-erased"), now, LEASE)
        .await
        .unwrap();

    let is = index.counts(now).await.unwrap();
    assert_eq!(is.open - was.open, 2, "{was:?} → {is:?}");
    assert_eq!(is.finalizing - was.finalizing, 2, "{was:?} → {is:?}");
    assert_eq!(
        is.leases_past_due - was.leases_past_due,
        1,
        "{was:?} → {is:?}"
    );
    assert_eq!(is.tombstones - was.tombstones, 1, "{was:?} → {is:?}");
    let oldest = is.oldest_open.expect("an open session");
    assert_eq!(oldest.at, base, "the open session idle longest: {oldest:?}");
    let past_due = is.oldest_past_due.expect("a lease past due");
    assert_eq!(past_due.at, stalled.lease_until, "{past_due:?}");
    assert_eq!(past_due.guid, dead);
    // A lease still running is not past due; once it runs out, it is.
    let later = index.counts(now.plus(LEASE * 2)).await.unwrap();
    assert_eq!(later.leases_past_due - was.leases_past_due, 2, "{later:?}");
}

/// The refused objects of a time window, newest first, and none from before it.
pub async fn recent_rejects_are_a_time_range(index: &dyn SessionIndex) {
    let base = Millis(T0.0 - 300 * 86_400_000);
    let hour = 3_600_000;
    let tag = new_token();
    let reject = |n: u32| RejectRecord {
        bucket: "/conformance".into(),
        name: format!("recent-{tag}-{n}.json"),
        generation: "1".into(),
        kind: if n == 2 { "bad_guid" } else { "bad_json" }.into(),
        reason: "conformance".into(),
        session_guid: None,
        size: 0,
    };
    // Refused 25, 2 and 1 hours before `base`.
    for (n, hours_before) in [(0, 25), (1, 2), (2, 1)] {
        let at = Millis(base.0 - hours_before * hour);
        assert!(index.record_rejected(&reject(n), at).await.unwrap());
    }
    let day = index
        .rejected_since(Millis(base.0 - 24 * hour), 10_000)
        .await
        .unwrap();
    let ours: Vec<&RejectRecord> = day
        .iter()
        .filter(|r| r.name.contains(tag.as_str()))
        .collect();
    assert_eq!(
        ours,
        [&reject(2), &reject(1)],
        "newest first, the window only"
    );
    let all = index
        .rejected_since(Millis(base.0 - 48 * hour), 10_000)
        .await
        .unwrap();
    assert_eq!(
        all.iter().filter(|r| r.name.contains(tag.as_str())).count(),
        3
    );
}
