//! The session index in Cloud Firestore (native mode), for the GCP deployment.
//!
//! Documents:
//! - `<collection>/{guid}`: the session (status, counts, chunk times, lease, claim token,
//!   result object, `expire_at` for a TTL policy);
//! - `<collection>/{guid}/chunks/{hash}`: one per chunk, the id hashed from bucket + name +
//!   generation, created only if absent, so a redelivered event changes nothing;
//! - `<collection>_rejected/{hash}`: refused objects with their reason.
//!
//! Every session write is conditioned on the document's `update_time` as read (or on its
//! absence), the same optimistic read-decide-write as the DynamoDB adapter, with the decisions
//! shared in [`super::protocol`]. Recording a chunk commits the chunk document and the session
//! document in one atomic `Commit`, so neither exists without the other. One session document
//! is written a handful of times in its life (per chunk, per claim, per completion), well under
//! Firestore's sustained one write per second per document.
//!
//! The queries ask for `status == "open" AND last_chunk_at < T ORDER BY last_chunk_at` and
//! `status == "finalizing" AND lease_until < T ORDER BY lease_until`: the two composite
//! indexes Terraform declares (`infra/gcp/modules/rrstitch/firestore.tf`).
//!
//! The client speaks gRPC through the `firestore` crate's authenticated channel, using the
//! Firestore v1 protocol messages directly: every operation here is one RPC, and the
//! preconditions and atomic commits are the protocol's own. The connection is made on first
//! use, so a function starts (and answers 503) while Firestore is unreachable.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use firestore::{FirestoreDb, FirestoreDbOptions};
use futures::TryStreamExt;
use gcloud_sdk::google::firestore::v1::{
    firestore_client::FirestoreClient, precondition::ConditionType, run_query_request,
    structured_query, value::ValueType, write, CommitRequest, Document, GetDocumentRequest,
    Precondition, RunQueryRequest, StructuredQuery, Value, Write,
};
use gcloud_sdk::google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use gcloud_sdk::google_cloud_auth::errors::CredentialsError;
use gcloud_sdk::prost_types::Timestamp;
use gcloud_sdk::tonic::{self, Code};
use gcloud_sdk::GoogleAuthMiddleware;
use tokio::sync::OnceCell;

use super::protocol::{self, Decision, SessionState};
use super::{
    new_token, ChunkRecord, Claim, ClaimMode, ClaimOutcome, Completion, IndexError, Recorded,
    RejectRecord, Result, SessionIndex, SessionRecord, SessionStatus, RECORD_TTL,
};
use crate::engine::SessionGuid;
use crate::time::Millis;

/// The composite indexes the two idle queries need, as (equality field, range-and-order
/// field): Terraform declares exactly these (`infra/gcp/modules/rrstitch/firestore.tf`, checked
/// by `tests/tests/infra_gcp.rs`).
pub const COMPOSITE_INDEXES: [(&str, &str); 2] =
    [("status", "last_chunk_at"), ("status", "lease_until")];
/// The subcollection of a session's chunk documents.
pub const CHUNKS_COLLECTION: &str = "chunks";
/// Appended to the sessions collection's name for the rejected objects' collection.
pub const REJECTED_SUFFIX: &str = "_rejected";

/// Optimistic-concurrency attempts before contention is reported as transient: with the
/// jittered backoff between them (up to 1.28 s), about 15 s of trying.
const ATTEMPTS: usize = 20;
/// Attempts at one RPC that failed transiently (unavailable, deadline), with backoff between.
const RPC_ATTEMPTS: u32 = 3;
/// A deadline on every RPC, so a hung backend becomes a transient error, not a hung function.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the index lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirestoreConfig {
    pub project: String,
    /// `(default)` unless a named database was created.
    pub database: String,
    /// The sessions collection; rejected objects go to `<collection>_rejected`.
    pub collection: String,
    /// An emulator's `host:port`; `None` for the service (or `FIRESTORE_EMULATOR_HOST`).
    pub emulator: Option<String>,
}

