//! One behaviour for every session index adapter.
//!
//! SQLite runs it in its unit tests; Firestore and DynamoDB run it against their emulators
//! from the `tests/` crate. Session ids are made unique per call, so the suite can run
//! against a shared emulator without resetting it.

use std::time::Duration;

use super::shard::Shards;
use super::{
    new_token, ChunkRecord, ClaimMode, ClaimOutcome, Completion, Recorded, RejectRecord,
    SessionIndex, SessionStatus, Tombstoned,
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
    let ClaimOutcome::Claimed(claim) = index
        .claim(&g, ClaimMode::Force, at(1), LEASE)
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
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
    let s = index.session(&g).await.unwrap().unwrap();
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
    let after = index.session(&g).await.unwrap().unwrap();
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
    let s = index.session(&g).await.unwrap().unwrap();
    assert_eq!(s.first_chunk_time, "2025-05-02T12:00:01Z");
    assert_eq!(s.last_chunk_time, "2025-05-02T14:00:09+0200");
    assert_eq!(s.last_chunk_at, at(2), "arrival time of the latest chunk");
    assert_eq!(s.chunk_count, 3);
    assert_eq!(s.environment, "test");
}

pub async fn idle_query_and_claims(index: &dyn SessionIndex) {
    let (old, fresh) = (guid("old"), guid("fresh"));
    index
        .record_chunk(&chunk(&old, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
    index
        .record_chunk(&chunk(&fresh, "2025-05-02T12:00:00Z", "1"), at(100))
        .await
        .unwrap();
    let idle = index.idle_sessions(at(50), at(100), 10_000).await.unwrap();
    assert!(idle.contains(&old), "{old} is idle");
    assert!(!idle.contains(&fresh), "{fresh} is not idle");

    let mode = ClaimMode::Idle {
        idle_before: at(50),
    };
    let ClaimOutcome::Claimed(claim) = index.claim(&old, mode, at(100), LEASE).await.unwrap()
    else {
        panic!("an idle session is claimable");
    };
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
    let s = index.session(&old).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Finalizing);
    assert!(!index
        .idle_sessions(at(50), at(101), 10_000)
        .await
        .unwrap()
        .contains(&old));

    assert_eq!(
        index
            .complete(&claim, "results/old.json", at(102))
            .await
            .unwrap(),
        Completion::Finalized
    );
    let s = index.session(&old).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Finalized);
    assert_eq!(s.result_object.as_deref(), Some("results/old.json"));
    assert_eq!(s.finalized_at, Some(at(102)));
    assert_eq!(s.finalize_count, 1);
    assert_eq!(s.lease_until, None);
    assert_eq!(
        index
            .claim(
                &old,
                ClaimMode::Idle {
                    idle_before: at(500)
                },
                at(500),
                LEASE
            )
            .await
            .unwrap(),
        ClaimOutcome::NotEligible,
        "a finalized session is not swept again"
    );
    assert!(!index
        .idle_sessions(at(500), at(500), 10_000)
        .await
        .unwrap()
        .contains(&old));
}

pub async fn chunk_during_finalize_reopens(index: &dyn SessionIndex) {
    let g = guid("mid");
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
    let ClaimOutcome::Claimed(claim) = index
        .claim(&g, ClaimMode::Force, at(10), LEASE)
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:30Z", "1"), at(11))
        .await
        .unwrap();
    assert_eq!(
        index.session(&g).await.unwrap().unwrap().status,
        SessionStatus::Finalizing,
        "a chunk does not break a live claim"
    );
    assert_eq!(
        index.complete(&claim, "r.json", at(12)).await.unwrap(),
        Completion::Reopened
    );
    let s = index.session(&g).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Open);
    assert!(index
        .idle_sessions(at(100), at(100), 10_000)
        .await
        .unwrap()
        .contains(&g));
}

pub async fn late_chunk_reopens_a_finalized_session(index: &dyn SessionIndex) {
    let g = guid("late");
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
    let ClaimOutcome::Claimed(claim) = index
        .claim(&g, ClaimMode::Force, at(10), LEASE)
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
    index.complete(&claim, "r.json", at(11)).await.unwrap();
    assert_eq!(
        index
            .record_chunk(&chunk(&g, "2025-05-02T12:10:00Z", "1"), at(20))
            .await
            .unwrap(),
        Recorded::New { reopened: true }
    );
    let s = index.session(&g).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Open);
    assert_eq!(s.chunk_count, 2);
    // A duplicate of an already-finalized chunk does not re-open anything.
    let h = guid("late-dup");
    let c = chunk(&h, "2025-05-02T12:00:00Z", "1");
    index.record_chunk(&c, at(0)).await.unwrap();
    let ClaimOutcome::Claimed(claim) = index
        .claim(&h, ClaimMode::Force, at(10), LEASE)
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
    index.complete(&claim, "r.json", at(11)).await.unwrap();
    assert_eq!(
        index.record_chunk(&c, at(30)).await.unwrap(),
        Recorded::AlreadyKnown
    );
    assert_eq!(
        index.session(&h).await.unwrap().unwrap().status,
        SessionStatus::Finalized
    );
}

