//! The finalize queue as a Pub/Sub topic, published to over the REST API
//! (`POST https://pubsub.googleapis.com/v1/{topic}:publish`).
//!
//! REST rather than a gRPC client: one call is all the dispatcher makes, reqwest is already
//! here for GCS, and the Pub/Sub emulator serves the same REST surface. `PUBSUB_EMULATOR_HOST`
//! points at an emulator (no credentials); otherwise Application Default Credentials (the
//! metadata server's on Cloud Run), through the same `google-cloud-auth` the Firestore index
//! authenticates with, scoped to Pub/Sub. The token is cached and refreshed by that library.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use gcloud_sdk::google_cloud_auth::credentials::{AccessTokenCredentials, Builder};
use serde::Deserialize;

use super::{FinalizeQueue, Job, QueueError, Refused};

/// Pub/Sub takes at most 1,000 messages (and 10 MB) per publish request; a finalize message
/// is ~60 bytes.
const BATCH: usize = 1000;
/// Attempts at one publish that failed transiently, with backoff between: a dispatcher that
/// gives up leaves the sessions for the next tick, so a short blip should not cost a tick.
const ATTEMPTS: u32 = 3;
const SCOPE: &str = "https://www.googleapis.com/auth/pubsub";

pub struct PubSubQueue {
    topic: String,
    /// `https://pubsub.googleapis.com` or the emulator's `http://host:port`.
    endpoint: String,
    /// `None` on an emulator, which takes no credentials.
    credentials: Option<AccessTokenCredentials>,
    http: reqwest::Client,
}

impl std::fmt::Debug for PubSubQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubQueue")
            .field("topic", &self.topic)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a TLS backend is compiled in")
}

impl PubSubQueue {
    /// The topic `projects/P/topics/T`: on the emulator `PUBSUB_EMULATOR_HOST` names, else on
    /// Google Cloud with Application Default Credentials.
    pub fn from_env(topic: &str) -> Result<Self, QueueError> {
        if let Some(host) = std::env::var("PUBSUB_EMULATOR_HOST")
            .ok()
            .filter(|h| !h.is_empty())
        {
            return Ok(Self::on_emulator(topic, &host));
        }
        let credentials = Builder::default()
            .with_scopes([SCOPE])
            .build_access_token_credentials()
            .map_err(|e| QueueError::Permanent {
                op: "open",
                source: format!("no Google Cloud credentials: {e}").into(),
            })?;
        Ok(PubSubQueue {
            topic: topic.to_owned(),
            endpoint: "https://pubsub.googleapis.com".into(),
            credentials: Some(credentials),
            http: http_client(),
        })
    }

    /// The topic on an emulator at `host` (`127.0.0.1:8085` or `http://127.0.0.1:8085`).
    pub fn on_emulator(topic: &str, host: &str) -> Self {
        let endpoint = if host.contains("://") {
            host.trim_end_matches('/').to_owned()
        } else {
            format!("http://{host}")
        };
        PubSubQueue {
            topic: topic.to_owned(),
            endpoint,
            credentials: None,
            http: http_client(),
        }
    }

    async fn publish_once(&self, body: &[u8], count: usize) -> Result<(), QueueError> {
        let url = format!("{}/v1/{}:publish", self.endpoint, self.topic);
        let mut request = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(credentials) = &self.credentials {
            let token = credentials
                .access_token()
                .await
                .map_err(|e| QueueError::Transient {
                    op: "token",
                    source: e.into(),
                })?;
            request = request.bearer_auth(token.token);
        }
        let response = request.send().await.map_err(|e| QueueError::Transient {
            op: "publish",
            source: e.into(),
        })?;
        let status = response.status().as_u16();
        let text = response.bytes().await.map_err(|e| QueueError::Transient {
            op: "publish",
            source: e.into(),
        })?;
        if status != 200 {
            let source = format!(
                "{url}: HTTP {status}: {}",
                String::from_utf8_lossy(&text[..text.len().min(512)])
            )
            .into();
            return Err(if status == 429 || status >= 500 {
                QueueError::Transient {
                    op: "publish",
                    source,
                }
            } else {
                QueueError::Permanent {
                    op: "publish",
                    source,
                }
            });
        }
        #[derive(Deserialize)]
        struct Published {
            #[serde(rename = "messageIds", default)]
            message_ids: Vec<String>,
        }
        let published: Published =
            serde_json::from_slice(&text).map_err(|e| QueueError::Permanent {
                op: "publish",
                source: format!("unexpected answer from {url}: {e}").into(),
            })?;
        if published.message_ids.len() != count {
            return Err(QueueError::Transient {
                op: "publish",
                source: format!(
                    "{url} took {} of {count} messages",
                    published.message_ids.len()
                )
                .into(),
            });
        }
        Ok(())
    }
}

/// A publish request for `batch`: each message's data is the job's body; a finalize
/// message's `session_guid` attribute is its guid, another job's `job` attribute its kind
/// (for filters and for reading a dead letter).
fn request_body(batch: &[Job]) -> Vec<u8> {
    let messages: Vec<serde_json::Value> = batch
        .iter()
        .map(|job| {
            let attributes = match job {
                Job::Finalize(guid) => serde_json::json!({"session_guid": guid.as_str()}),
                other => serde_json::json!({"job": other.kind()}),
            };
            serde_json::json!({
                "data": base64::engine::general_purpose::STANDARD.encode(job.body()),
                "attributes": attributes,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "messages": messages })).expect("JSON")
}

#[async_trait]
impl FinalizeQueue for PubSubQueue {
    fn batch_limit(&self) -> usize {
        BATCH
    }

    /// Pub/Sub takes or refuses a publish request whole, so nothing is refused one by one.
    async fn publish(&self, batch: &[Job]) -> Result<Vec<Refused>, QueueError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let body = request_body(batch);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.publish_once(&body, batch.len()).await {
                Ok(()) => return Ok(Vec::new()),
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::warn!(topic = %self.topic, attempt, error = %e, "publish failed; trying again");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_request_carries_the_message_as_base64_data() {
        let jobs = [
            Job::Finalize(crate::engine::SessionGuid::parse("a-1").unwrap()),
            Job::Finalize(crate::engine::SessionGuid::parse("b-2").unwrap()),
            Job::Reconcile(super::super::NameRange {
                after: None,
                through: Some("c/2025".into()),
                since_ms: None,
            }),
        ];
        let body: serde_json::Value = serde_json::from_slice(&request_body(&jobs)).unwrap();
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[2]["attributes"]["job"], "reconcile");
        let data = base64::engine::general_purpose::STANDARD
            .decode(messages[1]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data, br#"{"session_guid":"b-2"}"#);
        assert_eq!(messages[1]["attributes"]["session_guid"], "b-2");
    }

    #[test]
    fn the_emulator_host_becomes_an_http_endpoint() {
        let q = PubSubQueue::on_emulator("projects/p/topics/t", "127.0.0.1:8085");
        assert_eq!(q.endpoint, "http://127.0.0.1:8085");
        let q = PubSubQueue::on_emulator("projects/p/topics/t", "http://127.0.0.1:8085/");
        assert_eq!(q.endpoint, "http://127.0.0.1:8085");
    }
}
