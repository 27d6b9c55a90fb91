//! One behaviour for every storage adapter.
//!
//! Each adapter's tests call [`run_all`] against a real backend (a temp directory, or the
//! GCS / S3 emulator), so "works like the local store" is a checked claim, not a hope. The
//! store must point at an empty bucket. Functions panic with a message naming the broken
//! promise; they are test code that ships in the library so the `tests/` crate can use it.

use bytes::Bytes;

use futures::StreamExt;

use super::{list_pages, ObjectStore, Precondition, StorageError};

/// Runs every check, in an order where each leaves the bucket usable for the next.
pub async fn run_all(store: &dyn ObjectStore) {
    put_get_stat(store).await;
    create_only(store).await;
    generation_match(store).await;
    list_by_prefix_in_order(store).await;
    list_in_pages(store).await;
    list_after_a_bound(store).await;
    list_prefix_boundaries(store).await;
    list_while_objects_are_deleted(store).await;
    size_limit_before_download(store).await;
    head_reads(store).await;
    blocking_reads(store).await;
    streamed_write(store).await;
    fenced_streamed_writes(store).await;
    missing_objects(store).await;
    awkward_names(store).await;
    deletes(store).await;
}

/// The names listed under `prefix`, in the order listed.
async fn listed(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    let listed = store.list(prefix).await.unwrap();
    listed.into_iter().map(|m| m.name).collect()
}

pub async fn put_get_stat(store: &dyn ObjectStore) {
    let body = Bytes::from_static(b"{\"hello\":\"world\"}");
    let put = store
        .put("conf/a.json", body.clone(), Precondition::None)
        .await
        .expect("put");
    assert_eq!(put.size, body.len() as u64, "put reports the size written");
    let got = store.get("conf/a.json", 1 << 20).await.expect("get");
    assert_eq!(got.body, body, "get returns what put wrote");
    assert_eq!(got.meta.name, "conf/a.json");
    // u64::MAX means "no limit" (the viewer reads results that way): no overflow, no refusal.
    let unbounded = store
        .get("conf/a.json", u64::MAX)
        .await
        .expect("get, no limit");
    assert_eq!(unbounded.body, body);
    let stat = store.stat("conf/a.json").await.expect("stat");
    assert_eq!(stat.size, body.len() as u64);
    assert_eq!(
        stat.generation, put.generation,
        "stat and put agree on the generation"
    );
}

pub async fn create_only(store: &dyn ObjectStore) {
    store
        .put(
            "conf/once.json",
            Bytes::from_static(b"1"),
            Precondition::DoesNotExist,
        )
        .await
        .expect("create-only write of a new name");
    let second = store
        .put(
            "conf/once.json",
            Bytes::from_static(b"2"),
            Precondition::DoesNotExist,
        )
        .await;
    assert!(
        matches!(second, Err(StorageError::PreconditionFailed { .. })),
        "create-only over an existing object must fail, got {second:?}"
    );
    let got = store.get("conf/once.json", 1 << 20).await.unwrap();
    assert_eq!(
        got.body,
        Bytes::from_static(b"1"),
        "the loser changed nothing"
    );
}

pub async fn generation_match(store: &dyn ObjectStore) {
    let first = store
        .put(
            "conf/gen.json",
            Bytes::from_static(b"v1"),
            Precondition::None,
        )
        .await
        .unwrap();
    let generation = first
        .generation
        .clone()
        .expect("adapters report generations");
    // Make sure the next write can be told apart on coarse clocks.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = store
        .put(
            "conf/gen.json",
            Bytes::from_static(b"v2"),
            Precondition::GenerationMatches(generation.clone()),
        )
        .await
        .expect("write matching the current generation");
    assert_ne!(
        second.generation, first.generation,
        "a write makes a new generation"
    );
    let stale = store
        .put(
            "conf/gen.json",
            Bytes::from_static(b"v3"),
            Precondition::GenerationMatches(generation),
        )
        .await;
    assert!(
        matches!(stale, Err(StorageError::PreconditionFailed { .. })),
        "a stale generation must fail, got {stale:?}"
    );
    let got = store.get("conf/gen.json", 1 << 20).await.unwrap();
    assert_eq!(got.body, Bytes::from_static(b"v2"));
}

