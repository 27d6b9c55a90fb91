//! The shard mark: the largest shard count any writer has stamped sessions with.
//!
//! Sessions are stamped with an idle-index shard ([`crate::index::shard`]); a query that read
//! fewer shards than some writer used would miss sessions. So before its first write a
//! process raises the store's mark to its own count (once: the mark never goes down), and
//! every query reads as many shards as the larger of the two.

use super::Driver;
use crate::index::store::SessionStore;
use crate::index::{IndexError, Result};

impl<S: SessionStore> Driver<S> {
    /// How many shards a query must read: this process's count or, if larger, the most any
    /// writer has used.
    pub(super) async fn scan(&self) -> Result<u32> {
        Ok(self.shards.scan(self.store.shard_mark().await?))
    }

    /// Before the first write stamped with our count: make the store's mark cover it.
    pub(super) async fn ensure_mark(&self) -> Result<()> {
        self.mark_raised
            .get_or_try_init(|| async {
                self.store.raise_shard_mark(self.shards.count()).await?;
                tracing::debug!(
                    shards = self.shards.count(),
                    "index shard mark covers this writer"
                );
                Ok::<_, IndexError>(())
            })
            .await
            .map(|_| ())
    }
}
