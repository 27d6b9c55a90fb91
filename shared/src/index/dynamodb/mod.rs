//! The session index in DynamoDB, so an AWS deployment needs no GCP project.
//!
//! One table, two kinds of item under a session's partition `pk = S#<guid>`:
//! - `sk = SESSION`: the session (status, counts, times, lease, claim, shard, revision `rev`);
//! - `sk = C#<hash>`: one chunk, the hash taken over bucket + name +
//!   [`ChunkRecord::identity`](crate::index::ChunkRecord::identity).
//!
//! Rejected objects live under `pk = R#<hash>, sk = REJECT`, the shard high-water mark under
//! `pk = META, sk = SHARDS`, bookmarks (the scheduled reconcile's cursor) under
//! `pk = META, sk = BOOKMARK#<name>`. Items carry `expire_at` (epoch seconds) for a TTL policy.
//!
//! The store only reads a session item (consistently) with its `rev` and puts it back whole,
//! conditioned on that `rev`; recording a chunk puts the chunk item and the session item in
//! one `TransactWriteItems`, so neither exists without the other. The protocol is
//! [`crate::index::driver`]'s.
//!
//! ## The idle index
//! A GSI partition takes about 1,000 WCU/s, and every chunk write rewrites its session's
//! index entry. So the sparse global secondary index [`IDLE_INDEX`] is keyed by
//! [`IDLE_PK`] = `<status>#<shard>` (`open#7`, `finalizing#7`) with [`IDLE_SK`] = the time the
//! sweep ranges over (arrival for open sessions, lease expiry for finalizing ones): one
//! partition per shard and status, each a sweep query's exact range. Tombstones are there too
//! (`deleted#7`, by expiry) and refused objects (`rejected#0`…`rejected#15`, by time, spread
//! by a hash of their key), for `rrstitch status`'s counts; the sweep never reads those
//! partitions. A finalized session's item has neither attribute, so it leaves the index. It projects only keys; the guid is in
//! `pk`. Terraform declares the same (`infra/aws/main.tf`, checked by
//! `tests/tests/infra_aws.rs`).

mod adapter;
mod client;
mod codec;

pub use client::DynamoStore;

use crate::index::driver::Driver;
use crate::index::Result;

/// The session index in DynamoDB.
pub type DynamoIndex = Driver<DynamoStore>;

/// The sparse, sharded idle index's name; Terraform declares the same.
pub const IDLE_INDEX: &str = "idle_by_shard";
/// Its partition key: `<status>#<shard>` on open and finalizing sessions and tombstones,
/// `rejected#<n>` on refused objects.
pub const IDLE_PK: &str = "idle_pk";
/// Its sort key: epoch milliseconds of arrival (open), lease expiry (finalizing), tombstone
/// expiry (deleted) or refusal (rejected).
pub const IDLE_SK: &str = "idle_sk";

impl Driver<DynamoStore> {
    /// Connects with the SDK's default chain (`AWS_ENDPOINT_URL` for an emulator).
    pub async fn connect(table: &str) -> Self {
        Driver::over(DynamoStore::connect(table).await)
    }

    /// Connects to an emulator at `endpoint`, with test credentials.
    pub async fn on_emulator(table: &str, endpoint: &str) -> Self {
        Driver::over(DynamoStore::on_emulator(table, endpoint).await)
    }

    /// Creates the table with its idle index, as Terraform does in a deployment. For tests
    /// and local emulators.
    pub async fn create_table(&self) -> Result<()> {
        self.store().create_table().await
    }
}
