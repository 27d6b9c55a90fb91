//! Amazon S3 (and S3-compatible emulators) as a bucket, with `aws-sdk-s3`.
//!
//! Configuration is the SDK's own: credentials and region from the usual chain,
//! `AWS_ENDPOINT_URL` for an emulator (which also switches to path-style addressing, since
//! emulators do not serve virtual-host buckets). Generations are ETags; create-only writes use
//! `If-None-Match: *` and generation-matched ones `If-Match`, both enforced by S3 itself.
//! Streamed writes become a multipart upload once they pass one part (8 MiB; S3's minimum is
//! 5 MiB), and a single `PutObject` below that (`multipart.rs`).

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;

use crate::aws::{failure, Failure};

use super::multipart::{Multipart, MultipartWriter};
use super::{
    Encoding, Object, ObjectMeta, ObjectStore, ObjectWriter, Page, Precondition, Result,
    StorageError, StorageUrl,
};

#[derive(Debug, Clone)]
pub struct S3Store {
    url: StorageUrl,
    bucket: String,
    client: Client,
}

impl S3Store {
    /// Opens `s3://bucket` with the SDK's default configuration chain.
    pub async fn open(url: StorageUrl) -> Result<Self> {
        let shared = crate::aws::sdk_config().await;
        Self::with_config(url, &shared)
    }

    /// Opens a bucket on an emulator at `endpoint`, with test credentials.
    pub async fn on_emulator(url: StorageUrl, endpoint: &str) -> Result<Self> {
        let shared = crate::aws::emulator_config(endpoint).await;
        Self::with_config(url, &shared)
    }

    fn with_config(url: StorageUrl, shared: &aws_config::SdkConfig) -> Result<Self> {
        let StorageUrl::S3 { bucket } = &url else {
            return Err(StorageError::Permanent {
                op: "open",
                name: url.to_string(),
                source: "not an s3:// URL".into(),
            });
        };
        let config = aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(shared.endpoint_url().is_some())
            .build();
        Ok(S3Store {
            bucket: bucket.clone(),
            client: Client::from_conf(config),
            url,
        })
    }
}

/// Maps an SDK failure to a storage error.
fn classify<E>(
    op: &'static str,
    bucket: &str,
    name: &str,
    err: SdkError<E, HttpResponse>,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let name = name.to_owned();
    match failure(&err) {
        Failure::NoSuchBucket => StorageError::NoSuchBucket {
            bucket: format!("s3://{bucket}"),
        },
        Failure::NotFound => StorageError::NotFound { name },
        Failure::Precondition => StorageError::PreconditionFailed { name },
        Failure::Transient => StorageError::Transient {
            op,
            name,
            source: err.into(),
        },
        Failure::Permanent => StorageError::Permanent {
            op,
            name,
            source: err.into(),
        },
    }
}

/// The conditional headers a precondition becomes, `(If-None-Match, If-Match)`: create-only
/// is `If-None-Match: *`, generation-matched is `If-Match: <etag>`.
fn conditions(precondition: &Precondition) -> (Option<String>, Option<String>) {
    match precondition {
        Precondition::None => (None, None),
        Precondition::DoesNotExist => (Some("*".to_owned()), None),
        Precondition::GenerationMatches(etag) => (None, Some(etag.clone())),
    }
}

/// Reads a response body to its end; a connection lost halfway is worth retrying.
async fn read_body(name: &str, body: ByteStream) -> Result<Bytes> {
    body.collect()
        .await
        .map(|b| b.into_bytes())
        .map_err(|e| StorageError::Transient {
            op: "get",
            name: name.to_owned(),
            source: e.into(),
        })
}

