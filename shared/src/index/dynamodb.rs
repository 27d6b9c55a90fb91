//! The session index in DynamoDB, so an AWS deployment needs no GCP project.
//!
//! One table, two kinds of item under a session's partition `pk = S#<guid>`:
//! - `sk = SESSION`: the session (status, counts, times, lease, claim);
//! - `sk = C#<hash>`: one chunk, the hash taken over bucket + name + generation.
//!
//! Rejected objects live under `pk = R#<hash>, sk = REJECT`. A sparse global secondary index
//! `by_status` (hash `status`, range `last_chunk_at` as sortable RFC 3339 text) answers the
//! idle query; only session items carry `status`.
//!
//! Every session write is a whole-item `Put` conditioned on the item's revision `rev`
//! (optimistic concurrency: read, decide, write if nobody wrote in between, else read again),
//! and recording a chunk writes the chunk item and the session item in one
//! `TransactWriteItems`, so there is no moment where one exists without the other. The same
//! decisions as the SQLite adapter are made on the item read, which is why both pass one
//! conformance suite. Items carry `expire_at` (epoch seconds) for a TTL policy.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use super::protocol::{self, Decision, SessionState};
use super::{
    new_token, ChunkRecord, Claim, ClaimMode, ClaimOutcome, Completion, IndexError, Recorded,
    RejectRecord, Result, SessionIndex, SessionRecord, SessionStatus, RECORD_TTL,
};
use crate::aws::{failure, Failure};
use crate::engine::SessionGuid;
use crate::time::Millis;

/// The status index's name; Terraform declares the same.
pub const STATUS_INDEX: &str = "by_status";
/// Optimistic-concurrency attempts before contention is reported as transient: with the
/// jittered backoff between them (up to 1.28 s), about 15 s of trying.
const ATTEMPTS: usize = 20;

#[derive(Debug, Clone)]
pub struct DynamoIndex {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn session_pk(guid: &SessionGuid) -> String {
    format!("S#{guid}")
}

fn object_hash(bucket: &str, name: &str, generation: &str) -> String {
    let key = format!("{bucket}\0{name}\0{generation}");
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

fn sdk_error<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> IndexError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match failure(&err) {
        Failure::Transient => IndexError::Transient {
            op,
            source: err.into(),
        },
        _ => IndexError::Permanent {
            op,
            source: err.into(),
        },
    }
}

fn contention(op: &'static str) -> IndexError {
    IndexError::Transient {
        op,
        source: "too much contention on one session; retry".into(),
    }
}

/// A session item as read: the protocol's state plus the revision writes are conditioned on.
#[derive(Debug, Clone)]
struct SessionItem {
    state: SessionState,
    rev: i64,
}

impl SessionItem {
    fn from_item(item: &Item) -> Option<Self> {
        let guid = SessionGuid::parse(get_s(item, "guid")?).ok()?;
        let state = SessionState {
            record: SessionRecord {
                guid,
                status: SessionStatus::parse(get_s(item, "status")?)?,
                environment: get_s(item, "environment").unwrap_or_default().to_owned(),
                chunk_count: get_n(item, "chunk_count").unwrap_or(0) as u64,
                first_chunk_time: get_s(item, "first_chunk_time")
                    .unwrap_or_default()
                    .to_owned(),
                last_chunk_time: get_s(item, "last_chunk_time")
                    .unwrap_or_default()
                    .to_owned(),
                last_chunk_at: Millis(get_n(item, "last_chunk_ms").unwrap_or(0)),
                version: get_n(item, "version").unwrap_or(0) as u64,
                lease_until: get_n(item, "lease_until").map(Millis),
                result_object: get_s(item, "result_object").map(str::to_owned),
                finalized_at: get_n(item, "finalized_at").map(Millis),
                finalize_count: get_n(item, "finalize_count").unwrap_or(0) as u64,
            },
            claim_token: get_s(item, "claim_token").map(str::to_owned),
            claimed_version: get_n(item, "claimed_version").map(|v| v as u64),
        };
        Some(SessionItem {
            state,
            rev: get_n(item, "rev").unwrap_or(0),
        })
    }

    /// The item to write for `state`, one revision after `self.rev`.
    fn to_item(state: &SessionState, rev: i64) -> Item {
        let r = &state.record;
        let mut item: Item = [
            ("pk", s(session_pk(&r.guid))),
            ("sk", s("SESSION")),
            ("guid", s(r.guid.as_str())),
            ("status", s(r.status.as_str())),
            ("environment", s(&r.environment)),
            ("chunk_count", n(r.chunk_count)),
            ("first_chunk_time", s(&r.first_chunk_time)),
            ("last_chunk_time", s(&r.last_chunk_time)),
            ("last_chunk_at", s(r.last_chunk_at.to_rfc3339())),
            ("last_chunk_ms", n(r.last_chunk_at.0)),
            ("version", n(r.version)),
            ("finalize_count", n(r.finalize_count)),
            ("rev", n(rev + 1)),
            ("expire_at", n(r.last_chunk_at.plus(RECORD_TTL).0 / 1000)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let optional = [
            ("lease_until", r.lease_until.map(|t| n(t.0))),
            ("result_object", r.result_object.as_ref().map(s)),
            ("finalized_at", r.finalized_at.map(|t| n(t.0))),
            ("claim_token", state.claim_token.as_ref().map(s)),
            ("claimed_version", state.claimed_version.map(n)),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                item.insert(k.to_owned(), v);
            }
        }
        item
    }
}

impl DynamoIndex {
    /// Connects with the SDK's default chain (`AWS_ENDPOINT_URL` for an emulator).
    pub async fn connect(table: &str) -> Self {
        let shared = crate::aws::sdk_config().await;
        DynamoIndex {
            client: Client::new(&shared),
            table: table.to_owned(),
        }
    }