pub async fn list_by_prefix_in_order(store: &dyn ObjectStore) {
    for name in [
        "list/b.json",
        "list/a.json",
        "list/sub/c.json",
        "other/d.json",
    ] {
        store
            .put(name, Bytes::from_static(b"x"), Precondition::None)
            .await
            .unwrap();
    }
    let names = listed(store, "list/").await;
    assert_eq!(names, ["list/a.json", "list/b.json", "list/sub/c.json"]);
    let all = store.list("").await.unwrap();
    assert!(
        all.iter().any(|m| m.name == "other/d.json"),
        "empty prefix lists everything"
    );
    assert!(store.list("nothing-here/").await.unwrap().is_empty());
    // A prefix is a prefix of names, not a directory: it may end inside a name.
    assert_eq!(listed(store, "list/s").await, ["list/sub/c.json"]);
    assert_eq!(
        listed(store, "lis").await,
        ["list/a.json", "list/b.json", "list/sub/c.json"]
    );
    assert_eq!(listed(store, "list/sub/c.js").await, ["list/sub/c.json"]);
}

/// Every page of `prefix` from `start_after` on, `size` objects a page, through
/// [`list_pages`]: the names in the order listed, and how many pages it took.
async fn paged(
    store: &dyn ObjectStore,
    prefix: &str,
    start_after: Option<&str>,
    size: usize,
) -> (Vec<String>, usize) {
    let (mut names, mut pages) = (Vec::new(), 0);
    let mut after = start_after.map(str::to_owned);
    loop {
        let page = store
            .list_page(prefix, after.as_deref(), size)
            .await
            .expect("list_page");
        assert!(page.objects.len() <= size, "a page holds at most `max`");
        if page.next.is_some() {
            assert_eq!(page.objects.len(), size, "only the last page is short");
            assert_eq!(
                page.next.as_deref(),
                page.objects.last().map(|m| m.name.as_str()),
                "a page continues after its last name"
            );
        }
        pages += 1;
        names.extend(page.objects.into_iter().map(|m| m.name));
        match page.next {
            Some(next) => after = Some(next),
            None => return (names, pages),
        }
    }
}

async fn put_all(store: &dyn ObjectStore, names: &[&str]) {
    for name in names {
        store
            .put(name, Bytes::from_static(b"x"), Precondition::None)
            .await
            .unwrap();
    }
}

