//! The four emulators rrstitch's cloud backends are tested against, each started on a free
//! port of 127.0.0.1 and stopped (with its whole process group) on drop.
//!
//! Binaries come from `scripts/install-emulators.sh` (`make emulators`), or from the paths in
//! `RRSTITCH_FAKE_GCS_BIN`, `RRSTITCH_MOTO_BIN`, `RRSTITCH_FIRESTORE_JAR`,
//! `RRSTITCH_PUBSUB_EMULATOR`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::procs::{port_open, Group};
use crate::{free_port, repo_root};

fn binary(var: &str, default: PathBuf, what: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    if !path.exists() {
        panic!(
            "{what} not found at {} (set {var} or run `scripts/install-emulators.sh`, i.e. `make emulators`)",
            path.display()
        );
    }
    path
}

fn http_ok(url: &str) -> bool {
    ureq::get(url)
        .timeout(Duration::from_secs(2))
        .call()
        .is_ok()
}

/// fake-gcs-server, in memory.
pub struct FakeGcs {
    /// `http://127.0.0.1:PORT`: the `STORAGE_EMULATOR_HOST` value.
    pub endpoint: String,
    pub port: u16,
    pub group: Group,
}

impl FakeGcs {
    pub fn start() -> FakeGcs {
        FakeGcs::start_with(None)
    }

    /// Starts it holding the objects under `data`, in memory: one directory per bucket, one
    /// file per object. Far faster than uploading them, but the in-memory backend slows as a
    /// bucket grows: thousands of objects, not tens of thousands (see [`FakeGcs::on_disk`]).
    pub fn start_with(data: Option<&Path>) -> FakeGcs {
        FakeGcs::spawn(&["-backend", "memory"], data)
    }

    /// Starts it on its filesystem backend under `root`, first loading the objects under
    /// `data` (laid out as for [`FakeGcs::start_with`]): 20,000 objects load in about 75 s
    /// here, where the in-memory backend had not loaded them after 120 s.
    pub fn on_disk(root: &Path, data: Option<&Path>) -> FakeGcs {
        std::fs::create_dir_all(root).unwrap();
        let root = root.to_str().expect("a UTF-8 path");
        FakeGcs::spawn(&["-backend", "filesystem", "-filesystem-root", root], data)
    }

    fn spawn(backend: &[&str], data: Option<&Path>) -> FakeGcs {
        let bin = binary(
            "RRSTITCH_FAKE_GCS_BIN",
            repo_root().join(".build/bin/fake-gcs-server"),
            "fake-gcs-server",
        );
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["-scheme", "http", "-host", "127.0.0.1"])
            .args(backend)
            .args(["-port", &port.to_string()])
            .args(["-public-host", &format!("127.0.0.1:{port}")])
            .args(["-external-url", &format!("http://127.0.0.1:{port}")])
            .args(["-log-level", "warn"]);
        if let Some(data) = data {
            cmd.arg("-data").arg(data);
        }
        let mut group = Group::spawn("fake-gcs-server", cmd);
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = format!("{endpoint}/storage/v1/b?project=test");
        // It answers only once everything under `data` is loaded.
        let wait = if data.is_some() { 900 } else { 30 };
        group.wait_until(Duration::from_secs(wait), || http_ok(&probe));
        FakeGcs {
            endpoint,
            port,
            group,
        }
    }

    pub fn create_bucket(&self, name: &str) {
        ureq::post(&format!("{}/storage/v1/b?project=test", self.endpoint))
            .send_json(ureq::json!({ "name": name }))
            .unwrap_or_else(|e| panic!("creating GCS bucket {name}: {e}"));
    }

    /// Uploads an object through the JSON API, as a browser SDK would.
    pub fn upload(&self, bucket: &str, name: &str, body: &[u8]) {
        ureq::post(&format!("{}/upload/storage/v1/b/{bucket}/o", self.endpoint))
            .query("uploadType", "media")
            .query("name", name)
            .set("content-type", "application/json")
            .send_bytes(body)
            .unwrap_or_else(|e| panic!("uploading gs://{bucket}/{name}: {e}"));
    }

    /// Deletes an object (as a lifecycle rule or an operator might).
    pub fn delete(&self, bucket: &str, name: &str) {
        let url = format!(
            "{}/storage/v1/b/{bucket}/o/{}",
            self.endpoint,
            percent(name)
        );
        ureq::delete(&url)
            .call()
            .unwrap_or_else(|e| panic!("deleting gs://{bucket}/{name}: {e}"));
    }

    /// Reads an object, `None` if it does not exist.
    pub fn download(&self, bucket: &str, name: &str) -> Option<Vec<u8>> {
        let url = format!(
            "{}/storage/v1/b/{bucket}/o/{}",
            self.endpoint,
            percent(name)
        );
        match ureq::get(&url).query("alt", "media").call() {
            Ok(r) => {
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut body).ok()?;
                Some(body)
            }
            Err(ureq::Error::Status(404, _)) => None,
            Err(e) => panic!("downloading gs://{bucket}/{name}: {e}"),
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![("STORAGE_EMULATOR_HOST".into(), self.endpoint.clone())]
    }
}