/// Renewal is the finalizer's fence: it must succeed for the current claim (even past its
/// lease, if nobody took over), keep the session out of the sweep query while it holds, and
/// fail once another claim, a completion or a release has happened.
pub async fn renew_holds_only_while_the_claim_is_current(index: &dyn SessionIndex) {
    let g = guid("renew");
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
    let ClaimOutcome::Claimed(first) = index
        .claim(&g, ClaimMode::Force, at(10), LEASE)
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
    let past_lease = at(10).plus(LEASE).plus(Duration::from_secs(5));
    assert_eq!(
        index.renew(&first, past_lease, LEASE).await.unwrap(),
        Some(past_lease.plus(LEASE)),
        "an expired claim nobody took over may still renew"
    );
    let record = index.session(&g).await.unwrap().unwrap();
    assert_eq!(record.lease_until, Some(past_lease.plus(LEASE)));
    assert_eq!(record.status, SessionStatus::Finalizing);
    let soon = past_lease.plus(Duration::from_secs(1));
    assert!(
        !index
            .idle_sessions(at(5), soon, 10_000)
            .await
            .unwrap()
            .contains(&g),
        "a renewed lease is live again: no sweep offers the session"
    );
    assert!(matches!(
        index
            .claim(&g, ClaimMode::Idle { idle_before: at(5) }, soon, LEASE)
            .await
            .unwrap(),
        ClaimOutcome::Busy { .. }
    ));
    // Let it expire again, and another finalizer takes over: the first may not renew now.
    let later = past_lease.plus(LEASE).plus(Duration::from_secs(5));
    let ClaimOutcome::Claimed(second) = index
        .claim(&g, ClaimMode::Idle { idle_before: at(5) }, later, LEASE)
        .await
        .unwrap()
    else {
        panic!("an expired lease is claimable");
    };
    assert_eq!(
        index.renew(&first, later, LEASE).await.unwrap(),
        None,
        "a superseded claim cannot renew"
    );
    assert_eq!(
        index.session(&g).await.unwrap().unwrap().lease_until,
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
    assert_eq!(
        index.session(&g).await.unwrap().unwrap().status,
        SessionStatus::Finalized
    );
}

pub async fn expired_lease_is_claimable_and_stale_claim_loses(index: &dyn SessionIndex) {
    let g = guid("lease");
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
    let ClaimOutcome::Claimed(dead) = index
        .claim(&g, ClaimMode::Force, at(10), LEASE)
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
    let after_lease = at(10).plus(LEASE).plus(Duration::from_secs(1));
    let idle = index
        .idle_sessions(at(5), after_lease, 10_000)
        .await
        .unwrap();
    assert!(
        idle.contains(&g),
        "an expired lease shows up in the sweep query"
    );
    let ClaimOutcome::Claimed(second) = index
        .claim(
            &g,
            ClaimMode::Idle { idle_before: at(5) },
            after_lease,
            LEASE,
        )
        .await
        .unwrap()
    else {
        panic!("an expired lease is claimable by a sweep");
    };
    assert_ne!(second.token, dead.token);
    assert_eq!(
        index
            .complete(&dead, "stale.json", after_lease)
            .await
            .unwrap(),
        Completion::LostClaim,
        "the dead finalizer's late completion changes nothing"
    );
    assert_eq!(
        index.session(&g).await.unwrap().unwrap().status,
        SessionStatus::Finalizing
    );
    assert_eq!(
        index
            .complete(&second, "r.json", after_lease)
            .await
            .unwrap(),
        Completion::Finalized
    );
    assert_eq!(
        index
            .session(&g)
            .await
            .unwrap()
            .unwrap()
            .result_object
            .as_deref(),
        Some("r.json")
    );
}

pub async fn release_returns_to_open(index: &dyn SessionIndex) {
    let g = guid("release");
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
    let ClaimOutcome::Claimed(claim) = index
        .claim(&g, ClaimMode::Force, at(10), LEASE)
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
    index.release(&claim, at(11)).await.unwrap();
    let s = index.session(&g).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Open);
    assert_eq!(s.lease_until, None);
    assert!(matches!(
        index
            .claim(
                &g,
                ClaimMode::Idle {
                    idle_before: at(12)
                },
                at(12),
                LEASE
            )
            .await
            .unwrap(),
        ClaimOutcome::Claimed(_)
    ));
}