#[derive(Debug)]
pub struct FirestoreIndex {
    config: FirestoreConfig,
    db: OnceCell<FirestoreDb>,
}

type Client = FirestoreClient<GoogleAuthMiddleware>;
type Fields = HashMap<String, Value>;

/// What the Firestore emulator expects in place of real credentials: its conventional
/// "owner" token, which also bypasses security rules.
#[derive(Debug)]
struct EmulatorOwner(EntityTag);

impl CredentialsProvider for EmulatorOwner {
    async fn headers(
        &self,
        extensions: http::Extensions,
    ) -> std::result::Result<CacheableResource<http::HeaderMap>, CredentialsError> {
        if extensions.get::<EntityTag>() == Some(&self.0) {
            return Ok(CacheableResource::NotModified);
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer owner"),
        );
        Ok(CacheableResource::New {
            entity_tag: self.0.clone(),
            data: headers,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

fn transient(op: &'static str, source: impl Into<crate::storage::BoxError>) -> IndexError {
    IndexError::Transient {
        op,
        source: source.into(),
    }
}

fn status_error(op: &'static str, status: tonic::Status) -> IndexError {
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Internal
        | Code::Unknown
        | Code::Cancelled => transient(op, status),
        _ => IndexError::Permanent {
            op,
            source: status.into(),
        },
    }
}

fn is_precondition(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::FailedPrecondition | Code::AlreadyExists | Code::NotFound
    )
}

fn object_hash(bucket: &str, name: &str, generation: &str) -> String {
    let key = format!("{bucket}\0{name}\0{generation}");
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

// ---- values ----

fn string(v: impl Into<String>) -> Value {
    Value {
        value_type: Some(ValueType::StringValue(v.into())),
    }
}

fn integer(v: impl TryInto<i64>) -> Value {
    Value {
        value_type: Some(ValueType::IntegerValue(v.try_into().unwrap_or(i64::MAX))),
    }
}

fn timestamp(t: Millis) -> Value {
    Value {
        value_type: Some(ValueType::TimestampValue(Timestamp {
            seconds: t.0.div_euclid(1000),
            nanos: (t.0.rem_euclid(1000) * 1_000_000) as i32,
        })),
    }
}

fn get_str<'a>(f: &'a Fields, key: &str) -> Option<&'a str> {
    match f.get(key)?.value_type.as_ref()? {
        ValueType::StringValue(s) => Some(s),
        _ => None,
    }
}

fn get_int(f: &Fields, key: &str) -> Option<i64> {
    match f.get(key)?.value_type.as_ref()? {
        ValueType::IntegerValue(n) => Some(*n),
        _ => None,
    }
}

fn get_time(f: &Fields, key: &str) -> Option<Millis> {
    match f.get(key)?.value_type.as_ref()? {
        ValueType::TimestampValue(t) => {
            Some(Millis(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000))
        }
        _ => None,
    }
}

fn fields<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Fields {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
}

// ---- documents ----

/// A session document as read: the protocol's state and the version writes are conditioned on.
struct SessionDoc {
    state: SessionState,
    update_time: Option<Timestamp>,
}

fn session_from(doc: &Document) -> Option<SessionDoc> {
    let f = &doc.fields;
    let state = SessionState {
        record: SessionRecord {
            guid: SessionGuid::parse(get_str(f, "guid")?).ok()?,
            status: SessionStatus::parse(get_str(f, "status")?)?,
            environment: get_str(f, "environment").unwrap_or_default().to_owned(),
            chunk_count: get_int(f, "chunk_count").unwrap_or(0) as u64,
            first_chunk_time: get_str(f, "first_chunk_time")
                .unwrap_or_default()
                .to_owned(),
            last_chunk_time: get_str(f, "last_chunk_time").unwrap_or_default().to_owned(),
            last_chunk_at: get_time(f, "last_chunk_at").unwrap_or(Millis(0)),
            version: get_int(f, "version").unwrap_or(0) as u64,
            lease_until: get_time(f, "lease_until"),
            result_object: get_str(f, "result_object").map(str::to_owned),
            finalized_at: get_time(f, "finalized_at"),
            finalize_count: get_int(f, "finalize_count").unwrap_or(0) as u64,
        },
        claim_token: get_str(f, "claim_token").map(str::to_owned),
        claimed_version: get_int(f, "claimed_version").map(|v| v as u64),
    };
    Some(SessionDoc {
        state,
        update_time: doc.update_time,
    })
}

fn session_fields(s: &SessionState) -> Fields {
    let r = &s.record;
    fields([
        ("guid", Some(string(r.guid.as_str()))),
        ("status", Some(string(r.status.as_str()))),
        ("environment", Some(string(&r.environment))),
        ("chunk_count", Some(integer(r.chunk_count))),
        ("first_chunk_time", Some(string(&r.first_chunk_time))),
        ("last_chunk_time", Some(string(&r.last_chunk_time))),
        ("last_chunk_at", Some(timestamp(r.last_chunk_at))),
        ("version", Some(integer(r.version))),
        ("finalize_count", Some(integer(r.finalize_count))),
        (
            "expire_at",
            Some(timestamp(r.last_chunk_at.plus(RECORD_TTL))),
        ),
        ("lease_until", r.lease_until.map(timestamp)),
        ("result_object", r.result_object.as_ref().map(string)),
        ("finalized_at", r.finalized_at.map(timestamp)),
        ("claim_token", s.claim_token.as_ref().map(string)),
        ("claimed_version", s.claimed_version.map(integer)),
    ])
}

fn chunk_fields(c: &ChunkRecord, now: Millis) -> Fields {
    fields([
        ("bucket", Some(string(&c.bucket))),
        ("name", Some(string(&c.name))),
        ("generation", Some(string(&c.generation))),
        ("content_hash", Some(string(&c.content_hash))),
        ("timestamp", Some(string(&c.timestamp))),
        ("environment", Some(string(&c.environment))),
        ("size", Some(integer(c.size))),
        ("event_count", Some(integer(c.event_count))),
        ("recorded_at", Some(timestamp(now))),
        ("expire_at", Some(timestamp(now.plus(RECORD_TTL)))),
    ])
}

fn chunk_from(guid: &SessionGuid, f: &Fields) -> ChunkRecord {
    let s = |k| get_str(f, k).unwrap_or_default().to_owned();
    ChunkRecord {
        guid: guid.clone(),
        bucket: s("bucket"),
        name: s("name"),
        generation: s("generation"),
        timestamp: s("timestamp"),
        environment: s("environment"),
        size: get_int(f, "size").unwrap_or(0) as u64,
        event_count: get_int(f, "event_count").unwrap_or(0) as u64,
        content_hash: s("content_hash"),
    }
}

/// A write of a whole document, with a precondition.
fn put(name: String, fields: Fields, condition: ConditionType) -> Write {
    Write {
        operation: Some(write::Operation::Update(Document {
            name,
            fields,
            ..Default::default()
        })),
        current_document: Some(Precondition {
            condition_type: Some(condition),
        }),
        ..Default::default()
    }
}

/// Only if the document is still as read (or still absent).
fn unchanged(before: Option<&SessionDoc>) -> ConditionType {
    match before.and_then(|b| b.update_time) {
        Some(t) => ConditionType::UpdateTime(t),
        None => ConditionType::Exists(false),
    }
}

fn field_filter(
    field: &str,
    op: structured_query::field_filter::Operator,
    value: Value,
) -> structured_query::Filter {
    structured_query::Filter {
        filter_type: Some(structured_query::filter::FilterType::FieldFilter(
            structured_query::FieldFilter {
                field: Some(structured_query::FieldReference {
                    field_path: field.to_owned(),
                }),
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

fn order(field: &str, direction: structured_query::Direction) -> structured_query::Order {
    structured_query::Order {
        field: Some(structured_query::FieldReference {
            field_path: field.to_owned(),
        }),
        direction: direction as i32,
    }
}

impl FirestoreIndex {
    /// An index in `config`'s database; nothing is contacted until the first operation.
    pub fn new(config: FirestoreConfig) -> Self {
        FirestoreIndex {
            config,
            db: OnceCell::new(),
        }
    }

    /// An index on the emulator at `host` (`127.0.0.1:8080`), whatever the environment says.
    pub fn on_emulator(host: &str, project: &str, collection: &str) -> Self {
        Self::new(FirestoreConfig {
            project: project.to_owned(),
            database: "(default)".to_owned(),
            collection: collection.to_owned(),
            emulator: Some(host.to_owned()),
        })
    }

    async fn db(&self) -> Result<&FirestoreDb> {
        self.db
            .get_or_try_init(|| async {
                let options = FirestoreDbOptions::new(self.config.project.clone())
                    .with_database_id(self.config.database.clone())
                    .with_request_timeout(RPC_TIMEOUT);
                let connect = async {
                    match &self.config.emulator {
                        Some(host) => {
                            let options = options.with_firebase_api_url(format!("http://{host}"));
                            let owner = Credentials::from(EmulatorOwner(EntityTag::new()));
                            FirestoreDb::with_options_auth(options, owner).await
                        }
                        None => FirestoreDb::with_options(options).await,
                    }
                };
                // Not reachable now may well be reachable on the platform's retry.
                match tokio::time::timeout(RPC_TIMEOUT, connect).await {
                    Ok(connected) => connected.map_err(|e| transient("connect", e)),
                    Err(_) => Err(transient(
                        "connect",
                        format!("no connection within {RPC_TIMEOUT:?}"),
                    )),
                }
            })
            .await
    }

    async fn client(&self) -> Result<(Client, String)> {
        let db = self.db().await?;
        Ok((db.client().get(), db.get_documents_path().clone()))
    }

    fn session_name(&self, root: &str, guid: &SessionGuid) -> String {
        format!("{root}/{}/{guid}", self.config.collection)
    }

    fn rejected_collection(&self) -> String {
        format!("{}{REJECTED_SUFFIX}", self.config.collection)
    }

    fn database(&self) -> String {
        format!(
            "projects/{}/databases/{}",
            self.config.project, self.config.database
        )
    }

    /// Runs one RPC, again after a short backoff when it failed transiently.
    async fn rpc<T, F, Fut>(&self, op: &'static str, call: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let (client, _) = self.client().await?;
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=RPC_ATTEMPTS {
            match tokio::time::timeout(RPC_TIMEOUT, call(client.clone())).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(status)) => {
                    let err = status_error(op, status);
                    if !err.is_transient() || attempt == RPC_ATTEMPTS {
                        return Err(err);
                    }
                }
                Err(_) if attempt == RPC_ATTEMPTS => {
                    return Err(transient(op, format!("no answer within {RPC_TIMEOUT:?}")))
                }
                Err(_) => {}
            }
            tokio::time::sleep(delay).await;
            delay *= 4;
        }
        unreachable!("the last attempt returns")
    }

    async fn get(&self, op: &'static str, name: String) -> Result<Option<Document>> {
        let req = GetDocumentRequest {
            name,
            ..Default::default()
        };
        self.rpc(op, |mut c| {
            let req = req.clone();
            async move {
                match c.get_document(req).await {
                    Ok(doc) => Ok(Some(doc.into_inner())),
                    Err(s) if s.code() == Code::NotFound => Ok(None),
                    Err(s) => Err(s),
                }
            }
        })
        .await
    }

    async fn read_session(&self, guid: &SessionGuid) -> Result<Option<SessionDoc>> {
        let (_, root) = self.client().await?;
        let doc = self.get("read", self.session_name(&root, guid)).await?;
        Ok(doc.as_ref().and_then(session_from))
    }

    /// Commits `writes` atomically. `Ok(false)` when a precondition failed.
    async fn commit(&self, op: &'static str, writes: Vec<Write>) -> Result<bool> {
        let req = CommitRequest {
            database: self.database(),
            writes,
            ..Default::default()
        };
        let outcome = self
            .rpc(op, |mut c| {
                let req = req.clone();
                async move {
                    match c.commit(req).await {
                        Ok(_) => Ok(true),
                        Err(s) if is_precondition(&s) => Ok(false),
                        Err(s) => Err(s),
                    }
                }
            })
            .await?;
        Ok(outcome)
    }

    async fn query(
        &self,
        op: &'static str,
        parent: String,
        query: StructuredQuery,
    ) -> Result<Vec<Document>> {
        let req = RunQueryRequest {
            parent,
            query_type: Some(run_query_request::QueryType::StructuredQuery(query)),
            ..Default::default()
        };
        self.rpc(op, |mut c| {
            let req = req.clone();
            async move {
                let stream = c.run_query(req).await?.into_inner();
                let responses: Vec<_> = stream.try_collect().await?;
                Ok(responses.into_iter().filter_map(|r| r.document).collect())
            }
        })
        .await
    }

    /// Read the session, decide, write conditionally on the version read; again on conflict.
    async fn update<T>(
        &self,
        op: &'static str,
        guid: &SessionGuid,
        decide: impl Fn(Option<&SessionState>) -> Decision<T>,
    ) -> Result<T> {
        let (_, root) = self.client().await?;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                super::contention_pause(attempt as u32 - 1).await;
            }
            let before = self.read_session(guid).await?;
            let (after, value) = match decide(before.as_ref().map(|b| &b.state)) {
                Decision::Done(value) => return Ok(value),
                Decision::Write(after, value) => (*after, value),
            };
            let write = put(
                self.session_name(&root, guid),
                session_fields(&after),
                unchanged(before.as_ref()),
            );
            if self.commit(op, vec![write]).await? {
                return Ok(value);
            }
        }
        Err(transient(op, "too much contention on one session; retry"))
    }

    fn idle_query(
        &self,
        status: &str,
        field: &str,
        before: Millis,
        limit: usize,
    ) -> StructuredQuery {
        use structured_query::field_filter::Operator;
        StructuredQuery {
            from: vec![structured_query::CollectionSelector {
                collection_id: self.config.collection.clone(),
                all_descendants: false,
            }],
            r#where: Some(and(vec![
                field_filter(COMPOSITE_INDEXES[0].0, Operator::Equal, string(status)),
                field_filter(field, Operator::LessThan, timestamp(before)),
            ])),
            order_by: vec![order(field, structured_query::Direction::Ascending)],
            limit: Some(limit.min(i32::MAX as usize) as i32),
            ..Default::default()
        }
    }

    fn collection_query(
        &self,
        collection: String,
        newest_first_by: &str,
        limit: usize,
    ) -> StructuredQuery {
        StructuredQuery {
            from: vec![structured_query::CollectionSelector {
                collection_id: collection,
                all_descendants: false,
            }],
            order_by: vec![order(
                newest_first_by,
                structured_query::Direction::Descending,
            )],
            limit: Some(limit.min(i32::MAX as usize) as i32),
            ..Default::default()
        }
    }
}

