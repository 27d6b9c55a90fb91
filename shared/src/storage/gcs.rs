//! Google Cloud Storage as a bucket, over its JSON API with `gcloud-storage`.
//!
//! The JSON API is what the fake-gcs-server emulator serves (listing included), which is why
//! this client and not a gRPC one. Configuration: `STORAGE_EMULATOR_HOST` points at an
//! emulator (anonymous access); otherwise Application Default Credentials, which on Cloud Run
//! are the metadata server's. Generations are GCS object generations; create-only writes are
//! `ifGenerationMatch=0` and generation-matched ones `ifGenerationMatch=<g>`, enforced by GCS.
//! Reads pin the generation they stat'ed, so the size check and the bytes agree. Streamed
//! writes become a resumable upload once they pass one part (8 MiB, a multiple of the 256 KiB
//! GCS requires), and a single multipart upload below that (the writer in `multipart.rs`).
//! GCS applies a resumable upload's precondition when it completes; fake-gcs-server ignores
//! it there (it honours it on multipart uploads, which the conformance suite checks).
//! rrstitch writes its results without one: the claim protocol, not the bucket, decides
//! which finalizer writes.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::upload::{UploadObjectRequest, UploadType};
use gcloud_storage::http::objects::Object as GcsObject;
use gcloud_storage::http::resumable_upload_client::{
    ChunkSize, ResumableUploadClient, UploadStatus,
};
use gcloud_storage::http::Error as GcsError;

use super::multipart::{Multipart, MultipartWriter};
use super::{
    Encoding, Object, ObjectMeta, ObjectStore, ObjectWriter, Page, Precondition, Result,
    StorageError, StorageUrl,
};

/// Attempts at one request that failed transiently, with backoff between.
const ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub struct GcsStore {
    url: StorageUrl,
    bucket: String,
    client: Client,
}

impl std::fmt::Debug for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStore").field("url", &self.url).finish()
    }
}

fn http_client() -> reqwest_middleware::ClientWithMiddleware {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .build()
        .expect("a TLS backend is compiled in");
    reqwest_middleware::ClientBuilder::new(client).build()
}

impl GcsStore {
    /// Opens `gs://bucket`: on the emulator `STORAGE_EMULATOR_HOST` names, else with
    /// Application Default Credentials.
    pub async fn open(url: StorageUrl) -> Result<Self> {
        if let Ok(host) = std::env::var("STORAGE_EMULATOR_HOST") {
            return Self::on_emulator(url, &host);
        }
        let config = ClientConfig {
            http: Some(http_client()),
            ..Default::default()
        }
        .with_auth()
        .await
        .map_err(|e| StorageError::Permanent {
            op: "open",
            name: url.to_string(),
            source: format!("no Google Cloud credentials: {e}").into(),
        })?;
        Self::with_config(url, config)
    }

    /// Opens a bucket on an emulator at `endpoint` (`http://127.0.0.1:4443` or
    /// `127.0.0.1:4443`), anonymously.
    pub fn on_emulator(url: StorageUrl, endpoint: &str) -> Result<Self> {
        let endpoint = if endpoint.contains("://") {
            endpoint.trim_end_matches('/').to_owned()
        } else {
            format!("http://{endpoint}")
        };
        let config = ClientConfig {
            http: Some(http_client()),
            storage_endpoint: endpoint,
            ..Default::default()
        }
        .anonymous();
        Self::with_config(url, config)
    }

    fn with_config(url: StorageUrl, config: ClientConfig) -> Result<Self> {
        let StorageUrl::Gcs { bucket } = &url else {
            return Err(StorageError::Permanent {
                op: "open",
                name: url.to_string(),
                source: "not a gs:// URL".into(),
            });
        };
        Ok(GcsStore {
            bucket: bucket.clone(),
            client: Client::new(config),
            url,
        })
    }

    fn upload_request(
        &self,
        precondition: &Precondition,
        name: &str,
    ) -> Result<UploadObjectRequest> {
        Ok(UploadObjectRequest {
            bucket: self.bucket.clone(),
            if_generation_match: generation_condition(precondition, name)?,
            ..Default::default()
        })
    }
}

fn json_object(name: &str, encoding: Encoding) -> UploadType {
    UploadType::Multipart(Box::new(GcsObject {
        name: name.to_owned(),
        content_type: Some("application/json".to_owned()),
        content_encoding: encoding.header().map(str::to_owned),
        ..Default::default()
    }))
}

