//! A revisioned session store in memory, for the driver's tests: the smallest store that
//! keeps the port's promises, with a hook to make another writer move a session between the
//! driver's read and its write.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::protocol::SessionState;
use super::store::{Due, DueEntry, NewChunk, SessionStore, Stored, Written};
use super::{ChunkRecord, RejectRecord, Result, SessionRecord};
use crate::engine::SessionGuid;
use crate::time::Millis;

/// What another writer does to a session just before one of our writes is checked.
type Interference = Box<dyn FnOnce(&mut SessionState) + Send>;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    interference: Mutex<VecDeque<Interference>>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, (SessionState, u64)>,
    /// (guid, bucket, name, identity) → record.
    chunks: BTreeMap<(String, String, String, String), ChunkRecord>,
    rejected: Vec<(Millis, RejectRecord)>,
    mark: Option<u32>,
    bookmarks: HashMap<String, String>,
    writes: usize,
    conflicts: usize,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// Before each of the next writes, in turn, another writer changes the session being
    /// written with `change` (and so moves its revision).
    pub fn interfere(&self, change: impl FnOnce(&mut SessionState) + Send + 'static) {
        self.interference
            .lock()
            .unwrap()
            .push_back(Box::new(change));
    }

    /// The next `n` writes find their session rewritten (unchanged) by someone else.
    pub fn conflict_next(&self, n: usize) {
        for _ in 0..n {
            self.interfere(|_| {});
        }
    }

    /// Writes that succeeded, and writes refused on a revision conflict.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap();
        (inner.writes, inner.conflicts)
    }

    /// The stored state, shard stamp included.
    pub fn state(&self, guid: &SessionGuid) -> Option<SessionState> {
        let inner = self.inner.lock().unwrap();
        inner.sessions.get(guid.as_str()).map(|(s, _)| s.clone())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    type Revision = u64;

    async fn read(&self, guid: &SessionGuid) -> Result<Option<Stored<u64>>> {
        let inner = self.inner.lock().unwrap();
        Ok(inner
            .sessions
            .get(guid.as_str())
            .map(|(state, rev)| Stored {
                state: state.clone(),
                revision: *rev,
            }))
    }

    async fn write(
        &self,
        expected: Option<&u64>,
        state: &SessionState,
        chunk: Option<NewChunk<'_>>,
    ) -> Result<Written> {
        let interference = self.interference.lock().unwrap().pop_front();
        let mut inner = self.inner.lock().unwrap();
        let guid = state.record.guid.as_str().to_owned();
        if let Some(change) = interference {
            if let Some((s, rev)) = inner.sessions.get_mut(&guid) {
                change(s);
                *rev += 1;
            }
        }
        let key = chunk.map(|c| {
            let r = c.record;
            (
                guid.clone(),
                r.bucket.clone(),
                r.name.clone(),
                r.identity().to_owned(),
            )
        });
        if let Some(key) = &key {
            if inner.chunks.contains_key(key) {
                return Ok(Written::ChunkKnown);
            }
        }
        let current = inner.sessions.get(&guid).map(|(_, rev)| *rev);
        if current.as_ref() != expected {
            inner.conflicts += 1;
            return Ok(Written::Conflict);
        }
        if let (Some(key), Some(c)) = (key, chunk) {
            inner.chunks.insert(key, c.record.clone());
        }
        inner
            .sessions
            .insert(guid, (state.clone(), current.unwrap_or(0) + 1));
        inner.writes += 1;
        Ok(Written::Written)
    }

    async fn chunk_known(&self, c: &ChunkRecord) -> Result<bool> {
        let inner = self.inner.lock().unwrap();
        let key = (
            c.guid.as_str().to_owned(),
            c.bucket.clone(),
            c.name.clone(),
            c.identity().to_owned(),
        );
        Ok(inner.chunks.contains_key(&key))
    }

    async fn record_rejected(&self, r: &RejectRecord, now: Millis) -> Result<bool> {
        let mut inner = self.inner.lock().unwrap();
        let known = inner.rejected.iter().any(|(_, x)| {
            (&x.bucket, &x.name, &x.generation) == (&r.bucket, &r.name, &r.generation)
        });
        if !known {
            inner.rejected.push((now, r.clone()));
        }
        Ok(!known)
    }

    async fn due(
        &self,
        shard: u32,
        due: Due,
        before: Millis,
        limit: usize,
    ) -> Result<Vec<DueEntry>> {
        let inner = self.inner.lock().unwrap();
        let mut out: Vec<DueEntry> = inner
            .sessions
            .values()
            .filter(|(s, _)| s.shard.unwrap_or(0) == shard && s.record.status == due.status())
            .filter_map(|(s, _)| {
                let at = match due {
                    Due::Idle => Some(s.record.last_chunk_at),
                    Due::LeaseExpired | Due::Tombstone => s.record.lease_until,
                }?;
                (at < before).then(|| DueEntry {
                    guid: s.record.guid.clone(),
                    at,
                })
            })
            .collect();
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.guid.cmp(&b.guid)));
        out.truncate(limit);
        Ok(out)
    }

    async fn shard_mark(&self) -> Result<Option<u32>> {
        Ok(self.inner.lock().unwrap().mark)
    }

    async fn bookmark(&self, name: &str) -> Result<Option<String>> {
        Ok(self.inner.lock().unwrap().bookmarks.get(name).cloned())
    }

    async fn set_bookmark(&self, name: &str, value: Option<&str>) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        match value {
            Some(v) => inner.bookmarks.insert(name.to_owned(), v.to_owned()),
            None => inner.bookmarks.remove(name),
        };
        Ok(())
    }

    async fn raise_shard_mark(&self, count: u32) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        inner.mark = Some(inner.mark.unwrap_or(0).max(count));
        Ok(())
    }

    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>> {
        let inner = self.inner.lock().unwrap();
        Ok(inner
            .chunks
            .iter()
            .filter(|((g, ..), _)| g == guid.as_str())
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn sessions(&self, _shards: u32, limit: usize) -> Result<Vec<SessionRecord>> {
        let inner = self.inner.lock().unwrap();
        let mut out: Vec<SessionRecord> = inner
            .sessions
            .values()
            .map(|(s, _)| s.record.clone())
            .collect();
        out.sort_by(|a, b| {
            b.last_chunk_at
                .cmp(&a.last_chunk_at)
                .then_with(|| a.guid.cmp(&b.guid))
        });
        out.truncate(limit);
        Ok(out)
    }

    async fn sessions_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>> {
        let inner = self.inner.lock().unwrap();
        let mut out: Vec<SessionRecord> = inner
            .sessions
            .iter()
            .filter(|(guid, _)| after.is_none_or(|a| guid.as_str() > a))
            .map(|(_, (s, _))| s.record.clone())
            .collect();
        out.sort_by(|a, b| a.guid.as_str().cmp(b.guid.as_str()));
        out.truncate(limit);
        Ok(out)
    }

    async fn count_due(&self, shard: u32, due: Due, before: Millis) -> Result<u64> {
        Ok(self.due(shard, due, before, usize::MAX).await?.len() as u64)
    }

    async fn rejected_since(&self, since: Millis, limit: usize) -> Result<Vec<RejectRecord>> {
        let inner = self.inner.lock().unwrap();
        let mut out: Vec<_> = inner
            .rejected
            .iter()
            .filter(|(at, _)| *at >= since)
            .cloned()
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.0));
        Ok(out.into_iter().take(limit).map(|(_, r)| r).collect())
    }

    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>> {
        let inner = self.inner.lock().unwrap();
        let mut out = inner.rejected.clone();
        out.sort_by_key(|r| std::cmp::Reverse(r.0));
        Ok(out.into_iter().take(limit).map(|(_, r)| r).collect())
    }

    async fn forget_chunks(&self, guid: &SessionGuid) -> Result<u64> {
        let mut inner = self.inner.lock().unwrap();
        let before = inner.chunks.len();
        inner.chunks.retain(|(g, ..), _| g != guid.as_str());
        Ok((before - inner.chunks.len()) as u64)
    }

    async fn rejected_of(&self, guid: &SessionGuid) -> Result<Vec<RejectRecord>> {
        let inner = self.inner.lock().unwrap();
        Ok(inner
            .rejected
            .iter()
            .filter(|(_, r)| r.session_guid.as_ref() == Some(guid))
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn forget_rejected(&self, guid: &SessionGuid) -> Result<u64> {
        let mut inner = self.inner.lock().unwrap();
        let before = inner.rejected.len();
        inner
            .rejected
            .retain(|(_, r)| r.session_guid.as_ref() != Some(guid));
        Ok((before - inner.rejected.len()) as u64)
    }

    async fn remove(&self, guid: &SessionGuid, expected: &u64) -> Result<Written> {
        let mut inner = self.inner.lock().unwrap();
        match inner.sessions.get(guid.as_str()) {
            Some((_, rev)) if rev == expected => {
                inner.sessions.remove(guid.as_str());
                Ok(Written::Written)
            }
            _ => Ok(Written::Conflict),
        }
    }
}
