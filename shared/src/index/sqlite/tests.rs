//! The SQLite store through the conformance suite, two handles on one file, resharding,
//! and files from older versions migrated on open.

use super::*;
use crate::index::{conformance, ClaimMode, ClaimOutcome, SessionIndex, Shards};

#[tokio::test]
async fn passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let index = SqliteIndex::open(dir.path().join("sub/index.sqlite")).unwrap();
    conformance::run_all(&index).await;
}

#[tokio::test]
async fn two_handles_on_one_file_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sqlite");
    let a = SqliteIndex::open(&path).unwrap();
    let b = SqliteIndex::open(&path).unwrap();
    conformance::claims_are_exclusive_across_handles(&a, &b).await;
}

#[tokio::test]
async fn resharding_strands_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sqlite");
    let handle = |n| {
        SqliteIndex::open(&path)
            .unwrap()
            .with_shards(Shards::new(n))
    };
    let (four, eight, two) = (handle(4), handle(8), handle(2));
    conformance::resharding_strands_nothing(&four, &eight, &two).await;
}

#[tokio::test]
async fn a_file_from_before_shards_and_revisions_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    {
        // The sessions table and its index as rrstitch created them before shards.
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE sessions (guid TEXT PRIMARY KEY, status TEXT NOT NULL,                  environment TEXT NOT NULL, chunk_count INTEGER NOT NULL,                  first_chunk_time TEXT NOT NULL, last_chunk_time TEXT NOT NULL,                  last_chunk_at INTEGER NOT NULL, version INTEGER NOT NULL, lease_until INTEGER,                  claim_token TEXT, claimed_version INTEGER, result_object TEXT,                  finalized_at INTEGER, finalize_count INTEGER NOT NULL DEFAULT 0);                  CREATE INDEX sessions_idle ON sessions (status, last_chunk_at);                  INSERT INTO sessions (guid, status, environment, chunk_count, first_chunk_time,                  last_chunk_time, last_chunk_at, version)                  VALUES ('old-open', 'open', 'e', 1, 't', 't', 1000, 1),                         ('old-fin', 'finalized', 'e', 1, 't', 't', 1000, 1);",
        )
        .unwrap();
    }
    for shards in [1, 4, 64] {
        let index = SqliteIndex::open(&path)
            .unwrap()
            .with_shards(Shards::new(shards));
        let idle = index
            .idle_sessions(Millis(5000), Millis(5000), 10)
            .await
            .unwrap();
        assert_eq!(
            idle,
            vec![SessionGuid::parse("old-open").unwrap()],
            "{shards} shards"
        );
    }
    let index = SqliteIndex::open(&path)
        .unwrap()
        .with_shards(Shards::new(4));
    let g = SessionGuid::parse("old-open").unwrap();
    let ClaimOutcome::Claimed(claim) = index
        .claim(&g, ClaimMode::Force, Millis(6000), Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("a migrated session is claimable");
    };
    assert_eq!(claim.version, 1);
    let stored = index.store().read(&g).await.unwrap().unwrap();
    assert_eq!(stored.revision, 1, "the first write after the migration");
    assert_eq!(stored.state.shard, Some(Shards::new(4).of(&g)));
    let conn = Connection::open(&path).unwrap();
    let old_index: bool = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE name = 'sessions_idle'")
        .unwrap()
        .exists([])
        .unwrap();
    assert!(!old_index, "the unsharded idle index is dropped");
}

#[tokio::test]
async fn a_file_from_before_content_hashes_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    {
        // The chunks table as rrstitch created it before content hashes.
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE chunks (bucket TEXT NOT NULL, name TEXT NOT NULL, \
             generation TEXT NOT NULL, guid TEXT NOT NULL, timestamp TEXT NOT NULL, \
             environment TEXT NOT NULL, size INTEGER NOT NULL, event_count INTEGER NOT NULL, \
             recorded_at INTEGER NOT NULL, PRIMARY KEY (bucket, name, generation)); \
             INSERT INTO chunks VALUES ('/b', 'x.json', '1', 'g-1', 't', 'e', 1, 1, 0);",
        )
        .unwrap();
    }
    let index = SqliteIndex::open(&path).unwrap();
    let g = SessionGuid::parse("g-1").unwrap();
    let chunks = index.chunks(&g).await.unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].content_hash, "");
    // Reopening a migrated file is a no-op.
    drop(index);
    SqliteIndex::open(&path).unwrap();
}