/// Percent-encodes an object name for a URL path segment.
pub fn percent(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// moto's server mode: S3 and DynamoDB (and the rest of AWS) in one process, served one
/// request at a time (`scripts/moto_serial.py`: threaded moto lets two racing conditional
/// writes to one DynamoDB item both succeed, which DynamoDB never does).
pub struct Moto {
    pub endpoint: String,
    pub port: u16,
    pub group: Group,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = binary(
            "RRSTITCH_MOTO_BIN",
            repo_root().join(".build/bin/moto-serial"),
            "moto (scripts/moto_serial.py)",
        );
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut group = Group::spawn("moto", cmd);
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = format!("{endpoint}/moto-api/");
        group.wait_until(Duration::from_secs(30), || http_ok(&probe));
        Moto {
            endpoint,
            port,
            group,
        }
    }

    /// Creates an S3 bucket (moto accepts unsigned requests).
    pub fn create_bucket(&self, name: &str) {
        ureq::put(&format!("{}/{name}", self.endpoint))
            .call()
            .unwrap_or_else(|e| panic!("creating S3 bucket {name}: {e}"));
    }

    /// moto's own view of its state (`/moto-api/data.json`), for assertions.
    pub fn state(&self) -> String {
        ureq::get(&format!("{}/moto-api/data.json", self.endpoint))
            .call()
            .unwrap_or_else(|e| panic!("reading moto state: {e}"))
            .into_string()
            .unwrap_or_else(|e| panic!("reading moto state: {e}"))
    }

    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// The official Cloud Firestore emulator (Java), started from its jar directly.
pub struct Firestore {
    /// `127.0.0.1:PORT`: the `FIRESTORE_EMULATOR_HOST` value.
    pub host: String,
    pub project: String,
    pub port: u16,
    pub group: Group,
}

impl Firestore {
    /// Starts on a free port. The port `free_port` found can be taken before the emulator
    /// binds it (by another emulator starting in parallel: CI saw "Address already in use"),
    /// so a start that fails that way tries another port, three times at most.
    pub fn start() -> Firestore {
        let mut attempt = 1;
        loop {
            match Self::try_start_on(free_port()) {
                Ok(firestore) => return firestore,
                Err(tail) if attempt < 3 && tail.contains("Address already in use") => {
                    attempt += 1;
                }
                Err(tail) => panic!("firestore-emulator exited before it was ready:\n{tail}"),
            }
        }
    }

    /// Starts on `port`: a restarted emulator comes back where its clients expect it.
    pub fn start_on(port: u16) -> Firestore {
        Self::try_start_on(port)
            .unwrap_or_else(|tail| panic!("firestore-emulator exited before it was ready:\n{tail}"))
    }

    fn try_start_on(port: u16) -> Result<Firestore, String> {
        let jar = binary(
            "RRSTITCH_FIRESTORE_JAR",
            PathBuf::from(
                "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar",
            ),
            "the Cloud Firestore emulator (Google Cloud CLI component cloud-firestore-emulator)",
        );
        let mut cmd = Command::new("java");
        cmd.arg("-Duser.language=en")
            .arg("-cp")
            .arg(jar)
            .arg("com.google.cloud.datastore.emulator.firestore.CloudFirestore")
            .arg("start")
            .arg("--host=127.0.0.1")
            .arg(format!("--port={port}"));
        let mut group = Group::spawn("firestore-emulator", cmd);
        let host = format!("127.0.0.1:{port}");
        let probe = format!("http://{host}/");
        group.ready_or_exited(Duration::from_secs(90), || {
            port_open(port) && http_ok(&probe)
        })?;
        Ok(Firestore {
            host,
            project: "rrstitch-test".into(),
            port,
            group,
        })
    }

    /// Deletes every document of the project's default database.
    pub fn reset(&self) {
        ureq::delete(&format!(
            "http://{}/emulator/v1/projects/{}/databases/(default)/documents",
            self.host, self.project
        ))
        .call()
        .unwrap_or_else(|e| panic!("resetting the Firestore emulator: {e}"));
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("FIRESTORE_EMULATOR_HOST".into(), self.host.clone()),
            ("RRSTITCH_FIRESTORE_PROJECT".into(), self.project.clone()),
        ]
    }
}

