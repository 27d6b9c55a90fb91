//! The Firestore connection: one authenticated gRPC channel, made on first use, and the
//! four RPCs the store needs (get, commit, run a query, count a query's matches), each with a deadline and a few
//! retries of transient failures.

use std::time::Duration;

use firestore::{FirestoreDb, FirestoreDbOptions};
use futures::TryStreamExt;
use gcloud_sdk::google::firestore::v1::{
    firestore_client::FirestoreClient, run_aggregation_query_request, run_query_request,
    structured_aggregation_query, value::ValueType, CommitRequest, Document, GetDocumentRequest,
    RunAggregationQueryRequest, RunQueryRequest, StructuredAggregationQuery, StructuredQuery,
    Write,
};
use gcloud_sdk::google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use gcloud_sdk::google_cloud_auth::errors::CredentialsError;
use gcloud_sdk::tonic::{self, Code};
use gcloud_sdk::GoogleAuthMiddleware;
use tokio::sync::OnceCell;

use super::{FirestoreConfig, BOOKMARK_DOC_PREFIX, META_SUFFIX, REJECTED_SUFFIX, SHARD_MARK_DOC};
use crate::engine::SessionGuid;
use crate::index::{IndexError, Result, RECORD_TTL};

/// Attempts at one RPC that failed transiently (unavailable, deadline), with backoff between.
const RPC_ATTEMPTS: u32 = 3;
/// A deadline on every RPC, so a hung backend becomes a transient error, not a hung function.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

type Client = FirestoreClient<GoogleAuthMiddleware>;

/// The Firestore session store; [`super::FirestoreIndex`] is the index over it.
#[derive(Debug)]
pub struct FirestoreStore {
    pub(super) config: FirestoreConfig,
    db: OnceCell<FirestoreDb>,
    /// How long documents live after their last activity (`expire_at`), [`RECORD_TTL`]
    /// unless [`FirestoreStore::with_record_ttl`] says otherwise.
    pub(super) record_ttl: Duration,
}

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

pub(super) fn transient(
    op: &'static str,
    source: impl Into<crate::storage::BoxError>,
) -> IndexError {
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

impl FirestoreStore {
    /// A store in `config`'s database; nothing is contacted until the first operation.
    pub fn new(config: FirestoreConfig) -> Self {
        FirestoreStore {
            config,
            db: OnceCell::new(),
            record_ttl: RECORD_TTL,
        }
    }

    /// Documents expire `ttl` after their last activity (Terraform sets
    /// `RRSTITCH_INDEX_TTL_DAYS` from the chunk retention, so an index record outlives the
    /// chunk it describes).
    pub fn with_record_ttl(mut self, ttl: Duration) -> Self {
        self.record_ttl = ttl;
        self
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

    /// `projects/…/databases/…/documents`: the parent of every collection.
    pub(super) async fn root(&self) -> Result<String> {
        Ok(self.db().await?.get_documents_path().clone())
    }

    pub(super) fn session_name(&self, root: &str, guid: &SessionGuid) -> String {
        format!("{root}/{}/{guid}", self.config.collection)
    }

    pub(super) fn rejected_collection(&self) -> String {
        format!("{}{REJECTED_SUFFIX}", self.config.collection)
    }

    /// The document holding the shard high-water mark: in a collection of its own, so it is
    /// in no session query.
    pub(super) fn shard_mark_name(&self, root: &str) -> String {
        format!(
            "{root}/{}{META_SUFFIX}/{SHARD_MARK_DOC}",
            self.config.collection
        )
    }

    /// The document holding the bookmark `name` (beside the shard mark).
    pub(super) fn bookmark_name(&self, root: &str, name: &str) -> String {
        format!(
            "{root}/{}{META_SUFFIX}/{BOOKMARK_DOC_PREFIX}{name}",
            self.config.collection
        )
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
        let client = self.db().await?.client().get();
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=RPC_ATTEMPTS {
            match tokio::time::timeout(RPC_TIMEOUT, call(client.clone())).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(status)) => {
                    let err = status_error(op, status);
                    if !err.is_transient() || attempt == RPC_ATTEMPTS {
                        return Err(err);
                    }
                    tracing::debug!(op, attempt, error = %err, "Firestore RPC failed; retrying");
                }
                Err(_) if attempt == RPC_ATTEMPTS => {
                    return Err(transient(op, format!("no answer within {RPC_TIMEOUT:?}")))
                }
                Err(_) => tracing::debug!(op, attempt, "Firestore RPC timed out; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay *= 4;
        }
        unreachable!("the last attempt returns")
    }

    /// The document at `name`, if there is one.
    pub(super) async fn get(&self, op: &'static str, name: String) -> Result<Option<Document>> {
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

    /// Commits `writes` atomically. `Ok(false)` when a precondition failed.
    pub(super) async fn commit(&self, op: &'static str, writes: Vec<Write>) -> Result<bool> {
        let req = CommitRequest {
            database: self.database(),
            writes,
            ..Default::default()
        };
        self.rpc(op, |mut c| {
            let req = req.clone();
            async move {
                match c.commit(req).await {
                    Ok(_) => Ok(true),
                    Err(s) if is_precondition(&s) => Ok(false),
                    Err(s) => Err(s),
                }
            }
        })
        .await
    }

    /// The documents `query` finds under `parent`.
    pub(super) async fn query(
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

    /// How many documents `query` matches under `parent`: one aggregation RPC, billed by
    /// index entries read (one read per 1,000), with no document sent back.
    pub(super) async fn count(
        &self,
        op: &'static str,
        parent: String,
        query: StructuredQuery,
    ) -> Result<u64> {
        use structured_aggregation_query::{aggregation, Aggregation};
        const ALIAS: &str = "n";
        let req = RunAggregationQueryRequest {
            parent,
            query_type: Some(
                run_aggregation_query_request::QueryType::StructuredAggregationQuery(
                    StructuredAggregationQuery {
                        aggregations: vec![Aggregation {
                            alias: ALIAS.to_owned(),
                            operator: Some(aggregation::Operator::Count(aggregation::Count {
                                up_to: None,
                            })),
                        }],
                        query_type: Some(structured_aggregation_query::QueryType::StructuredQuery(
                            query,
                        )),
                    },
                ),
            ),
            ..Default::default()
        };
        let responses = self
            .rpc(op, |mut c| {
                let req = req.clone();
                async move {
                    let stream = c.run_aggregation_query(req).await?.into_inner();
                    stream.try_collect::<Vec<_>>().await
                }
            })
            .await?;
        let value = responses
            .into_iter()
            .filter_map(|r| r.result)
            .find_map(|r| r.aggregate_fields.get(ALIAS)?.value_type.clone());
        match value {
            Some(ValueType::IntegerValue(n)) => Ok(n.max(0) as u64),
            other => Err(IndexError::Permanent {
                op,
                source: format!("a count aggregation answered {other:?}").into(),
            }),
        }
    }
}
