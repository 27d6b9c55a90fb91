//! What the service tests share: the form fixture on the embedded backends ([`Env`]: a real
//! directory, a real SQLite file, a clock the test moves), and a results store a test can see
//! into or steer ([`Wrapped`]: a local directory whose calls go through the test's [`Around`]
//! first — an outage, a racing eraser or publisher, a byte count).
//!
//! Each test file includes this module and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rrstitch::index::{sqlite::SqliteIndex, SessionIndex};
use rrstitch::service::{Buckets, IngestOutcome, ObjectRef, Options, Service};
use rrstitch::time::Millis;

use async_trait::async_trait;
use bytes::Bytes;
use rrstitch::storage::local::LocalStore;
use rrstitch::storage::{
    Encoding, Object, ObjectMeta, ObjectStore, ObjectWriter, Page, Precondition,
    Result as StorageResult, StorageUrl,
};

/// The store call about to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Stat,
    Get,
    GetHead,
    Put,
    Writer,
    Delete,
}

/// What a test does around the wrapped directory's calls; every method defaults to nothing.
#[async_trait]
pub trait Around: Send + Sync {
    /// Runs before `op` on `name` (a prefix for [`Op::List`]); an error fails the call
    /// without running it. `inner` is the directory itself, for a test that acts as another
    /// process writing to it.
    async fn before(&self, _op: Op, _name: &str, _inner: &LocalStore) -> StorageResult<()> {
        Ok(())
    }
    /// Bytes a get or a head read handed back.
    fn read(&self, _bytes: usize) {}
    /// A page a listing handed back.
    fn listed(&self, _page: &Page) {}
    /// The writer a streamed write goes through.
    fn writer(&self, writer: Box<dyn ObjectWriter>) -> Box<dyn ObjectWriter> {
        writer
    }
}

/// A local directory whose calls go through `around` first.
pub struct Wrapped<A> {
    pub inner: LocalStore,
    pub around: A,
}

impl<A> Wrapped<A> {
    pub fn new(root: impl Into<std::path::PathBuf>, around: A) -> Self {
        Wrapped {
            inner: LocalStore::open(StorageUrl::Local(root.into())).unwrap(),
            around,
        }
    }
}

impl<A> std::fmt::Debug for Wrapped<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wrapped")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl<A: Around> ObjectStore for Wrapped<A> {
    fn url(&self) -> &StorageUrl {
        self.inner.url()
    }
    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> StorageResult<Page> {
        self.around.before(Op::List, prefix, &self.inner).await?;
        let page = self.inner.list_page(prefix, start_after, max).await?;
        self.around.listed(&page);
        Ok(page)
    }
    async fn stat(&self, name: &str) -> StorageResult<ObjectMeta> {
        self.around.before(Op::Stat, name, &self.inner).await?;
        self.inner.stat(name).await
    }
    async fn get(&self, name: &str, limit: u64) -> StorageResult<Object> {
        self.around.before(Op::Get, name, &self.inner).await?;
        let got = self.inner.get(name, limit).await?;
        self.around.read(got.body.len());
        Ok(got)
    }
    async fn get_head(&self, name: &str, len: u64) -> StorageResult<Bytes> {
        self.around.before(Op::GetHead, name, &self.inner).await?;
        let head = self.inner.get_head(name, len).await?;
        self.around.read(head.len());
        Ok(head)
    }
    async fn put_encoded(
        &self,
        name: &str,
        body: Bytes,
        p: Precondition,
        e: Encoding,
    ) -> StorageResult<ObjectMeta> {
        self.around.before(Op::Put, name, &self.inner).await?;
        self.inner.put_encoded(name, body, p, e).await
    }
    async fn writer(&self, name: &str, p: Precondition) -> StorageResult<Box<dyn ObjectWriter>> {
        self.around.before(Op::Writer, name, &self.inner).await?;
        Ok(self.around.writer(self.inner.writer(name, p).await?))
    }
    async fn delete(&self, name: &str) -> StorageResult<bool> {
        self.around.before(Op::Delete, name, &self.inner).await?;
        self.inner.delete(name).await
    }
}

pub const GUID: &str = "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33";

pub fn fixture_chunks() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rrweb-form/chunks")
}

/// A service on the embedded backends, with the directories it uses.
pub struct Env {
    pub _dir: tempfile::TempDir,
    pub bucket: PathBuf,
    pub results: PathBuf,
    pub svc: Service,
    pub clock: Arc<AtomicI64>,
}

/// A fresh temporary directory holding an empty `bucket/`, a `results/` path and a SQLite
/// index: what every service test starts from.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub bucket: PathBuf,
    pub results: PathBuf,
    pub index: Arc<dyn SessionIndex>,
}

pub fn scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let results = dir.path().join("results");
    std::fs::create_dir_all(&bucket).unwrap();
    let index: Arc<dyn SessionIndex> =
        Arc::new(SqliteIndex::open(dir.path().join("index.sqlite")).unwrap());
    Scratch {
        dir,
        bucket,
        results,
        index,
    }
}

/// A service over `index`, writing its results to the local directory `results`.
pub fn service_on(index: Arc<dyn SessionIndex>, results: &Path, options: Options) -> Service {
    let results = Arc::new(LocalStore::open(StorageUrl::Local(results.to_owned())).unwrap());
    Service::new(index, results, Arc::new(Buckets::default()), options)
}

/// A service with `options`, its results in `results` unless a store is given.
pub fn env_with(options: Options, results_store: Option<Arc<dyn ObjectStore>>) -> Env {
    let Scratch {
        dir,
        bucket,
        results,
        index,
    } = scratch();
    let results_store = results_store
        .unwrap_or_else(|| Arc::new(LocalStore::open(StorageUrl::Local(results.clone())).unwrap()));
    let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
    let c = clock.clone();
    let svc = Service::new(index, results_store, Arc::new(Buckets::default()), options)
        .with_clock(Arc::new(move || Millis(c.load(Ordering::SeqCst))));
    Env {
        _dir: dir,
        bucket,
        results,
        svc,
        clock,
    }
}

impl Env {
    pub fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    pub fn object(&self, name: &str) -> ObjectRef {
        ObjectRef {
            bucket: StorageUrl::Local(self.bucket.clone()),
            name: name.into(),
            generation: None,
        }
    }

    pub fn copy_fixture(&self, skip_last: usize) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(fixture_chunks())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.truncate(names.len() - skip_last);
        for n in &names {
            std::fs::copy(fixture_chunks().join(n), self.bucket.join(n)).unwrap();
        }
        names
    }

    pub async fn ingest_all(&self, names: &[String]) -> Vec<IngestOutcome> {
        let mut out = Vec::new();
        for n in names {
            out.push(self.svc.ingest(&self.object(n)).await.unwrap());
        }
        out
    }

    pub fn result(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.results.join(format!("{GUID}.json"))).unwrap())
            .unwrap()
    }
}

/// A finalize queue that keeps the bodies it is given, in order (3 to a publish call).
#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub messages: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl MemoryQueue {
    /// Takes every message published so far.
    pub fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.messages.lock().unwrap())
    }
}

#[async_trait]
impl rrstitch::queue::FinalizeQueue for MemoryQueue {
    fn batch_limit(&self) -> usize {
        3
    }

    async fn publish(
        &self,
        batch: &[rrstitch::queue::Job],
    ) -> Result<Vec<rrstitch::queue::Refused>, rrstitch::queue::QueueError> {
        let mut messages = self.messages.lock().unwrap();
        messages.extend(batch.iter().map(|job| job.body().into_bytes()));
        Ok(Vec::new())
    }
}
