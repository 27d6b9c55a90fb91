//! [`SessionStore`] over DynamoDB: items read consistently with their revision `rev`, written
//! whole with a `rev` (or must-not-exist) condition, and the sharded idle index's queries.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, Select, TransactWriteItem};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::client::{sdk_error, DynamoStore};
use super::codec::{
    self, get_n, get_s, guid_of_pk, n, s, session_pk, BOOKMARK_ATTR, META_PK,
    REJECT_POINTER_PREFIX, REJECT_SK, SESSION_SK, SHARD_MARK_ATTR, SHARD_MARK_SK,
};
use super::{IDLE_INDEX, IDLE_PK, IDLE_SK};
use crate::aws::{failure, Failure};
use crate::engine::SessionGuid;
use crate::index::driver::FANOUT;
use crate::index::protocol::SessionState;
use crate::index::store::{Due, DueEntry, NewChunk, SessionStore, Stored, Written};
use crate::index::{ChunkRecord, IndexError, RejectRecord, Result, SessionRecord};
use crate::time::Millis;

impl DynamoStore {
    /// A query of the idle index's partition `pk` over the range `condition` of its sort key
    /// (`#sk`, against `:t` = `at`): every query of that index is one of these.
    fn idle_range(&self, pk: String, condition: &str, at: Millis) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(IDLE_INDEX)
            .key_condition_expression(format!("#pk = :pk AND {condition}"))
            .expression_attribute_names("#pk", IDLE_PK)
            .expression_attribute_names("#sk", IDLE_SK)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":t", n(at.0))
    }

    /// The newest `limit` reject keys of one of the rejects' idle-index partitions recorded
    /// at or after `since`, as (recorded at, the reject item's `pk`).
    async fn recent_reject_keys(
        &self,
        p: u32,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<(i64, String)>> {
        let mut out = Vec::new();
        let mut pages = self
            .idle_range(codec::reject_idle_pk(p), "#sk >= :t", since)
            .scan_index_forward(false)
            .limit(limit.clamp(1, i32::MAX as usize) as i32)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("rejected_since", e))?;
            for item in page.items() {
                if out.len() >= limit {
                    return Ok(out);
                }
                if let Some(entry) = get_n(item, IDLE_SK).zip(get_s(item, "pk")) {
                    out.push((entry.0, entry.1.to_owned()));
                }
            }
        }
        Ok(out)
    }

    /// A whole-item put of `state`, conditioned on the revision `expected`.
    fn conditional_put(&self, expected: Option<i64>, state: &SessionState) -> Put {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(codec::session_item(
                state,
                expected.map_or(1, |rev| rev + 1),
                self.record_ttl,
            )));
        match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(rev) => put
                .condition_expression("rev = :rev")
                .expression_attribute_values(":rev", n(rev)),
        }
        .build()
        .expect("table and item are set")
    }

    /// The session and its chunk in one transaction.
    async fn write_with_chunk(
        &self,
        expected: Option<i64>,
        state: &SessionState,
        chunk: NewChunk<'_>,
    ) -> Result<Written> {
        let put_chunk = Put::builder()
            .table_name(&self.table)
            .set_item(Some(codec::chunk_item(
                chunk.record,
                chunk.at,
                self.record_ttl,
            )))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table and item are set");
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_chunk).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.conditional_put(expected, state))
                    .build(),
            )
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(Written::Written),
            Err(e) => e,
        };
        if let SdkError::ServiceError(service) = &err {
            if let TransactWriteItemsError::TransactionCanceledException(cancel) = service.err() {
                let chunk_known = cancel
                    .cancellation_reasons()
                    .first()
                    .and_then(|r| r.code())
                    .is_some_and(|c| c == "ConditionalCheckFailed");
                // Otherwise the session moved under us, or another transaction conflicted.
                return Ok(if chunk_known {
                    Written::ChunkKnown
                } else {
                    Written::Conflict
                });
            }
        }
        Err(sdk_error("record_chunk", err))
    }
}