pub async fn force_claim_and_unknown_sessions(index: &dyn SessionIndex) {
    let g = guid("force");
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
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
    a.record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
    let mode = ClaimMode::Idle {
        idle_before: at(10),
    };
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
        four.record_chunk(&chunk(g, "2025-05-02T12:00:00Z", "1"), at(0))
            .await
            .unwrap();
    }
    let beyond_two: Vec<&SessionGuid> =
        guids.iter().filter(|g| Shards::new(4).of(g) >= 2).collect();
    assert!(
        !beyond_two.is_empty(),
        "some session must live in a shard a 2-shard writer never stamps"
    );
    for (label, index) in [("8", eight), ("2", two), ("4", four)] {
        let idle = index.idle_sessions(at(50), at(50), 10_000).await.unwrap();
        for g in &guids {
            assert!(
                idle.contains(g),
                "{g}, stamped with 4 shards, is not offered by a {label}-shard sweep"
            );
        }
    }

    // The 2-shard writer records a chunk: the session moves into its range; both find it.
    let moved = beyond_two[0];
    two.record_chunk(&chunk(moved, "2025-05-02T12:01:00Z", "1"), at(60))
        .await
        .unwrap();
    for (label, index) in [("8", eight), ("2", two)] {
        assert!(
            index
                .idle_sessions(at(100), at(100), 10_000)
                .await
                .unwrap()
                .contains(moved),
            "a session re-stamped by a 2-shard writer is not offered by a {label}-shard sweep"
        );
    }

    // A lease taken by the 8-shard process and left to expire: the 2-shard sweep takes over.
    let held = *beyond_two.last().unwrap();
    let ClaimOutcome::Claimed(dead) = eight
        .claim(held, ClaimMode::Force, at(100), LEASE)
        .await
        .unwrap()
    else {
        panic!("claimable");
    };
    let expired = at(100).plus(LEASE).plus(Duration::from_secs(1));
    assert!(
        two.idle_sessions(at(50), expired, 10_000)
            .await
            .unwrap()
            .contains(held),
        "an expired lease stamped with 8 shards is not offered by a 2-shard sweep"
    );
    let ClaimOutcome::Claimed(second) = two
        .claim(
            held,
            ClaimMode::Idle {
                idle_before: at(50),
            },
            expired,
            LEASE,
        )
        .await
        .unwrap()
    else {
        panic!("an expired lease is claimable whatever the shard count");
    };
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
            !index
                .idle_sessions(at(500), at(500), 10_000)
                .await
                .unwrap()
                .contains(held),
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
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:05Z", "1"), at(1))
        .await
        .unwrap();
    let ClaimOutcome::Claimed(claim) = index
        .claim(&g, ClaimMode::Force, at(2), LEASE)
        .await
        .unwrap()
    else {
        panic!("claimable before the delete");
    };
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
    for mode in [
        ClaimMode::Force,
        ClaimMode::Idle {
            idle_before: at(10_000),
        },
    ] {
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
    let idle = index
        .idle_sessions(at(10_000), at(10_000), 10_000)
        .await
        .unwrap();
    assert!(!idle.contains(&g), "a tombstone is never idle");
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
        index
            .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(1))
            .await
            .unwrap(),
        Recorded::Deleted
    );
    assert!(index.chunks(&g).await.unwrap().is_empty());
}

/// Past its expiry a tombstone refuses nothing: a chunk starts a new session from scratch
/// (checked on read, so stores without a native TTL agree).
pub async fn an_expired_tombstone_lets_a_session_start_over(index: &dyn SessionIndex) {
    let g = guid("tomb-expired");
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
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
        index
            .record_chunk(&chunk(&g, "2025-05-02T13:00:00Z", "1"), at(20))
            .await
            .unwrap(),
        Recorded::New { reopened: false }
    );
    let s = index.session(&g).await.unwrap().unwrap();
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
    index
        .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
        .await
        .unwrap();
    assert_eq!(index.forget_chunks(&g).await.unwrap(), 1);
    assert!(index.forget_session(&g).await.unwrap());
    assert_eq!(index.session(&g).await.unwrap(), None);
    assert!(!index.forget_session(&g).await.unwrap(), "nothing left");
    assert_eq!(
        index
            .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(1))
            .await
            .unwrap(),
        Recorded::New { reopened: false },
        "the chunk record went too, so the same chunk is new again"
    );
    index.tombstone(&g, at(2), TTL).await.unwrap();
    assert!(!index.forget_session(&g).await.unwrap());
    assert_eq!(
        index.session(&g).await.unwrap().unwrap().status,
        SessionStatus::Deleted
    );
}