fn generation_condition(precondition: &Precondition, name: &str) -> Result<Option<i64>> {
    match precondition {
        Precondition::None => Ok(None),
        Precondition::DoesNotExist => Ok(Some(0)),
        Precondition::GenerationMatches(g) => {
            g.parse()
                .map(Some)
                .map_err(|_| StorageError::PreconditionFailed {
                    name: name.to_owned(),
                })
        }
    }
}

fn meta(o: &GcsObject) -> ObjectMeta {
    ObjectMeta {
        name: o.name.clone(),
        size: o.size.max(0) as u64,
        generation: Some(o.generation.to_string()),
    }
}

/// The HTTP status a client failure carries, if it got that far.
fn status(err: &GcsError) -> Option<u16> {
    match err {
        GcsError::Response(r) => Some(r.code),
        GcsError::HttpClient(e) | GcsError::RawResponse(e, _) => e.status().map(|s| s.as_u16()),
        _ => None,
    }
}

/// Maps a client failure to a storage error by HTTP status, else by kind.
fn classify(op: &'static str, name: &str, err: GcsError) -> StorageError {
    let name = name.to_owned();
    match status(&err) {
        Some(404) => StorageError::NotFound { name },
        Some(412) => StorageError::PreconditionFailed { name },
        Some(408 | 429 | 500..=599) | None => StorageError::Transient {
            op,
            name,
            source: err.into(),
        },
        Some(_) => StorageError::Permanent {
            op,
            name,
            source: err.into(),
        },
    }
}

impl GcsStore {
    /// A 404 where only the bucket can be missing (a listing, an upload) says so.
    fn bucket_missing(&self, err: StorageError) -> StorageError {
        match err {
            StorageError::NotFound { .. } => StorageError::NoSuchBucket {
                bucket: self.url.to_string(),
            },
            other => other,
        }
    }
}

/// Runs one request, again after a short backoff when it failed transiently.
async fn retry<T, F, Fut>(op: &'static str, name: &str, call: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = std::result::Result<T, GcsError>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let err = classify(op, name, e);
                if !err.is_transient() || attempt == ATTEMPTS {
                    return Err(err);
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 4;
    }
    unreachable!("the last attempt returns")
}

#[async_trait]
impl ObjectStore for GcsStore {
    fn url(&self) -> &StorageUrl {
        &self.url
    }

    /// `startOffset` is inclusive, so the bound itself is skipped if it comes back; page
    /// tokens carry on within the call while the server answers less than asked for.
    async fn list_page(&self, prefix: &str, start_after: Option<&str>, max: usize) -> Result<Page> {
        let max = max.max(1);
        let mut out = Vec::new();
        let mut page_token = None;
        loop {
            let want = max + 1 - out.len();
            let req = ListObjectsRequest {
                bucket: self.bucket.clone(),
                prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
                start_offset: start_after.map(str::to_owned),
                page_token: page_token.clone(),
                // One more, for a bound that comes back; the server caps it at 1,000.
                max_results: Some(want.saturating_add(1).min(1_000) as i32),
                ..Default::default()
            };
            let page = retry("list", prefix, || self.client.list_objects(&req))
                .await
                .map_err(|e| self.bucket_missing(e))?;
            out.extend(
                page.items
                    .iter()
                    .flatten()
                    .map(meta)
                    .filter(|m| start_after.is_none_or(|after| m.name.as_str() > after)),
            );
            match page.next_page_token {
                Some(t) if !t.is_empty() && out.len() <= max => page_token = Some(t),
                _ => break,
            }
        }
        Ok(Page::from_overfull(out, max))
    }

    async fn stat(&self, name: &str) -> Result<ObjectMeta> {
        let req = GetObjectRequest {
            bucket: self.bucket.clone(),
            object: name.to_owned(),
            ..Default::default()
        };
        let o = retry("stat", name, || self.client.get_object(&req)).await?;
        Ok(meta(&o))
    }

    async fn get(&self, name: &str, limit: u64) -> Result<Object> {
        let m = self.stat(name).await?;
        if m.size > limit {
            return Err(StorageError::TooLarge {
                name: name.to_owned(),
                size: m.size,
                limit,
            });
        }
        let req = GetObjectRequest {
            bucket: self.bucket.clone(),
            object: name.to_owned(),
            generation: m.generation.as_deref().and_then(|g| g.parse().ok()),
            ..Default::default()
        };
        let whole = Range::default();
        let body = retry("get", name, || self.client.download_object(&req, &whole)).await?;
        if body.len() as u64 > limit {
            return Err(StorageError::TooLarge {
                name: name.to_owned(),
                size: body.len() as u64,
                limit,
            });
        }
        Ok(Object {
            meta: ObjectMeta {
                size: body.len() as u64,
                ..m
            },
            body: Bytes::from(body),
        })
    }