#[async_trait]
impl SessionStore for DynamoStore {
    type Revision = i64;

    async fn read(&self, guid: &SessionGuid) -> Result<Option<Stored<i64>>> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(guid)))
            .key("sk", s(SESSION_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("read", e))?;
        Ok(got.item().and_then(codec::session_from))
    }

    async fn write(
        &self,
        expected: Option<&i64>,
        state: &SessionState,
        chunk: Option<NewChunk<'_>>,
    ) -> Result<Written> {
        let expected = expected.copied();
        if let Some(chunk) = chunk {
            return self.write_with_chunk(expected, state, chunk).await;
        }
        let put = self.conditional_put(expected, state);
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Written::Written),
            Err(e) if failure(&e) == Failure::Precondition => Ok(Written::Conflict),
            Err(e) => Err(sdk_error("write", e)),
        }
    }

    async fn chunk_known(&self, c: &ChunkRecord) -> Result<bool> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(&c.guid)))
            .key("sk", s(codec::chunk_sk(c)))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("chunk_known", e))?;
        Ok(got.item().is_some())
    }

    async fn record_rejected(&self, r: &RejectRecord, now: Millis) -> Result<bool> {
        // The session's pointer first: a reject an erasure cannot find must not exist even
        // for a moment. Writing it again is harmless.
        if let Some(pointer) = codec::reject_pointer(r, now, self.record_ttl) {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(pointer))
                .send()
                .await
                .map_err(|e| sdk_error("record_rejected", e))?;
        }
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(codec::reject_item(r, now, self.record_ttl)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if failure(&e) == Failure::Precondition => Ok(false),
            Err(e) => Err(sdk_error("record_rejected", e)),
        }
    }

    async fn due(
        &self,
        shard: u32,
        due: Due,
        before: Millis,
        limit: usize,
    ) -> Result<Vec<DueEntry>> {
        let mut out = Vec::new();
        // One partition of the idle index, in its sort order (arrival, or lease expiry).
        let mut pages = self
            .idle_range(codec::idle_pk(due, shard), "#sk < :t", before)
            .limit(limit.clamp(1, i32::MAX as usize) as i32)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("idle_sessions", e))?;
            for item in page.items() {
                if out.len() >= limit {
                    return Ok(out);
                }
                let entry = get_s(item, "pk")
                    .and_then(guid_of_pk)
                    .zip(get_n(item, IDLE_SK));
                if let Some((guid, at)) = entry {
                    out.push(DueEntry {
                        guid,
                        at: Millis(at),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn shard_mark(&self) -> Result<Option<u32>> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(META_PK))
            .key("sk", s(SHARD_MARK_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("shard_mark", e))?;
        Ok(got
            .item()
            .and_then(|item| get_n(item, SHARD_MARK_ATTR))
            .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32))
    }

    async fn bookmark(&self, name: &str) -> Result<Option<String>> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(META_PK))
            .key("sk", s(codec::bookmark_sk(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("bookmark", e))?;
        Ok(got
            .item()
            .and_then(|item| item.get(BOOKMARK_ATTR))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    async fn set_bookmark(&self, name: &str, value: Option<&str>) -> Result<()> {
        let sk = codec::bookmark_sk(name);
        match value {
            Some(v) => self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(META_PK))
                .item("sk", s(sk))
                .item(BOOKMARK_ATTR, s(v))
                .send()
                .await
                .map(drop)
                .map_err(|e| sdk_error("set_bookmark", e)),
            None => self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(META_PK))
                .key("sk", s(sk))
                .send()
                .await
                .map(drop)
                .map_err(|e| sdk_error("set_bookmark", e)),
        }
    }

    async fn raise_shard_mark(&self, count: u32) -> Result<()> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(META_PK))
            .key("sk", s(SHARD_MARK_SK))
            .update_expression("SET #m = :n")
            .condition_expression("attribute_not_exists(#m) OR #m < :n")
            .expression_attribute_names("#m", SHARD_MARK_ATTR)
            .expression_attribute_values(":n", n(count))
            .send()
            .await;
        match sent {
            // The condition failing means another writer's mark is as high already.
            Ok(_) => Ok(()),
            Err(e) if failure(&e) == Failure::Precondition => Ok(()),
            Err(e) => Err(sdk_error("raise_shard_mark", e)),
        }
    }

    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>> {
        let items = self.chunk_items(guid, None, "chunks").await?;
        Ok(items.iter().map(|i| codec::chunk_from(guid, i)).collect())
    }

    async fn sessions(&self, _shards: u32, limit: usize) -> Result<Vec<SessionRecord>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :s")
            .expression_attribute_values(":s", s(SESSION_SK))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("sessions", e))?;
            out.extend(
                page.items()
                    .iter()
                    .filter_map(codec::session_from)
                    .map(|s| s.state.record),
            );
        }
        out.sort_by(|a, b| {
            b.last_chunk_at
                .cmp(&a.last_chunk_at)
                .then(a.guid.cmp(&b.guid))
        });
        out.truncate(limit);
        Ok(out)
    }

    async fn sessions_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>> {
        // The scan's own order (by the partition key's hash): the one a table can be walked
        // in without an index over every session. Resuming from a session item's key is
        // exact: DynamoDB starts after that key whether or not the item still exists, and
        // within its partition nothing sorts after `SESSION` (chunks are `C#…`, reject
        // pointers `R#…`), so the next page starts at the next partition.
        let after = after
            .map(|a| {
                SessionGuid::parse(a).map_err(|e| crate::index::IndexError::Permanent {
                    op: "sessions_page",
                    source: format!("the listing cursor {a:?} is not a session guid: {e}").into(),
                })
            })
            .transpose()?;
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :s")
            .expression_attribute_values(":s", s(SESSION_SK))
            .consistent_read(true);
        if let Some(after) = &after {
            scan = scan
                .exclusive_start_key("pk", s(session_pk(after)))
                .exclusive_start_key("sk", s(SESSION_SK));
        }
        let mut out = Vec::new();
        let mut pages = scan.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("sessions_page", e))?;
            for item in page.items() {
                if out.len() >= limit {
                    return Ok(out);
                }
                if let Some(stored) = codec::session_from(item) {
                    out.push(stored.state.record);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    async fn count_due(&self, shard: u32, due: Due, before: Millis) -> Result<u64> {
        // The same partition and range as `due`, counted: DynamoDB still reads the (keys
        // only) entries, 1 MB a page, but sends none back.
        let mut pages = self
            .idle_range(codec::idle_pk(due, shard), "#sk < :t", before)
            .select(Select::Count)
            .into_paginator()
            .send();
        let mut count = 0u64;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("count_due", e))?;
            count += page.count().max(0) as u64;
        }
        Ok(count)
    }

    async fn rejected_since(&self, since: Millis, limit: usize) -> Result<Vec<RejectRecord>> {
        // Newest first from each of the rejects' partitions of the idle index, merged; then
        // the items themselves (the index holds only keys).
        let partitions: Vec<Vec<(i64, String)>> = stream::iter(0..codec::REJECT_PARTITIONS)
            .map(|p| self.recent_reject_keys(p, since, limit))
            .buffer_unordered(FANOUT)
            .try_collect()
            .await?;
        let mut keys: Vec<(i64, String)> = partitions.into_iter().flatten().collect();
        keys.sort_by(|a, b| b.cmp(a));
        keys.truncate(limit);
        let items: Vec<Option<(i64, RejectRecord)>> = stream::iter(keys)
            .map(|(_, pk)| async move {
                let got = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(REJECT_SK))
                    .send()
                    .await
                    .map_err(|e| sdk_error("rejected_since", e))?;
                Ok::<_, IndexError>(got.item().map(codec::reject_from))
            })
            .buffered(FANOUT)
            .try_collect()
            .await?;
        // An item the TTL removed between the two reads is simply gone.
        Ok(items.into_iter().flatten().map(|(_, r)| r).collect())
    }

    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :r")
            .expression_attribute_values(":r", s(REJECT_SK))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("rejected", e))?;
            out.extend(page.items().iter().map(codec::reject_from));
        }
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        Ok(out.into_iter().take(limit).map(|(_, r)| r).collect())
    }

    async fn forget_chunks(&self, guid: &SessionGuid) -> Result<u64> {
        let chunks = self.chunk_keys(guid).await?;
        for sk in &chunks {
            // Deleting a missing item is not an error: a retried erasure passes.
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(session_pk(guid)))
                .key("sk", s(sk))
                .send()
                .await
                .map_err(|e| sdk_error("forget_chunks", e))?;
        }
        Ok(chunks.len() as u64)
    }

    async fn rejected_of(&self, guid: &SessionGuid) -> Result<Vec<RejectRecord>> {
        let pointers = self.reject_pointers(guid, "rejected_of").await?;
        Ok(pointers.iter().map(|i| codec::reject_from(i).1).collect())
    }

    async fn forget_rejected(&self, guid: &SessionGuid) -> Result<u64> {
        let pointers = self.reject_pointers(guid, "forget_rejected").await?;
        for pointer in &pointers {
            let Some(own) = get_s(pointer, "sk") else {
                continue;
            };
            // The reject's own item, then its pointer: an interrupted erasure still finds
            // the pointer and deletes both. Deleting a missing item is not an error.
            let items = [
                (own.to_owned(), REJECT_SK.to_owned()),
                (session_pk(guid), own.to_owned()),
            ];
            for (pk, sk) in items {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .send()
                    .await
                    .map_err(|e| sdk_error("forget_rejected", e))?;
            }
        }
        Ok(pointers.len() as u64)
    }

    async fn remove(&self, guid: &SessionGuid, expected: &i64) -> Result<Written> {
        let sent = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(guid)))
            .key("sk", s(SESSION_SK))
            .condition_expression("rev = :rev")
            .expression_attribute_values(":rev", n(*expected))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Written::Written),
            Err(e) if failure(&e) == Failure::Precondition => Ok(Written::Conflict),
            Err(e) => Err(sdk_error("remove", e)),
        }
    }
}

