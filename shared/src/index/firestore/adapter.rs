//! [`SessionStore`] over Firestore: documents read with their update time, written with
//! an update-time (or must-not-exist) precondition, and the sharded queries.

use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use gcloud_sdk::google::firestore::v1::{
    document_transform::field_transform::TransformType, document_transform::FieldTransform,
    precondition::ConditionType, structured_query, value::ValueType, write, Cursor, Document,
    DocumentMask, StructuredQuery, Value, Write,
};
use gcloud_sdk::prost_types::Timestamp;

use super::client::FirestoreStore;
use super::codec::{self, get_int, get_time, integer, string, timestamp};
use super::{BOOKMARK_FIELD, CHUNKS_COLLECTION, SHARD_FIELD, SHARD_MARK_FIELD};
use crate::engine::SessionGuid;
use crate::index::driver::FANOUT;
use crate::index::protocol::SessionState;
use crate::index::store::{Due, DueEntry, NewChunk, SessionStore, Stored, Written};
use crate::index::{ChunkRecord, RejectRecord, Result, SessionRecord};
use crate::time::Millis;

fn field(path: &str) -> structured_query::FieldReference {
    structured_query::FieldReference {
        field_path: path.to_owned(),
    }
}

fn equal(path: &str, value: Value) -> structured_query::Filter {
    compare(path, structured_query::field_filter::Operator::Equal, value)
}

fn compare(
    path: &str,
    op: structured_query::field_filter::Operator,
    value: Value,
) -> structured_query::Filter {
    structured_query::Filter {
        filter_type: Some(structured_query::filter::FilterType::FieldFilter(
            structured_query::FieldFilter {
                field: Some(field(path)),
                op: op as i32,
                value: Some(value),
            },
        )),
    }
}

fn and(filters: Vec<structured_query::Filter>) -> structured_query::Filter {
    structured_query::Filter {
        filter_type: Some(structured_query::filter::FilterType::CompositeFilter(
            structured_query::CompositeFilter {
                op: structured_query::composite_filter::Operator::And as i32,
                filters,
            },
        )),
    }
}

fn order(path: &str, direction: structured_query::Direction) -> structured_query::Order {
    structured_query::Order {
        field: Some(field(path)),
        direction: direction as i32,
    }
}

fn from(collection: &str) -> Vec<structured_query::CollectionSelector> {
    vec![structured_query::CollectionSelector {
        collection_id: collection.to_owned(),
        all_descendants: false,
    }]
}

fn limit(n: usize) -> Option<i32> {
    Some(n.min(i32::MAX as usize) as i32)
}

/// The timestamp field a sweep query ranges over.
fn due_field(due: Due) -> &'static str {
    match due {
        Due::Idle => "last_chunk_at",
        Due::LeaseExpired | Due::Tombstone => "lease_until",
    }
}

fn guid_of(doc: &Document) -> Option<SessionGuid> {
    let id = doc.name.rsplit('/').next()?;
    SessionGuid::parse(id).ok()
}

impl FirestoreStore {
    /// Deletes `docs`; how many. A commit holds at most 500 writes; deleting a deleted
    /// document is not an error.
    async fn delete_all(&self, op: &'static str, docs: &[Document]) -> Result<u64> {
        for batch in docs.chunks(500) {
            let writes = batch
                .iter()
                .map(|d| codec::delete(d.name.clone(), None))
                .collect();
            self.commit(op, writes).await?;
        }
        Ok(docs.len() as u64)
    }

    /// The newest `n` reject documents passing `filter` (all without one), newest first.
    async fn newest_rejects(
        &self,
        op: &'static str,
        filter: Option<structured_query::Filter>,
        n: usize,
    ) -> Result<Vec<RejectRecord>> {
        let root = self.root().await?;
        let query = StructuredQuery {
            from: from(&self.rejected_collection()),
            r#where: filter,
            order_by: vec![order(
                "recorded_at",
                structured_query::Direction::Descending,
            )],
            limit: limit(n),
            ..Default::default()
        };
        let docs = self.query(op, root, query).await?;
        Ok(docs.iter().map(|d| codec::reject_from(&d.fields)).collect())
    }