    /// Connects to an emulator at `endpoint`, with test credentials.
    pub async fn on_emulator(table: &str, endpoint: &str) -> Self {
        let shared = crate::aws::emulator_config(endpoint).await;
        DynamoIndex {
            client: Client::new(&shared),
            table: table.to_owned(),
        }
    }

    /// Creates the table with its status index, as Terraform does in a deployment. For tests
    /// and local emulators.
    pub async fn create_table(&self) -> Result<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type are set")
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(STATUS_INDEX)
            .key_schema(key("status", KeyType::Hash))
            .key_schema(key("last_chunk_at", KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .expect("index fields are set");
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .attribute_definitions(attr("status"))
            .attribute_definitions(attr("last_chunk_at"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .global_secondary_indexes(gsi)
            .send()
            .await
            .map_err(|e| sdk_error("create_table", e))?;
        Ok(())
    }

    async fn read_session(&self, guid: &SessionGuid) -> Result<Option<SessionItem>> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(guid)))
            .key("sk", s("SESSION"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("read", e))?;
        Ok(got.item().and_then(SessionItem::from_item))
    }

    fn conditional_put(&self, before: Option<&SessionItem>, after: &SessionState) -> Put {
        let rev = before.map_or(0, |b| b.rev);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(SessionItem::to_item(after, rev)));
        match before {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(b) => put
                .condition_expression("rev = :rev")
                .expression_attribute_values(":rev", n(b.rev)),
        }
        .build()
        .expect("table and item are set")
    }

    /// Read the session, decide, write conditionally on the revision read; again on conflict.
    async fn update<T>(
        &self,
        op: &'static str,
        guid: &SessionGuid,
        decide: impl Fn(Option<&SessionState>) -> Decision<T>,
    ) -> Result<T> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                super::contention_pause(attempt as u32 - 1).await;
            }
            let before = self.read_session(guid).await?;
            let (after, value) = match decide(before.as_ref().map(|b| &b.state)) {
                Decision::Done(value) => return Ok(value),
                Decision::Write(after, value) => (*after, value),
            };
            let put = self.conditional_put(before.as_ref(), &after);
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
                Ok(_) => return Ok(value),
                Err(e) if failure(&e) == Failure::Precondition => continue,
                Err(e) => return Err(sdk_error(op, e)),
            }
        }
        Err(contention(op))
    }
}