fn meta(name: &str, size: Option<i64>, etag: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: name.to_owned(),
        size: size.unwrap_or(0).max(0) as u64,
        generation: etag.map(str::to_owned),
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn url(&self) -> &StorageUrl {
        &self.url
    }

    /// `StartAfter` is exclusive already; continuation tokens carry on within the call
    /// while the server answers less than asked for (it caps a response at 1,000 keys).
    async fn list_page(&self, prefix: &str, start_after: Option<&str>, max: usize) -> Result<Page> {
        let max = max.max(1);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let want = max + 1 - out.len();
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(start_after.map(str::to_owned))
                .set_continuation_token(token.clone())
                .max_keys(want.min(1_000) as i32)
                .send()
                .await
                .map_err(|e| classify("list", &self.bucket, prefix, e))?;
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.push(meta(key, o.size(), o.e_tag()));
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) && out.len() <= max => {
                    token = Some(t.to_owned())
                }
                _ => break,
            }
        }
        Ok(Page::from_overfull(out, max))
    }

    async fn stat(&self, name: &str) -> Result<ObjectMeta> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(name)
            .send()
            .await
            .map_err(|e| classify("stat", &self.bucket, name, e))?;
        Ok(meta(name, head.content_length(), head.e_tag()))
    }

    async fn get(&self, name: &str, limit: u64) -> Result<Object> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(name)
            .send()
            .await
            .map_err(|e| classify("get", &self.bucket, name, e))?;
        let size = got.content_length().unwrap_or(0).max(0) as u64;
        if size > limit {
            // Dropping the body closes the connection before the bytes arrive.
            return Err(StorageError::TooLarge {
                name: name.to_owned(),
                size,
                limit,
            });
        }
        let m = meta(name, got.content_length(), got.e_tag());
        let body = read_body(name, got.body).await?;
        if body.len() as u64 > limit {
            return Err(StorageError::TooLarge {
                name: name.to_owned(),
                size: body.len() as u64,
                limit,
            });
        }
        Ok(Object { meta: m, body })
    }

    async fn get_head(&self, name: &str, len: u64) -> Result<Bytes> {
        if len == 0 {
            return self.stat(name).await.map(|_| Bytes::new());
        }
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(name)
            .range(format!("bytes=0-{}", len - 1))
            .send()
            .await;
        let got = match got {
            Ok(got) => got,
            // S3 answers a range over an empty object with 416: there is no first byte.
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 416 => {
                return Ok(Bytes::new())
            }
            Err(e) => return Err(classify("get", &self.bucket, name, e)),
        };
        let mut body = read_body(name, got.body).await?;
        // A server that ignores Range sends the whole object; keep the promise anyway.
        body.truncate(len as usize);
        Ok(body)
    }

    async fn check_bucket(&self) -> Result<()> {
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .max_keys(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("list", &self.bucket, "", e))
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        // S3 answers 204 whether or not the key existed: a stat says which it was.
        let existed = match self.stat(name).await {
            Ok(_) => true,
            Err(StorageError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(name)
            .send()
            .await
            .map_err(|e| classify("delete", &self.bucket, name, e))?;
        Ok(existed)
    }

    async fn put_encoded(
        &self,
        name: &str,
        body: Bytes,
        precondition: Precondition,
        encoding: Encoding,
    ) -> Result<ObjectMeta> {
        let size = body.len() as i64;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(name)
            .content_type("application/json")
            .set_content_encoding(encoding.header().map(str::to_owned))
            .body(ByteStream::from(body));
        let (if_none_match, if_match) = conditions(&precondition);
        let out = req
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .send()
            .await
            .map_err(|e| classify("put", &self.bucket, name, e))?;
        Ok(meta(name, Some(size), out.e_tag()))
    }

    async fn writer(
        &self,
        name: &str,
        precondition: Precondition,
    ) -> Result<Box<dyn ObjectWriter>> {
        Ok(MultipartWriter::boxed(self, name, precondition))
    }
}

/// A multipart upload under way.
pub(crate) struct Upload {
    id: String,
    parts: Vec<CompletedPart>,
    /// Bytes uploaded so far.
    size: u64,
}

#[async_trait]
impl Multipart for S3Store {
    type Upload = Upload;

    async fn start(&self, name: &str, _precondition: &Precondition) -> Result<Upload> {
        // S3 checks the precondition at completion.
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(name)
            .content_type("application/json")
            .send()
            .await
            .map_err(|e| classify("put", &self.bucket, name, e))?;
        Ok(Upload {
            id: created.upload_id().unwrap_or_default().to_owned(),
            parts: Vec::new(),
            size: 0,
        })
    }

    async fn put_part(&self, upload: &mut Upload, name: &str, part: Bytes) -> Result<()> {
        let number = upload.parts.len() as i32 + 1;
        let size = part.len() as u64;
        let sent = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(name)
            .upload_id(&upload.id)
            .part_number(number)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|e| classify("put", &self.bucket, name, e))?;
        upload.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(sent.e_tag().map(str::to_owned))
                .build(),
        );
        upload.size += size;
        Ok(())
    }

    async fn complete(
        &self,
        mut upload: Upload,
        name: &str,
        last: Bytes,
        precondition: &Precondition,
    ) -> Result<ObjectMeta> {
        self.put_part(&mut upload, name, last).await?;
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(std::mem::take(&mut upload.parts)))
            .build();
        let req = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(name)
            .upload_id(&upload.id)
            .multipart_upload(parts);
        let (if_none_match, if_match) = conditions(precondition);
        let done = req
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .send()
            .await;
        match done {
            Ok(done) => Ok(meta(name, Some(upload.size as i64), done.e_tag())),
            Err(e) => {
                Multipart::abort(self, upload, name).await;
                Err(classify("put", &self.bucket, name, e))
            }
        }
    }

    async fn abort(&self, upload: Upload, name: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(name)
            .upload_id(&upload.id)
            .send()
            .await;
    }
}