    /// The reject documents naming `guid`.
    async fn rejected_docs(&self, op: &'static str, guid: &SessionGuid) -> Result<Vec<Document>> {
        let root = self.root().await?;
        let query = StructuredQuery {
            from: from(&self.rejected_collection()),
            r#where: Some(equal(codec::REJECT_SESSION_FIELD, string(guid.as_str()))),
            ..Default::default()
        };
        self.query(op, root, query).await
    }

    /// `shard == s AND status == … AND <time> < before ORDER BY <time>`: a composite index
    /// led by the shard ([`super::COMPOSITE_INDEXES`]).
    fn due_query(&self, shard: u32, due: Due, before: Millis, n: usize) -> StructuredQuery {
        use structured_query::field_filter::Operator;
        let time = due_field(due);
        StructuredQuery {
            select: Some(structured_query::Projection {
                fields: vec![field(time)],
            }),
            from: from(&self.config.collection),
            r#where: Some(and(vec![
                equal(SHARD_FIELD, integer(shard)),
                equal("status", string(due.status().as_str())),
                compare(time, Operator::LessThan, timestamp(before)),
            ])),
            order_by: vec![order(time, structured_query::Direction::Ascending)],
            limit: limit(n),
            ..Default::default()
        }
    }

    /// Sessions in document-name (guid) order from just after `after`'s document: Firestore
    /// orders by `__name__` on its built-in index, so this needs no composite index and
    /// a page is one range read.
    fn page_query(&self, root: &str, after: Option<&SessionGuid>, n: usize) -> StructuredQuery {
        let after = after.map(|g| Cursor {
            values: vec![Value {
                value_type: Some(ValueType::ReferenceValue(self.session_name(root, g))),
            }],
            before: false,
        });
        StructuredQuery {
            from: from(&self.config.collection),
            order_by: vec![order("__name__", structured_query::Direction::Ascending)],
            start_at: after,
            limit: limit(n),
            ..Default::default()
        }
    }

    /// One shard's sessions, most recently active first.
    fn listing_query(&self, shard: u32, n: usize) -> StructuredQuery {
        StructuredQuery {
            from: from(&self.config.collection),
            r#where: Some(equal(SHARD_FIELD, integer(shard))),
            order_by: vec![order(
                "last_chunk_at",
                structured_query::Direction::Descending,
            )],
            limit: limit(n),
            ..Default::default()
        }
    }
}

#[async_trait]
impl SessionStore for FirestoreStore {
    type Revision = Timestamp;

    async fn read(&self, guid: &SessionGuid) -> Result<Option<Stored<Timestamp>>> {
        let root = self.root().await?;
        let doc = self.get("read", self.session_name(&root, guid)).await?;
        Ok(doc.as_ref().and_then(codec::session_from))
    }

    async fn write(
        &self,
        expected: Option<&Timestamp>,
        state: &SessionState,
        chunk: Option<NewChunk<'_>>,
    ) -> Result<Written> {
        let root = self.root().await?;
        let session = self.session_name(&root, &state.record.guid);
        let chunk_doc = chunk.map(|c| {
            let r = c.record;
            let id = codec::object_hash(&r.bucket, &r.name, r.identity());
            let name = format!("{session}/{CHUNKS_COLLECTION}/{id}");
            (name, codec::chunk_fields(r, c.at, self.record_ttl))
        });
        // The chunk document and the session document in one atomic commit, so neither
        // exists without the other.
        let mut writes = Vec::with_capacity(2);
        if let Some((name, fields)) = &chunk_doc {
            writes.push(codec::put(
                name.clone(),
                fields.clone(),
                ConditionType::Exists(false),
            ));
        }
        writes.push(codec::put(
            session,
            codec::session_fields(state, self.record_ttl),
            codec::unchanged(expected),
        ));
        if self.commit("write", writes).await? {
            return Ok(Written::Written);
        }
        // Either the chunk is known already, or the session moved under us.
        if let Some((name, _)) = chunk_doc {
            if self.get("write", name).await?.is_some() {
                return Ok(Written::ChunkKnown);
            }
        }
        Ok(Written::Conflict)
    }