    async fn get_head(&self, name: &str, len: u64) -> Result<Bytes> {
        if len == 0 {
            return self.stat(name).await.map(|_| Bytes::new());
        }
        let req = GetObjectRequest {
            bucket: self.bucket.clone(),
            object: name.to_owned(),
            ..Default::default()
        };
        let first = Range(Some(0), Some(len - 1));
        let mut body = retry("get", name, || async {
            match self.client.download_object(&req, &first).await {
                // GCS answers a range over an empty object with 416: there is no first byte.
                Err(e) if status(&e) == Some(416) => Ok(Vec::new()),
                other => other,
            }
        })
        .await?;
        // A server that ignores Range sends the whole object; keep the promise anyway.
        body.truncate(len as usize);
        Ok(Bytes::from(body))
    }

    async fn put_encoded(
        &self,
        name: &str,
        body: Bytes,
        precondition: Precondition,
        encoding: Encoding,
    ) -> Result<ObjectMeta> {
        let req = self.upload_request(&precondition, name)?;
        let kind = json_object(name, encoding);
        let o = retry("put", name, || {
            self.client.upload_object(&req, body.clone(), &kind)
        })
        .await
        .map_err(|e| self.bucket_missing(e))?;
        Ok(meta(&o))
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let req = DeleteObjectRequest {
            bucket: self.bucket.clone(),
            object: name.to_owned(),
            ..Default::default()
        };
        match retry("delete", name, || self.client.delete_object(&req)).await {
            Ok(()) => Ok(true),
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.bucket_missing(e)),
        }
    }

    async fn check_bucket(&self) -> Result<()> {
        let req = ListObjectsRequest {
            bucket: self.bucket.clone(),
            max_results: Some(1),
            ..Default::default()
        };
        retry("list", "", || self.client.list_objects(&req))
            .await
            .map(|_| ())
            .map_err(|e| self.bucket_missing(e))
    }

    async fn writer(
        &self,
        name: &str,
        precondition: Precondition,
    ) -> Result<Box<dyn ObjectWriter>> {
        Ok(MultipartWriter::boxed(self, name, precondition))
    }
}

/// A resumable upload under way.
pub(crate) struct Resumable {
    client: ResumableUploadClient,
    /// Bytes it has taken so far.
    sent: u64,
}

impl Resumable {
    /// Sends one chunk; `total` is set on the last one.
    async fn send(&mut self, name: &str, data: Bytes, total: Option<u64>) -> Result<UploadStatus> {
        let first = self.sent;
        let len = data.len() as u64;
        // Never empty with the shared writer's boundary rule; an empty one would name byte
        // `first` rather than underflow.
        let range = ChunkSize::new(first, first + len.max(1) - 1, total);
        let status = self
            .client
            .upload_multiple_chunk(data, &range)
            .await
            .map_err(|e| classify("put", name, e))?;
        self.sent += len;
        Ok(status)
    }
}

#[async_trait]
impl Multipart for GcsStore {
    type Upload = Resumable;

    async fn start(&self, name: &str, precondition: &Precondition) -> Result<Resumable> {
        let req = self.upload_request(precondition, name)?;
        let kind = json_object(name, Encoding::Identity);
        let client = retry("put", name, || {
            self.client.prepare_resumable_upload(&req, &kind)
        })
        .await
        .map_err(|e| self.bucket_missing(e))?;
        Ok(Resumable { client, sent: 0 })
    }

    async fn put_part(&self, upload: &mut Resumable, name: &str, part: Bytes) -> Result<()> {
        upload.send(name, part, None).await.map(|_| ())
    }

    async fn complete(
        &self,
        mut upload: Resumable,
        name: &str,
        last: Bytes,
        _precondition: &Precondition,
    ) -> Result<ObjectMeta> {
        // GCS checks the precondition given when the upload started.
        let total = upload.sent + last.len() as u64;
        match upload.send(name, last, Some(total)).await? {
            UploadStatus::Ok(o) => Ok(meta(&o)),
            other => Err(StorageError::Transient {
                op: "put",
                name: name.to_owned(),
                source: format!("resumable upload did not complete: {other:?}").into(),
            }),
        }
    }

    async fn abort(&self, upload: Resumable, _name: &str) {
        let _ = upload.client.cancel().await;
    }
}