impl DynamoStore {
    /// The sort keys of a session's chunk items.
    async fn chunk_keys(&self, guid: &SessionGuid) -> Result<Vec<String>> {
        let items = self.chunk_items(guid, Some("sk"), "forget_chunks").await?;
        Ok(items
            .iter()
            .filter_map(|i| get_s(i, "sk").map(str::to_owned))
            .collect())
    }

    /// A session's chunk items (all pages, consistent), optionally projected.
    async fn chunk_items(
        &self,
        guid: &SessionGuid,
        projection: Option<&str>,
        op: &'static str,
    ) -> Result<Vec<std::collections::HashMap<String, AttributeValue>>> {
        self.partition_items(guid, "C#", projection, op).await
    }

    /// The pointers to the reject items naming a session ([`codec::reject_pointer`]).
    async fn reject_pointers(
        &self,
        guid: &SessionGuid,
        op: &'static str,
    ) -> Result<Vec<std::collections::HashMap<String, AttributeValue>>> {
        self.partition_items(guid, REJECT_POINTER_PREFIX, None, op)
            .await
    }

    /// The items of a session's partition whose sort key starts with `sk_prefix` (all
    /// pages, consistent), optionally projected.
    async fn partition_items(
        &self,
        guid: &SessionGuid,
        sk_prefix: &str,
        projection: Option<&str>,
        op: &'static str,
    ) -> Result<Vec<std::collections::HashMap<String, AttributeValue>>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :c)")
            .expression_attribute_values(":pk", s(session_pk(guid)))
            .expression_attribute_values(":c", s(sk_prefix))
            .set_projection_expression(projection.map(str::to_owned))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(op, e))?;
            out.extend(page.items().iter().cloned());
        }
        Ok(out)
    }
}