fn chunk_item(c: &ChunkRecord, now: Millis) -> Item {
    [
        ("pk", s(session_pk(&c.guid))),
        (
            "sk",
            s(format!(
                "C#{}",
                object_hash(&c.bucket, &c.name, c.identity())
            )),
        ),
        ("bucket", s(&c.bucket)),
        ("name", s(&c.name)),
        ("generation", s(&c.generation)),
        ("timestamp", s(&c.timestamp)),
        ("environment", s(&c.environment)),
        ("size", n(c.size)),
        ("event_count", n(c.event_count)),
        ("content_hash", s(&c.content_hash)),
        ("recorded_at", n(now.0)),
        ("expire_at", n(now.plus(RECORD_TTL).0 / 1000)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[async_trait]
impl SessionIndex for DynamoIndex {
    async fn record_chunk(&self, chunk: &ChunkRecord, now: Millis) -> Result<Recorded> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                super::contention_pause(attempt as u32 - 1).await;
            }
            let before = self.read_session(&chunk.guid).await?;
            let (after, reopened) =
                protocol::with_chunk(before.as_ref().map(|b| &b.state), chunk, now);
            let put_chunk = Put::builder()
                .table_name(&self.table)
                .set_item(Some(chunk_item(chunk, now)))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .expect("table and item are set");
            let sent = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_chunk).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .put(self.conditional_put(before.as_ref(), &after))
                        .build(),
                )
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(Recorded::New { reopened }),
                Err(e) => e,
            };
            if let SdkError::ServiceError(service) = &err {
                if let TransactWriteItemsError::TransactionCanceledException(cancel) = service.err()
                {
                    let failed = |i: usize| {
                        cancel
                            .cancellation_reasons()
                            .get(i)
                            .and_then(|r| r.code())
                            .is_some_and(|c| c == "ConditionalCheckFailed")
                    };
                    if failed(0) {
                        return Ok(Recorded::AlreadyKnown);
                    }
                    // The session moved under us (or a transaction conflict): read again.
                    continue;
                }
            }
            return Err(sdk_error("record_chunk", err));
        }
        Err(contention("record_chunk"))
    }

    async fn record_rejected(&self, r: &RejectRecord, now: Millis) -> Result<bool> {
        let item: Item = [
            (
                "pk",
                s(format!(
                    "R#{}",
                    object_hash(&r.bucket, &r.name, &r.generation)
                )),
            ),
            ("sk", s("REJECT")),
            ("bucket", s(&r.bucket)),
            ("name", s(&r.name)),
            ("generation", s(&r.generation)),
            ("kind", s(&r.kind)),
            ("reason", s(&r.reason)),
            ("recorded_at", n(now.0)),
            ("expire_at", n(now.plus(RECORD_TTL).0 / 1000)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if failure(&e) == Failure::Precondition => Ok(false),
            Err(e) => Err(sdk_error("record_rejected", e)),
        }
    }

    async fn idle_sessions(
        &self,
        idle_before: Millis,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<SessionGuid>> {
        let mut out = Vec::new();
        // Open sessions, oldest arrival first, straight from the index's sort order.
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(STATUS_INDEX)
            .key_condition_expression("#s = :open AND last_chunk_at < :t")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":t", s(idle_before.to_rfc3339()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("idle_sessions", e))?;
            for item in page.items() {
                if out.len() >= limit {
                    return Ok(out);
                }
                if let Some(g) = get_s(item, "guid").and_then(|g| SessionGuid::parse(g).ok()) {
                    out.push(g);
                }
            }
        }
        // Finalizing sessions whose lease ran out: their finalizer died.
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(STATUS_INDEX)
            .key_condition_expression("#s = :fin")
            .filter_expression("lease_until < :now")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":fin", s("finalizing"))
            .expression_attribute_values(":now", n(now.0))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("idle_sessions", e))?;
            for item in page.items() {
                if out.len() >= limit {
                    return Ok(out);
                }
                if let Some(g) = get_s(item, "guid").and_then(|g| SessionGuid::parse(g).ok()) {
                    out.push(g);
                }
            }
        }
        Ok(out)
    }

    async fn claim(
        &self,
        guid: &SessionGuid,
        mode: ClaimMode,
        now: Millis,
        lease: Duration,
    ) -> Result<ClaimOutcome> {
        let token = new_token();
        self.update("claim", guid, |before| {
            protocol::claim(before, mode, now, lease, &token)
        })
        .await
    }

    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :c)")
            .expression_attribute_values(":pk", s(session_pk(guid)))
            .expression_attribute_values(":c", s("C#"))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("chunks", e))?;
            for item in page.items() {
                out.push(ChunkRecord {
                    guid: guid.clone(),
                    bucket: get_s(item, "bucket").unwrap_or_default().to_owned(),
                    name: get_s(item, "name").unwrap_or_default().to_owned(),
                    generation: get_s(item, "generation").unwrap_or_default().to_owned(),
                    timestamp: get_s(item, "timestamp").unwrap_or_default().to_owned(),
                    environment: get_s(item, "environment").unwrap_or_default().to_owned(),
                    size: get_n(item, "size").unwrap_or(0) as u64,
                    event_count: get_n(item, "event_count").unwrap_or(0) as u64,
                    content_hash: get_s(item, "content_hash").unwrap_or_default().to_owned(),
                });
            }
        }
        Ok(out)
    }

    async fn complete(
        &self,
        claim: &Claim,
        result_object: &str,
        now: Millis,
    ) -> Result<Completion> {
        self.update("complete", &claim.guid, |before| {
            protocol::complete(before, claim, result_object, now)
        })
        .await
    }

    async fn renew(&self, claim: &Claim, now: Millis, lease: Duration) -> Result<Option<Millis>> {
        self.update("renew", &claim.guid, |before| {
            protocol::renew(before, claim, now, lease)
        })
        .await
    }

    async fn release(&self, claim: &Claim, _now: Millis) -> Result<()> {
        self.update("release", &claim.guid, |before| {
            protocol::release(before, claim)
        })
        .await
    }

    async fn session(&self, guid: &SessionGuid) -> Result<Option<SessionRecord>> {
        Ok(self.read_session(guid).await?.map(|s| s.state.record))
    }

    async fn sessions(&self, limit: usize) -> Result<Vec<SessionRecord>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :s")
            .expression_attribute_values(":s", s("SESSION"))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("sessions", e))?;
            out.extend(
                page.items()
                    .iter()
                    .filter_map(SessionItem::from_item)
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

    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :r")
            .expression_attribute_values(":r", s("REJECT"))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("rejected", e))?;
            for item in page.items() {
                out.push((
                    get_n(item, "recorded_at").unwrap_or(0),
                    RejectRecord {
                        bucket: get_s(item, "bucket").unwrap_or_default().to_owned(),
                        name: get_s(item, "name").unwrap_or_default().to_owned(),
                        generation: get_s(item, "generation").unwrap_or_default().to_owned(),
                        kind: get_s(item, "kind").unwrap_or_default().to_owned(),
                        reason: get_s(item, "reason").unwrap_or_default().to_owned(),
                    },
                ));
            }
        }
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        Ok(out.into_iter().take(limit).map(|(_, r)| r).collect())
    }
}