    async fn chunk_known(&self, c: &ChunkRecord) -> Result<bool> {
        let root = self.root().await?;
        let session = self.session_name(&root, &c.guid);
        let id = codec::object_hash(&c.bucket, &c.name, c.identity());
        let name = format!("{session}/{CHUNKS_COLLECTION}/{id}");
        Ok(self.get("chunk_known", name).await?.is_some())
    }

    async fn record_rejected(&self, r: &RejectRecord, now: Millis) -> Result<bool> {
        let root = self.root().await?;
        let name = format!(
            "{root}/{}/{}",
            self.rejected_collection(),
            codec::object_hash(&r.bucket, &r.name, &r.generation)
        );
        let write = codec::put(
            name,
            codec::reject_fields(r, now, self.record_ttl),
            ConditionType::Exists(false),
        );
        self.commit("record_rejected", vec![write]).await
    }

    async fn due(&self, shard: u32, due: Due, before: Millis, n: usize) -> Result<Vec<DueEntry>> {
        let root = self.root().await?;
        let docs = self
            .query("idle_sessions", root, self.due_query(shard, due, before, n))
            .await?;
        Ok(docs
            .iter()
            .filter_map(|d| {
                Some(DueEntry {
                    guid: guid_of(d)?,
                    at: get_time(&d.fields, due_field(due))?,
                })
            })
            .collect())
    }

    async fn shard_mark(&self) -> Result<Option<u32>> {
        let root = self.root().await?;
        let doc = self.get("shard_mark", self.shard_mark_name(&root)).await?;
        Ok(doc
            .and_then(|d| get_int(&d.fields, SHARD_MARK_FIELD))
            .map(|n| n.clamp(0, i64::from(u32::MAX)) as u32))
    }

    async fn bookmark(&self, name: &str) -> Result<Option<String>> {
        let root = self.root().await?;
        let doc = self
            .get("bookmark", self.bookmark_name(&root, name))
            .await?;
        Ok(doc.and_then(
            |d| match d.fields.get(BOOKMARK_FIELD)?.value_type.as_ref()? {
                ValueType::StringValue(v) => Some(v.clone()),
                _ => None,
            },
        ))
    }

    async fn set_bookmark(&self, name: &str, value: Option<&str>) -> Result<()> {
        let root = self.root().await?;
        let doc = self.bookmark_name(&root, name);
        let operation = match value {
            Some(v) => write::Operation::Update(Document {
                name: doc,
                fields: [(BOOKMARK_FIELD.to_owned(), codec::string(v))].into(),
                ..Default::default()
            }),
            None => write::Operation::Delete(doc),
        };
        let write = Write {
            operation: Some(operation),
            ..Default::default()
        };
        // Unconditional: a refusal would be a precondition, and there is none.
        self.commit("set_bookmark", vec![write]).await?;
        Ok(())
    }

    async fn raise_shard_mark(&self, count: u32) -> Result<()> {
        let root = self.root().await?;
        // A server-side `maximum` transform: atomic, creates the document if missing, and
        // never lowers a mark another writer raised further.
        let write = Write {
            operation: Some(write::Operation::Update(Document {
                name: self.shard_mark_name(&root),
                ..Default::default()
            })),
            update_mask: Some(DocumentMask {
                field_paths: Vec::new(),
            }),
            update_transforms: vec![FieldTransform {
                field_path: SHARD_MARK_FIELD.to_owned(),
                transform_type: Some(TransformType::Maximum(integer(count))),
            }],
            ..Default::default()
        };
        if !self.commit("raise_shard_mark", vec![write]).await? {
            tracing::warn!("Firestore refused the shard mark transform's precondition");
        }
        Ok(())
    }

    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>> {
        let root = self.root().await?;
        let query = StructuredQuery {
            from: from(CHUNKS_COLLECTION),
            ..Default::default()
        };
        let docs = self
            .query("chunks", self.session_name(&root, guid), query)
            .await?;
        Ok(docs
            .iter()
            .map(|d| codec::chunk_from(guid, &d.fields))
            .collect())
    }

