//! A Lambda Runtime API on 127.0.0.1, so the real function binaries run their real Lambda
//! mode (`lambda_runtime`) in tests: the binary polls `/invocation/next`, the test hands it an
//! event and waits for `/response` or `/error`, exactly as the Lambda service does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex as AsyncMutex};

type Reply = Result<Value, Value>;
/// An invocation waiting for the function: its request id and event.
type Invocation = (String, Value);

#[derive(Clone, Default)]
struct Shared {
    queue: Arc<AsyncMutex<Option<mpsc::UnboundedReceiver<Invocation>>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>,
}

/// The runtime API server; `address()` is the `AWS_LAMBDA_RUNTIME_API` value.
pub struct RuntimeApi {
    addr: std::net::SocketAddr,
    tx: mpsc::UnboundedSender<(String, Value)>,
    shared: Shared,
    next_id: Mutex<u64>,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            queue: Arc::new(AsyncMutex::new(Some(rx))),
            waiting: Arc::default(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi {
            addr,
            tx,
            shared,
            next_id: Mutex::new(0),
        }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The variables a function process needs besides `AWS_LAMBDA_RUNTIME_API`.
    pub fn env(&self, function: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Invokes the function once: `Ok(response)` or `Err(error payload)`.
    pub async fn invoke(&self, event: Value) -> Reply {
        let id = {
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            format!("req-{n}")
        };
        let (done, wait) = oneshot::channel();
        self.shared.waiting.lock().unwrap().insert(id.clone(), done);
        self.tx.send((id, event)).expect("runtime API running");
        tokio::time::timeout(Duration::from_secs(120), wait)
            .await
            .expect("the function answered within 120 s")
            .expect("the invocation was answered")
    }
}

async fn next(State(s): State<Shared>) -> impl IntoResponse {
    let mut queue = s.queue.lock().await;
    let rx = queue.as_mut().expect("one poller at a time");
    let Some((id, event)) = rx.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let mut h = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 120_000;
    h.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_str(&id).unwrap(),
    );
    h.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:test"),
    );
    h.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
    );
    (StatusCode::OK, h, event.to_string())
}

fn finish(s: &Shared, id: &str, reply: Reply) -> StatusCode {
    if let Some(done) = s.waiting.lock().unwrap().remove(id) {
        let _ = done.send(reply);
    }
    StatusCode::ACCEPTED
}

async fn response(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let v = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
    finish(&s, &id, Ok(v))
}

async fn error(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let v = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
    finish(&s, &id, Err(v))
}

async fn init_error(body: Bytes) -> StatusCode {
    panic!(
        "the function failed to initialise: {}",
        String::from_utf8_lossy(&body)
    );
}