/// The Pub/Sub emulator shipped with the Google Cloud CLI (`gcloud beta emulators pubsub
/// start` runs the same launcher), driven through its REST API: topics, push subscriptions
/// that POST to a function's route, pull subscriptions to see what was published.
pub struct PubSub {
    /// `127.0.0.1:PORT`: the `PUBSUB_EMULATOR_HOST` value.
    pub host: String,
    pub project: String,
    pub port: u16,
    pub group: Group,
}

/// One message pulled from a subscription (and acknowledged).
#[derive(Debug, Clone)]
pub struct Pulled {
    pub data: Vec<u8>,
    pub attributes: serde_json::Value,
}

impl PubSub {
    pub fn start() -> PubSub {
        let bin = binary(
            "RRSTITCH_PUBSUB_EMULATOR",
            PathBuf::from(
                "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
            ),
            "the Pub/Sub emulator (Google Cloud CLI component pubsub-emulator)",
        );
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg("--host=127.0.0.1").arg(format!("--port={port}"));
        let mut group = Group::spawn("pubsub-emulator", cmd);
        let host = format!("127.0.0.1:{port}");
        let probe = format!("http://{host}/");
        group.wait_until(Duration::from_secs(60), || {
            port_open(port) && http_ok(&probe)
        });
        PubSub {
            host,
            project: "rrstitch-test".into(),
            port,
            group,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/v1/{path}", self.host)
    }

    fn call(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        ureq::request(method, &self.url(path))
            .timeout(Duration::from_secs(30))
            .send_json(body)
            .unwrap_or_else(|e| panic!("Pub/Sub emulator {method} {path}: {e}"))
            .into_json()
            .unwrap_or(serde_json::Value::Null)
    }

    /// `projects/<project>/topics/<name>`, created.
    pub fn create_topic(&self, name: &str) -> String {
        let topic = format!("projects/{}/topics/{name}", self.project);
        self.call("PUT", &topic, serde_json::json!({}));
        topic
    }

    /// A push subscription of `topic` POSTing the wrapped envelope to `endpoint`, retried
    /// with a 1 s backoff; with a dead-letter topic after `attempts` deliveries when given.
    pub fn create_push_subscription(
        &self,
        name: &str,
        topic: &str,
        endpoint: &str,
        dead_letter: Option<(&str, u32)>,
    ) -> String {
        let subscription = format!("projects/{}/subscriptions/{name}", self.project);
        let mut body = serde_json::json!({
            "topic": topic,
            "pushConfig": {"pushEndpoint": endpoint},
            "ackDeadlineSeconds": 30,
            "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "2s"},
        });
        if let Some((dead_letter_topic, attempts)) = dead_letter {
            body["deadLetterPolicy"] = serde_json::json!({
                "deadLetterTopic": dead_letter_topic,
                "maxDeliveryAttempts": attempts,
            });
        }
        self.call("PUT", &subscription, body);
        subscription
    }

    /// A pull subscription of `topic`: it gets a copy of every message published after it.
    pub fn create_pull_subscription(&self, name: &str, topic: &str) -> String {
        let subscription = format!("projects/{}/subscriptions/{name}", self.project);
        self.call("PUT", &subscription, serde_json::json!({"topic": topic}));
        subscription
    }

    /// Points a push subscription somewhere else (undelivered messages follow).
    pub fn set_push_endpoint(&self, subscription: &str, endpoint: &str) {
        self.call(
            "POST",
            &format!("{subscription}:modifyPushConfig"),
            serde_json::json!({"pushConfig": {"pushEndpoint": endpoint}}),
        );
    }

    /// Publishes one message whose data is `data`.
    pub fn publish(&self, topic: &str, data: &[u8]) {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(data);
        self.call(
            "POST",
            &format!("{topic}:publish"),
            serde_json::json!({"messages": [{"data": data}]}),
        );
    }

    /// Turns a push subscription into a pull one (its undelivered messages stay), so a test
    /// can hand them to several workers itself, as a platform spreads pushes over instances.
    pub fn stop_pushing(&self, subscription: &str) {
        self.call(
            "POST",
            &format!("{subscription}:modifyPushConfig"),
            serde_json::json!({"pushConfig": {}}),
        );
    }

    /// Up to `max` messages of `subscription`, unacknowledged: `(ackId, data)` each.
    pub fn pull(&self, subscription: &str, max: usize) -> Vec<(String, Vec<u8>)> {
        use base64::Engine as _;
        let got = self.call(
            "POST",
            &format!("{subscription}:pull"),
            serde_json::json!({"maxMessages": max, "returnImmediately": true}),
        );
        got["receivedMessages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                (
                    m["ackId"].as_str().expect("an ackId").to_owned(),
                    base64::engine::general_purpose::STANDARD
                        .decode(m["message"]["data"].as_str().unwrap_or(""))
                        .expect("base64 data"),
                )
            })
            .collect()
    }

    pub fn acknowledge(&self, subscription: &str, ack_ids: &[String]) {
        if !ack_ids.is_empty() {
            self.call(
                "POST",
                &format!("{subscription}:acknowledge"),
                serde_json::json!({"ackIds": ack_ids}),
            );
        }
    }

    /// Pulls and acknowledges what `subscription` holds, until it stays empty for `quiet`.
    pub fn drain(&self, subscription: &str, quiet: Duration) -> Vec<Pulled> {
        use base64::Engine as _;
        let mut all = Vec::new();
        let mut last = std::time::Instant::now();
        while last.elapsed() < quiet {
            let got = self.call(
                "POST",
                &format!("{subscription}:pull"),
                serde_json::json!({"maxMessages": 100, "returnImmediately": true}),
            );
            let received = got["receivedMessages"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if received.is_empty() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            last = std::time::Instant::now();
            let ack_ids: Vec<&str> = received
                .iter()
                .map(|m| m["ackId"].as_str().expect("an ackId"))
                .collect();
            for m in &received {
                all.push(Pulled {
                    data: base64::engine::general_purpose::STANDARD
                        .decode(m["message"]["data"].as_str().unwrap_or(""))
                        .expect("base64 data"),
                    attributes: m["message"]["attributes"].clone(),
                });
            }
            self.call(
                "POST",
                &format!("{subscription}:acknowledge"),
                serde_json::json!({"ackIds": ack_ids}),
            );
        }
        all
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![("PUBSUB_EMULATOR_HOST".into(), self.host.clone())]
    }
}
