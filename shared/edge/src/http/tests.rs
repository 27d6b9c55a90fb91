//! The accept loop and the limits against real sockets: slow heads, slow bodies, floods at
//! the connection cap, and shutdown with requests in flight.

use axum::body::Bytes;
use axum::routing::{get, post};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

fn test_limits() -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_millis(400),
        body_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(1500),
        max_connections: 8,
        shutdown_grace: Duration::from_secs(2),
    }
}

struct Server {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: ServeLimits) -> Server {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                "slow"
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, app, limits, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
        task,
    }
}

async fn send(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

/// Reads until the server closes the connection; returns what it sent and how long
/// that took. Panics after `limit`.
async fn until_closed(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(start + limit, s.read(&mut buf)).await {
            Err(_) => panic!(
                "still open after {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

/// Reads one response to a request whose answer is `Content-Length`-framed.
async fn response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before a response: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test]
async fn a_stalled_head_is_closed_after_the_header_timeout() {
    let server = start(test_limits()).await;
    let start = Instant::now();
    let mut nothing = send(server.addr, b"").await;
    let mut half = send(server.addr, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-").await;
    for s in [&mut nothing, &mut half] {
        let (got, _) = until_closed(s, Duration::from_secs(2)).await;
        let held = start.elapsed();
        assert_eq!(got, "");
        assert!(held >= Duration::from_millis(300), "{held:?}");
        assert!(held < Duration::from_millis(1200), "{held:?}");
    }
    let mut ok = send(server.addr, HEALTHZ).await;
    assert!(response(&mut ok).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_closed() {
    let server = start(test_limits()).await;
    let mut s = send(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\npartial",
    )
    .await;
    let (got, held) = until_closed(&mut s, Duration::from_secs(2)).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("connection: close"), "{got}");
    assert!(held >= Duration::from_millis(300), "{held:?}");
    assert!(held < Duration::from_millis(1200), "{held:?}");
    // A body that does arrive in time is served.
    let mut ok = send(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    let got = response(&mut ok).await;
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("hello"),
        "{got}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_lasts_the_idle_timeout_not_the_header_timeout() {
    let server = start(test_limits()).await;
    let mut s = send(server.addr, HEALTHZ).await;
    assert!(response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Past the header timeout the connection is still usable...
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.write_all(HEALTHZ).await.unwrap();
    assert!(response(&mut s).await.starts_with("HTTP/1.1 200"));
    // ...and it is closed after the idle timeout.
    let (got, held) = until_closed(&mut s, Duration::from_secs(3)).await;
    assert_eq!(got, "");
    assert!(held >= Duration::from_millis(1300), "{held:?}");
    // A next head begun but not finished gets the header timeout, not the idle one.
    let mut s = send(server.addr, HEALTHZ).await;
    assert!(response(&mut s).await.starts_with("HTTP/1.1 200"));
    s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let (_, held) = until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(held < Duration::from_millis(1000), "{held:?}");
}

#[tokio::test]
async fn at_the_cap_a_new_client_displaces_an_idle_connection() {
    let limits = test_limits();
    let server = start(ServeLimits {
        header_timeout: Duration::from_secs(5),
        ..limits
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..limits.max_connections * 3 {
        stalled.push(send(server.addr, b"GET /healthz HTTP/1.1\r\n").await);
    }
    let start = Instant::now();
    let mut ok = send(server.addr, HEALTHZ).await;
    assert!(response(&mut ok).await.starts_with("HTTP/1.1 200"));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // All but the newest few stalled connections were closed to make room.
    let mut closed = 0;
    for s in &mut stalled {
        let mut buf = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= stalled.len() - limits.max_connections, "{closed}");
}

#[tokio::test]
async fn shutdown_lets_requests_finish_and_closes_stalled_connections() {
    let mut server = start(test_limits()).await;
    let mut stalled = send(server.addr, b"GET /healthz HTTP/1.1\r\n").await;
    let mut slow = send(server.addr, b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let _ = server.stop.take().unwrap().send(());
    let (_, held) = until_closed(&mut stalled, Duration::from_secs(1)).await;
    assert!(held < Duration::from_millis(200), "{held:?}");
    let (got, _) = until_closed(&mut slow, Duration::from_secs(2)).await;
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("slow"),
        "{got}"
    );
    tokio::time::timeout(Duration::from_secs(2), &mut server.task)
        .await
        .expect("run returns once drained")
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_is_bounded_by_the_grace() {
    let mut server = start(ServeLimits {
        body_timeout: Duration::from_secs(30),
        shutdown_grace: Duration::from_millis(300),
        ..test_limits()
    })
    .await;
    let mut s = send(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let _ = server.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(3), &mut server.task)
        .await
        .expect("run returns after the grace")
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let (_, held) = until_closed(&mut s, Duration::from_secs(1)).await;
    assert!(held < Duration::from_millis(500), "{held:?}");
}