    async fn sessions(&self, shards: u32, n: usize) -> Result<Vec<SessionRecord>> {
        let root = self.root().await?;
        // `last_chunk_at` has no single-field index (it is a sequential hot range), so the
        // listing asks each shard's composite index and merges.
        let pages: Vec<Vec<Document>> = stream::iter(0..shards)
            .map(|shard| self.query("sessions", root.clone(), self.listing_query(shard, n)))
            .buffer_unordered(FANOUT)
            .try_collect()
            .await?;
        let mut out: Vec<SessionRecord> = pages
            .iter()
            .flatten()
            .filter_map(codec::session_from)
            .map(|s| s.state.record)
            .collect();
        out.sort_by(|a, b| {
            b.last_chunk_at
                .cmp(&a.last_chunk_at)
                .then_with(|| a.guid.cmp(&b.guid))
        });
        out.truncate(n);
        Ok(out)
    }

    async fn sessions_after(&self, after: Option<&str>, n: usize) -> Result<Vec<SessionRecord>> {
        let after = after
            .map(|a| {
                SessionGuid::parse(a).map_err(|e| crate::index::IndexError::Permanent {
                    op: "sessions_page",
                    source: format!("the listing cursor {a:?} is not a session guid: {e}").into(),
                })
            })
            .transpose()?;
        let root = self.root().await?;
        let query = self.page_query(&root, after.as_ref(), n);
        let docs = self.query("sessions_page", root, query).await?;
        Ok(docs
            .iter()
            .filter_map(codec::session_from)
            .map(|s| s.state.record)
            .collect())
    }

    async fn count_due(&self, shard: u32, due: Due, before: Millis) -> Result<u64> {
        let root = self.root().await?;
        // The sweep's query (and so its composite index), counted instead of read.
        let query = StructuredQuery {
            select: None,
            limit: None,
            ..self.due_query(shard, due, before, 0)
        };
        self.count("count_due", root, query).await
    }

    async fn rejected_since(&self, since: Millis, n: usize) -> Result<Vec<RejectRecord>> {
        use structured_query::field_filter::Operator;
        let since = compare(
            "recorded_at",
            Operator::GreaterThanOrEqual,
            timestamp(since),
        );
        self.newest_rejects("rejected_since", Some(since), n).await
    }

    async fn rejected(&self, n: usize) -> Result<Vec<RejectRecord>> {
        self.newest_rejects("rejected", None, n).await
    }

    async fn forget_chunks(&self, guid: &SessionGuid) -> Result<u64> {
        let root = self.root().await?;
        let parent = self.session_name(&root, guid);
        let query = StructuredQuery {
            select: Some(structured_query::Projection { fields: Vec::new() }),
            from: from(CHUNKS_COLLECTION),
            ..Default::default()
        };
        let docs = self.query("forget_chunks", parent, query).await?;
        self.delete_all("forget_chunks", &docs).await
    }

    async fn rejected_of(&self, guid: &SessionGuid) -> Result<Vec<RejectRecord>> {
        let docs = self.rejected_docs("rejected_of", guid).await?;
        Ok(docs.iter().map(|d| codec::reject_from(&d.fields)).collect())
    }

    async fn forget_rejected(&self, guid: &SessionGuid) -> Result<u64> {
        let docs = self.rejected_docs("forget_rejected", guid).await?;
        self.delete_all("forget_rejected", &docs).await
    }

    async fn remove(&self, guid: &SessionGuid, expected: &Timestamp) -> Result<Written> {
        let root = self.root().await?;
        let write = codec::delete(
            self.session_name(&root, guid),
            Some(ConditionType::UpdateTime(*expected)),
        );
        Ok(if self.commit("remove", vec![write]).await? {
            Written::Written
        } else {
            Written::Conflict
        })
    }
}