#[async_trait]
impl SessionIndex for FirestoreIndex {
    async fn record_chunk(&self, chunk: &ChunkRecord, now: Millis) -> Result<Recorded> {
        let (_, root) = self.client().await?;
        let session = self.session_name(&root, &chunk.guid);
        let chunk_name = format!(
            "{session}/{CHUNKS_COLLECTION}/{}",
            object_hash(&chunk.bucket, &chunk.name, chunk.identity())
        );
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                super::contention_pause(attempt as u32 - 1).await;
            }
            let before = self.read_session(&chunk.guid).await?;
            let (after, reopened) =
                protocol::with_chunk(before.as_ref().map(|b| &b.state), chunk, now);
            let writes = vec![
                put(
                    chunk_name.clone(),
                    chunk_fields(chunk, now),
                    ConditionType::Exists(false),
                ),
                put(
                    session.clone(),
                    session_fields(&after),
                    unchanged(before.as_ref()),
                ),
            ];
            if self.commit("record_chunk", writes).await? {
                return Ok(Recorded::New { reopened });
            }
            // Either the chunk is known already, or the session moved under us.
            if self
                .get("record_chunk", chunk_name.clone())
                .await?
                .is_some()
            {
                return Ok(Recorded::AlreadyKnown);
            }
        }
        Err(transient(
            "record_chunk",
            "too much contention on one session; retry",
        ))
    }

    async fn record_rejected(&self, r: &RejectRecord, now: Millis) -> Result<bool> {
        let (_, root) = self.client().await?;
        let name = format!(
            "{root}/{}/{}",
            self.rejected_collection(),
            object_hash(&r.bucket, &r.name, &r.generation)
        );
        let f = fields([
            ("bucket", Some(string(&r.bucket))),
            ("name", Some(string(&r.name))),
            ("generation", Some(string(&r.generation))),
            ("kind", Some(string(&r.kind))),
            ("reason", Some(string(&r.reason))),
            ("recorded_at", Some(timestamp(now))),
            ("expire_at", Some(timestamp(now.plus(RECORD_TTL)))),
        ]);
        self.commit(
            "record_rejected",
            vec![put(name, f, ConditionType::Exists(false))],
        )
        .await
    }

    async fn idle_sessions(
        &self,
        idle_before: Millis,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<SessionGuid>> {
        let (_, root) = self.client().await?;
        let guid = |d: &Document| {
            d.name
                .rsplit('/')
                .next()
                .and_then(|id| SessionGuid::parse(id).ok())
        };
        let mut out: Vec<SessionGuid> = self
            .query(
                "idle_sessions",
                root.clone(),
                self.idle_query("open", COMPOSITE_INDEXES[0].1, idle_before, limit),
            )
            .await?
            .iter()
            .filter_map(guid)
            .collect();
        if out.len() < limit {
            // Finalizing sessions whose lease ran out: their finalizer died.
            let expired = self
                .query(
                    "idle_sessions",
                    root,
                    self.idle_query("finalizing", COMPOSITE_INDEXES[1].1, now, limit - out.len()),
                )
                .await?;
            out.extend(expired.iter().filter_map(guid));
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
        let (_, root) = self.client().await?;
        let query = StructuredQuery {
            from: vec![structured_query::CollectionSelector {
                collection_id: CHUNKS_COLLECTION.into(),
                all_descendants: false,
            }],
            ..Default::default()
        };
        let docs = self
            .query("chunks", self.session_name(&root, guid), query)
            .await?;
        Ok(docs.iter().map(|d| chunk_from(guid, &d.fields)).collect())
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
        let (_, root) = self.client().await?;
        let docs = self
            .query(
                "sessions",
                root,
                self.collection_query(self.config.collection.clone(), "last_chunk_at", limit),
            )
            .await?;
        Ok(docs
            .iter()
            .filter_map(session_from)
            .map(|s| s.state.record)
            .collect())
    }

    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>> {
        let (_, root) = self.client().await?;
        let docs = self
            .query(
                "rejected",
                root,
                self.collection_query(self.rejected_collection(), "recorded_at", limit),
            )
            .await?;
        Ok(docs
            .iter()
            .map(|d| {
                let s = |k| get_str(&d.fields, k).unwrap_or_default().to_owned();
                RejectRecord {
                    bucket: s("bucket"),
                    name: s("name"),
                    generation: s("generation"),
                    kind: s("kind"),
                    reason: s("reason"),
                }
            })
            .collect())
    }
}