/// Pages of a few objects cover exactly the whole listing, in order, each name once, with
/// the last page saying so (no empty page to fetch after it); the stream of pages agrees.
pub async fn list_in_pages(store: &dyn ObjectStore) {
    let names: Vec<String> = (0..11)
        .map(|i| format!("paged/{}/{i:02}.json", i % 3))
        .collect();
    put_all(store, &names.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let whole = listed(store, "paged/").await;
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(whole, sorted, "the whole listing");
    for size in [1, 2, 3, 4, 10, 11, 12, 1_000] {
        let (got, pages) = paged(store, "paged/", None, size).await;
        assert_eq!(
            got, whole,
            "pages of {size} cover the listing in order, once"
        );
        assert_eq!(pages, whole.len().div_ceil(size).max(1), "pages of {size}");
    }
    let streamed: Vec<String> = list_pages(store, "paged/", None)
        .map(|page| page.expect("a page").objects)
        .flat_map(futures::stream::iter)
        .map(|m| m.name)
        .collect()
        .await;
    assert_eq!(streamed, whole, "list_pages streams the listing");
    let (none, pages) = paged(store, "paged-nothing/", None, 3).await;
    assert!(
        none.is_empty() && pages == 1,
        "an empty listing is one empty page"
    );
}

/// `start_after` is exclusive and need not name an object: it is a point in name order.
pub async fn list_after_a_bound(store: &dyn ObjectStore) {
    let names = [
        "after/2025-05-01T00:00:00.json",
        "after/2025-05-02T00:00:00.json",
        "after/2025-05-02T12:00:00.json",
        "after/2025-05-03T00:00:00.json",
        "after/x/deep.json",
    ];
    put_all(store, &names).await;
    for size in [1, 2, 100] {
        let after = |bound| paged(store, "after/", Some(bound), size);
        assert_eq!(
            after(names[1]).await.0,
            names[2..],
            "after a name that exists"
        );
        assert_eq!(
            after("after/2025-05-02T06").await.0,
            names[2..],
            "after a name that does not exist"
        );
        assert_eq!(after("after/2025").await.0, names, "before the first");
        assert_eq!(after("a").await.0, names, "a bound before the prefix");
        assert_eq!(after("after/x/").await.0, names[4..], "a bound in a folder");
        assert!(
            after("after/x/deep.json").await.0.is_empty(),
            "the last name"
        );
        assert!(after("after/y").await.0.is_empty(), "beyond the last");
        assert!(after("b").await.0.is_empty(), "a bound past the prefix");
    }
}

/// A prefix is a prefix of names (`bound/a/` does not list `bound/ab…`, `bound/a` lists
/// both), and names that sort around `/` (`.`, `-` before it, `0` after) come in byte order,
/// paged or not, whatever folders a backend keeps them in.
pub async fn list_prefix_boundaries(store: &dyn ObjectStore) {
    let names = [
        "bound/a-1.json",
        "bound/a.json",
        "bound/a/1.json",
        "bound/a/b/2.json",
        "bound/a0.json",
        "bound/ab.json",
        "bound/ab/c.json",
        "bound/b.json",
    ];
    put_all(store, &names).await;
    let mut sorted = names.to_vec();
    sorted.sort();
    assert_eq!(sorted, names, "the fixture is in byte order");
    assert_eq!(listed(store, "bound/").await, names);
    assert_eq!(
        listed(store, "bound/a/").await,
        ["bound/a/1.json", "bound/a/b/2.json"]
    );
    assert_eq!(
        listed(store, "bound/ab").await,
        ["bound/ab.json", "bound/ab/c.json"]
    );
    assert_eq!(listed(store, "bound/a").await, names[..7]);
    for size in [1, 2, 3] {
        assert_eq!(paged(store, "bound/", None, size).await.0, names);
        assert_eq!(
            paged(store, "bound/a", Some("bound/a.json"), size).await.0,
            names[2..7],
            "after a file named like a folder"
        );
        assert_eq!(
            paged(store, "bound/a/", Some("bound/a/1.json"), size)
                .await
                .0,
            ["bound/a/b/2.json"]
        );
        assert_eq!(
            paged(store, "bound/", Some("bound/a/b/2.json"), size)
                .await
                .0,
            names[4..],
            "out of a folder onto names after it"
        );
    }
}

/// A listing while objects under it are being deleted (an erasure or a re-stitch's
/// clean-up racing a publish) succeeds, in name order, with no name that was never there:
/// a vanished object is simply not listed.
pub async fn list_while_objects_are_deleted(store: &dyn ObjectStore) {
    const OBJECTS: usize = 60;
    let names: Vec<String> = (0..OBJECTS)
        .map(|i| format!("vanish/{:02}/{i:03}.json", i % 6))
        .collect();
    for name in &names {
        store
            .put(name, Bytes::from_static(b"x"), Precondition::None)
            .await
            .unwrap();
    }
    let deleting = async {
        for name in names.iter().rev() {
            store.delete(name).await.expect("delete");
        }
    };
    let listing = async {
        let mut listings = 0;
        loop {
            for prefix in ["vanish/", ""] {
                let listed = store
                    .list(prefix)
                    .await
                    .unwrap_or_else(|e| panic!("a listing failed as objects vanished: {e}"));
                let listed: Vec<String> = listed
                    .into_iter()
                    .map(|m| m.name)
                    .filter(|n| n.starts_with("vanish/"))
                    .collect();
                let mut sorted = listed.clone();
                sorted.sort();
                assert_eq!(listed, sorted, "a listing is in name order");
                assert!(listed.iter().all(|n| names.contains(n)), "{listed:?}");
                listings += 1;
                if listed.is_empty() {
                    return listings;
                }
            }
        }
    };
    let ((), listings) = futures::join!(deleting, listing);
    assert!(listings > 0);
    assert!(store.list("vanish/").await.unwrap().is_empty());
}

pub async fn size_limit_before_download(store: &dyn ObjectStore) {
    store
        .put(
            "conf/big.json",
            Bytes::from(vec![b' '; 1000]),
            Precondition::None,
        )
        .await
        .unwrap();
    let err = store.get("conf/big.json", 999).await;
    assert!(
        matches!(
            err,
            Err(StorageError::TooLarge {
                size: 1000,
                limit: 999,
                ..
            })
        ),
        "got {err:?}"
    );
    assert_eq!(
        store.get("conf/big.json", 1000).await.unwrap().body.len(),
        1000
    );
}

/// `get_head` returns exactly the first bytes, however the object compares with `len`.
pub async fn head_reads(store: &dyn ObjectStore) {
    let body: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
    store
        .put(
            "conf/head.json",
            Bytes::from(body.clone()),
            Precondition::None,
        )
        .await
        .unwrap();
    for len in [1, 10, 999, 1000, 1001, 1 << 20] {
        let head = store
            .get_head("conf/head.json", len)
            .await
            .unwrap_or_else(|e| panic!("get_head {len}: {e}"));
        let want = &body[..body.len().min(len as usize)];
        assert_eq!(head.as_ref(), want, "the first {len} bytes");
    }
    assert!(store
        .get_head("conf/head.json", 0)
        .await
        .unwrap()
        .is_empty());
    store
        .put("conf/empty.json", Bytes::new(), Precondition::None)
        .await
        .unwrap();
    let empty = store.get_head("conf/empty.json", 512).await;
    assert!(
        matches!(&empty, Ok(b) if b.is_empty()),
        "the head of an empty object is empty, got {empty:?}"
    );
    let missing = store.get_head("conf/missing.json", 512).await;
    assert!(
        matches!(missing, Err(StorageError::NotFound { .. })),
        "got {missing:?}"
    );
}

/// A store that offers blocking reads gives the same answers through them as through
/// `get` and `get_head`: same bytes, same refusals, a reused buffer never leaking old bytes.
pub async fn blocking_reads(store: &dyn ObjectStore) {
    let Some(reads) = store.blocking() else {
        return;
    };
    let body: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for (name, bytes) in [
        ("conf/b/long.json", &body[..]),
        ("conf/b/short.json", b"{}"),
    ] {
        store
            .put(name, Bytes::copy_from_slice(bytes), Precondition::None)
            .await
            .unwrap();
    }
    let mut buf = Vec::new();
    for name in ["conf/b/long.json", "conf/b/short.json"] {
        reads.read_into(name, 1 << 20, &mut buf).unwrap();
        let got = store.get(name, 1 << 20).await.unwrap();
        assert_eq!(
            buf,
            got.body.as_ref(),
            "read_into {name} reads what get reads"
        );
    }
    reads
        .read_head_into("conf/b/long.json", 512, &mut buf)
        .unwrap();
    assert_eq!(buf, &body[..512], "the first 512 bytes");
    reads
        .read_head_into("conf/b/short.json", 512, &mut buf)
        .unwrap();
    assert_eq!(buf, b"{}", "a short object's head is all of it");
    let err = reads.read_into("conf/b/long.json", 4999, &mut buf);
    assert!(
        matches!(
            err,
            Err(StorageError::TooLarge {
                size: 5000,
                limit: 4999,
                ..
            })
        ),
        "got {err:?}"
    );
    reads.read_into("conf/b/long.json", 5000, &mut buf).unwrap();
    assert_eq!(buf.len(), 5000, "exactly at the limit is accepted");
    for missing in ["conf/b/missing.json", "conf/b"] {
        let err = reads.read_into(missing, 1 << 20, &mut buf);
        assert!(
            matches!(err, Err(StorageError::NotFound { .. })),
            "{missing}: got {err:?}"
        );
        let err = reads.read_head_into(missing, 512, &mut buf);
        assert!(
            matches!(err, Err(StorageError::NotFound { .. })),
            "{missing}: got {err:?}"
        );
    }
}

pub async fn streamed_write(store: &dyn ObjectStore) {
    // Parts large enough to force multipart/resumable uploads where adapters use them.
    let part = Bytes::from(vec![b'a'; 5 * 1024 * 1024 + 17]);
    let mut w = store
        .writer("conf/stream.json", Precondition::None)
        .await
        .unwrap();
    w.write(part.clone()).await.unwrap();
    w.write(Bytes::from_static(b"tail")).await.unwrap();
    assert!(
        matches!(
            store.stat("conf/stream.json").await,
            Err(StorageError::NotFound { .. })
        ),
        "an unfinished write must not be visible"
    );
    let meta = w.finish().await.unwrap();
    assert_eq!(meta.size, part.len() as u64 + 4);
    let got = store.get("conf/stream.json", 1 << 30).await.unwrap();
    assert_eq!(got.body.len() as u64, meta.size);
    assert!(got.body.ends_with(b"tail"));

    let mut aborted = store
        .writer("conf/aborted.json", Precondition::None)
        .await
        .unwrap();
    aborted.write(Bytes::from_static(b"x")).await.unwrap();
    aborted.abort().await;
    assert!(matches!(
        store.stat("conf/aborted.json").await,
        Err(StorageError::NotFound { .. })
    ));
}

/// The finalizer's fence as the store sees it: two streamed writes opened on the same
/// generation (or on "absent"); whichever finishes first lands, the other fails at `finish`
/// and changes nothing. Generations never repeat for one name, however fast the writes.
pub async fn fenced_streamed_writes(store: &dyn ObjectStore) {
    let name = "conf/fenced.json";
    let open = |p: Precondition| async move { store.writer(name, p).await.unwrap() };
    let mut first = open(Precondition::DoesNotExist).await;
    let mut second = open(Precondition::DoesNotExist).await;
    first.write(Bytes::from_static(b"first")).await.unwrap();
    second.write(Bytes::from_static(b"second")).await.unwrap();
    let landed = second.finish().await.expect("the first to finish lands");
    let lost = first.finish().await;
    assert!(
        matches!(lost, Err(StorageError::PreconditionFailed { .. })),
        "a create-only write finishing second must fail, got {lost:?}"
    );
    let got = store.get(name, 1 << 20).await.unwrap();
    assert_eq!(got.body, Bytes::from_static(b"second"));

    let g = landed.generation.expect("adapters report generations");
    let mut stale = open(Precondition::GenerationMatches(g.clone())).await;
    let mut fresh = open(Precondition::GenerationMatches(g.clone())).await;
    stale.write(Bytes::from_static(b"stale")).await.unwrap();
    fresh.write(Bytes::from_static(b"fresh")).await.unwrap();
    let newest = fresh
        .finish()
        .await
        .expect("matching the current generation");
    let lost = stale.finish().await;
    assert!(
        matches!(lost, Err(StorageError::PreconditionFailed { .. })),
        "a write on a generation that was replaced meanwhile must fail, got {lost:?}"
    );
    assert_eq!(
        store.get(name, 1 << 20).await.unwrap().body,
        Bytes::from_static(b"fresh")
    );

    let mut seen = vec![g, newest.generation.clone().unwrap()];
    let mut current = newest.generation.unwrap();
    for i in 0..8 {
        let m = store
            .put(
                name,
                Bytes::from(format!("v{i}")),
                Precondition::GenerationMatches(current.clone()),
            )
            .await
            .expect("back-to-back writes on the generation just written");
        current = m.generation.unwrap();
        assert!(
            !seen.contains(&current),
            "generation {current} repeats for one name: a stale write could match it"
        );
        seen.push(current.clone());
    }
}

pub async fn missing_objects(store: &dyn ObjectStore) {
    assert!(matches!(
        store.get("conf/missing.json", 10).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        store.stat("conf/missing.json").await,
        Err(StorageError::NotFound { .. })
    ));
}

pub async fn awkward_names(store: &dyn ObjectStore) {
    for name in [
        "odd/with space.json",
        "odd/plus+sign.json",
        "odd/pct%20.json",
        "odd/ünï.json",
    ] {
        store
            .put(
                name,
                Bytes::from(name.as_bytes().to_vec()),
                Precondition::None,
            )
            .await
            .unwrap_or_else(|e| panic!("put {name:?}: {e}"));
        let got = store.get(name, 1 << 10).await.unwrap();
        assert_eq!(got.body.as_ref(), name.as_bytes(), "{name:?}");
    }
    let listed = listed(store, "odd/").await;
    assert_eq!(listed.len(), 4, "{listed:?}");
}

/// Delete removes one object (and nothing beside it), and is idempotent: deleting what is
/// not there is `Ok(false)`, so an interrupted erasure can be run again.
pub async fn deletes(store: &dyn ObjectStore) {
    let body = Bytes::from_static(b"{}");
    store
        .put("del/a.json", body.clone(), Precondition::None)
        .await
        .expect("put a");
    store
        .put("del/a.json.gz", body.clone(), Precondition::None)
        .await
        .expect("put a.gz");
    assert!(
        store.delete("del/a.json").await.expect("delete"),
        "deleting an existing object says it deleted something"
    );
    assert!(
        matches!(
            store.stat("del/a.json").await,
            Err(StorageError::NotFound { .. })
        ),
        "a deleted object is gone"
    );
    assert!(
        !store.delete("del/a.json").await.expect("delete again"),
        "deleting a missing object is Ok(false)"
    );
    assert!(
        !store
            .delete("del/never.json")
            .await
            .expect("delete missing"),
        "deleting a never-written object is Ok(false)"
    );
    let left = listed(store, "del/").await;
    assert_eq!(
        left,
        vec!["del/a.json.gz"],
        "only the named object is deleted"
    );
    // A name can be written again after a delete, even create-only.
    store
        .put("del/a.json", body, Precondition::DoesNotExist)
        .await
        .expect("create-only after delete");
    assert!(store.delete("del/a.json").await.expect("delete"));
    assert!(store.delete("del/a.json.gz").await.expect("delete gz"));
}
