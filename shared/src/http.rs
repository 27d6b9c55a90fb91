//! Serving the HTTP functions: bind, serve, and stop cleanly on SIGTERM (Cloud Run sends it
//! before stopping an instance; requests in flight finish first).
//!
//! The accept loop is our own rather than `axum::serve`, because a public endpoint has to
//! survive slow clients: a connection that opens and then sends its request head (or body) a
//! byte at a time, or not at all, would otherwise hold its socket and buffers forever, and a
//! few thousand of them exhaust the process's file descriptors so that accepts stop. So
//! [`serve_with`] enforces the [`ServeLimits`]:
//!
//! - a **header timeout**: a connection must deliver a complete request head within it, counted
//!   from the accept (first request) or from the first byte of the next head (keep-alive);
//! - a **body timeout**: a request's whole body must arrive within it, counted from the head;
//!   a request that misses it is answered 408 and its connection closed;
//! - an **idle timeout**: a keep-alive connection that sends nothing is closed after it;
//! - a **connection cap**: at most `max_connections` sockets are open. At the cap, a new
//!   connection makes room by closing the longest-idle connection that has no request in
//!   flight (a stalled head, or an idle keep-alive), so a real client gets through a flood of
//!   stalled ones at once; if every connection has a request in flight, the accept waits, and
//!   new connections queue in the kernel's backlog, which costs the process no descriptor.
//!
//! On SIGTERM or Ctrl-C the listener closes, idle and stalled-head connections close at once,
//! requests in flight finish (their connections then close), and after
//! [`ServeLimits::shutdown_grace`] whatever is left is closed, so a stalled client cannot hold
//! the instance past Cloud Run's 10 s between SIGTERM and SIGKILL.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::ConfigError;

/// A timeout in milliseconds, saturating ([`crate::time::saturating_millis`], never negative).
fn millis(d: Duration) -> u64 {
    crate::time::saturating_millis(d).unsigned_abs()
}

/// Caps request bodies at `max` bytes.
///
/// A body announced larger than `max` (by `Content-Length`) is refused with 413 at once,
/// before a byte of it is read: the function never waits for, or buffers, an upload it would
/// refuse anyway. A body without a length is cut off at `max` while it streams.
pub fn limit_body(app: Router, max: usize) -> Router {
    app.layer(middleware::from_fn_with_state(max, refuse_announced))
        .layer(DefaultBodyLimit::max(max))
}

async fn refuse_announced(State(max): State<usize>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > max as u64 => {
            tracing::warn!(length, max, "request body too large; refused unread");
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(serde_json::json!({
                    "error": format!("request body of {length} bytes exceeds the limit of {max}")
                })),
            )
                .into_response()
        }
        _ => next.run(request).await,
    }
}

/// Seconds a connection may take to send a complete request head.
pub const HEADER_TIMEOUT_VAR: &str = "RRSTITCH_HTTP_HEADER_TIMEOUT_SECS";
/// Seconds a request may take to send its whole body, counted from its head.
pub const BODY_TIMEOUT_VAR: &str = "RRSTITCH_HTTP_BODY_TIMEOUT_SECS";
/// Most connections open at once.
pub const MAX_CONNECTIONS_VAR: &str = "RRSTITCH_HTTP_MAX_CONNECTIONS";

/// Longest timeout the variables accept: a day. Anything longer is a typo, and bounding it
/// keeps deadline arithmetic far from overflow.
const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;
/// Most connections the variable accepts: far above any descriptor limit, and small enough
/// for the semaphore's `acquire_many(u32)` at shutdown.
const MAX_MAX_CONNECTIONS: u64 = 1_000_000;

/// How long slow clients may hold the server's connections, and how many may be open.
///
/// The defaults suit a Cloud Run or Lambda-URL function receiving storage events: real
/// senders (Eventarc, Pub/Sub push, the scheduler) send a request head in milliseconds and a
/// few-KB body right behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// A connection that has not sent a complete request head this long after it was accepted
    /// (or, on a kept-alive connection, after the first byte of its next head) is closed.
    /// Env: `RRSTITCH_HTTP_HEADER_TIMEOUT_SECS`, default 10 s.
    pub header_timeout: Duration,
    /// A request whose body has not fully arrived this long after its head is answered 408
    /// and its connection closed. Env: `RRSTITCH_HTTP_BODY_TIMEOUT_SECS`, default 30 s.
    pub body_timeout: Duration,
    /// A kept-alive connection that sends nothing this long after its last response is
    /// closed. Long enough that a front end reusing connections rarely races the close;
    /// short enough that abandoned ones go. Default 60 s (no variable).
    pub idle_timeout: Duration,
    /// Most connections open at once; keep it under the open-file limit.
    /// Env: `RRSTITCH_HTTP_MAX_CONNECTIONS`, default 1024.
    pub max_connections: usize,
    /// After SIGTERM, how long requests in flight may take before the remaining connections
    /// are closed anyway. Under Cloud Run's 10 s from SIGTERM to SIGKILL, so the instance
    /// exits on its own. Default 8 s (no variable).
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(8),
        }
    }
}

impl ServeLimits {
    /// The defaults, overridden by `RRSTITCH_HTTP_HEADER_TIMEOUT_SECS`,
    /// `RRSTITCH_HTTP_BODY_TIMEOUT_SECS` and `RRSTITCH_HTTP_MAX_CONNECTIONS` (whole numbers,
    /// at least 1; an empty variable counts as unset). A bad value is an error naming the
    /// variable, so a typo stops the function at start-up rather than serving unprotected.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// [`ServeLimits::from_env`] over any variable source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = ServeLimits::default();
        let number = |var: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            let Some(v) = get(var) else {
                return Ok(default);
            };
            let n: u64 = v.trim().parse().map_err(|_| ConfigError {
                var,
                reason: format!("{v:?} is not a whole number"),
            })?;
            if n == 0 || n > max {
                return Err(ConfigError {
                    var,
                    reason: format!("{n} is out of range: use 1 to {max}"),
                });
            }
            Ok(n)
        };
        Ok(ServeLimits {
            header_timeout: Duration::from_secs(number(
                HEADER_TIMEOUT_VAR,
                defaults.header_timeout.as_secs(),
                MAX_TIMEOUT_SECS,
            )?),
            body_timeout: Duration::from_secs(number(
                BODY_TIMEOUT_VAR,
                defaults.body_timeout.as_secs(),
                MAX_TIMEOUT_SECS,
            )?),
            max_connections: number(
                MAX_CONNECTIONS_VAR,
                defaults.max_connections as u64,
                MAX_MAX_CONNECTIONS,
            )? as usize,
            ..defaults
        })
    }
}

/// Serves `app` on `addr` (`host:port`) until SIGTERM or Ctrl-C, with the [`ServeLimits`]
/// the environment configures ([`ServeLimits::from_env`]).
pub async fn serve(app: Router, addr: &str) -> io::Result<()> {
    let limits = ServeLimits::from_env()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    serve_with(app, addr, limits).await
}

/// Serves `app` on `addr` (`host:port`) under `limits` until SIGTERM or Ctrl-C.
pub async fn serve_with(app: Router, addr: &str, limits: ServeLimits) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        header_timeout_secs = limits.header_timeout.as_secs_f64(),
        body_timeout_secs = limits.body_timeout.as_secs_f64(),
        idle_timeout_secs = limits.idle_timeout.as_secs_f64(),
        max_connections = limits.max_connections,
        "listening"
    );
    warn_if_above_fd_limit(limits.max_connections);
    run(listener, app, limits, shutdown_signal()).await;
    Ok(())
}

/// The connection cap is only a protection if the process can actually open that many
/// sockets; say so at start-up rather than with failing accepts under load.
fn warn_if_above_fd_limit(max_connections: usize) {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
        // Leave room for the listener, the clients of the cloud APIs, logs and the like.
        let needed = max_connections as libc::rlim_t + 64;
        if ok && limit.rlim_cur < needed {
            tracing::warn!(
                max_connections,
                open_file_limit = limit.rlim_cur,
                "{MAX_CONNECTIONS_VAR} is near or above the open-file limit: accepts may fail \
                 before the cap is reached; lower it or raise the limit"
            );
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// The accept loop: serves connections from `listener` until `shutdown` completes, then
/// drains them (see the module docs) and returns.
async fn run(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared::new(limits));
    let mut shutdown = pin!(shutdown);
    let mut next_id: u64 = 0;
    let mut at_cap = false;
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of descriptors or memory, or a connection reset before it was
                    // accepted: none is fatal, and retrying at once would spin.
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match shared.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                if at_cap {
                    at_cap = false;
                    tracing::info!("below the connection cap again");
                }
                permit
            }
            Err(_) => {
                if !at_cap {
                    at_cap = true;
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached: closing idle connections to make room"
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    permit = shared.make_room() => permit,
                }
            }
        };
        next_id += 1;
        let conn = Arc::new(Conn::new(next_id, shared.now_ms()));
        shared.lock().insert(conn.id, conn.clone());
        tokio::spawn(serve_connection(
            shared.clone(),
            conn,
            stream,
            app.clone(),
            permit,
        ));
    }
    drop(listener);
    shared.drain().await;
}

/// State every connection task and the accept loop share.
struct Shared {
    limits: ServeLimits,
    /// Times are kept as milliseconds since this instant, so they fit in atomics.
    epoch: Instant,
    /// One permit per open connection; a task holds its permit until its socket is closed.
    slots: Arc<Semaphore>,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Wakes the accept loop waiting at the cap: a connection went idle, or turned down an
    /// eviction because a request had just started on it.
    room: Notify,
    /// Set at shutdown: idle connections close, busy ones close after their request.
    draining: AtomicBool,
    /// Set when the shutdown grace has run out: every connection closes now.
    closing: AtomicBool,
}

impl Shared {
    fn new(limits: ServeLimits) -> Self {
        Shared {
            limits,
            epoch: Instant::now(),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            conns: Mutex::new(HashMap::new()),
            room: Notify::new(),
            draining: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        crate::time::deadline(self.epoch, Duration::from_millis(ms))
    }

    /// The connection table. A panic while it was held cannot leave it inconsistent (every
    /// change is one insert or remove), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a connection slot at the cap, closing the longest-idle connection that has
    /// no request in flight to free one.
    async fn make_room(&self) -> OwnedSemaphorePermit {
        loop {
            if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                return permit;
            }
            self.evict_one();
            tokio::select! {
                permit = self.slots.clone().acquire_owned() => {
                    if let Ok(permit) = permit {
                        return permit;
                    }
                    // Closed: it never is; wait for a wake-up rather than spin.
                    self.room.notified().await;
                }
                () = self.room.notified() => {}
            }
        }
    }

    /// Asks the longest-idle closable connection to close, unless one was already asked and
    /// has not gone yet (one at a time: each accepted connection needs one slot).
    fn evict_one(&self) {
        let conns = self.lock();
        if conns.values().any(|c| c.evict.load(Ordering::Acquire)) {
            return;
        }
        let victim = conns
            .values()
            .filter(|c| c.closable())
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire));
        if let Some(victim) = victim {
            tracing::debug!(conn = victim.id, "closing an idle connection to make room");
            victim.evict.store(true, Ordering::Release);
            victim.wake.notify_one();
        }
    }

    fn wake_all(&self) {
        for conn in self.lock().values() {
            conn.wake.notify_one();
        }
    }

    /// Closes idle connections, lets requests in flight finish for up to the grace period,
    /// then closes whatever is left and returns once their sockets are closed.
    async fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.wake_all();
        let open = self.lock().len();
        tracing::info!(open, "draining connections");
        let all = self.limits.max_connections as u32;
        let drained =
            tokio::time::timeout(self.limits.shutdown_grace, self.slots.acquire_many(all));
        if drained.await.is_ok() {
            tracing::info!("all connections closed");
            return;
        }
        let open = self.lock().len();
        tracing::warn!(
            open,
            grace_secs = self.limits.shutdown_grace.as_secs_f64(),
            "requests still in flight after the shutdown grace; closing their connections"
        );
        self.closing.store(true, Ordering::Release);
        self.wake_all();
        // Closing is immediate once each task runs; this only waits for them to be scheduled.
        let closed = tokio::time::timeout(Duration::from_secs(1), self.slots.acquire_many(all));
        if closed.await.is_err() {
            tracing::warn!("connections did not close in time; exiting anyway");
        }
    }
}

/// One connection's state, as its task, its service, its socket and the accept loop see it.
struct Conn {
    id: u64,
    /// Requests whose response has not been handed to the socket completely yet.
    in_flight: AtomicUsize,
    /// When the connection was accepted or its last response finished (ms since the epoch).
    idle_since: AtomicU64,
    /// 1 + when the head being waited for started: the accept for the first request, the
    /// first byte read while idle for later ones; 0 while idle with nothing read, or busy.
    head_since: AtomicU64,
    /// The last write to the socket could not complete: a response is still in hyper's
    /// buffer, so closing now would cut it off.
    write_blocked: AtomicBool,
    /// The accept loop asked this connection to close to make room.
    evict: AtomicBool,
    /// Wakes the connection's watchdog when any of the above changes.
    wake: Notify,
}

impl Conn {
    fn new(id: u64, now_ms: u64) -> Self {
        Conn {
            id,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now_ms),
            head_since: AtomicU64::new(now_ms + 1),
            write_blocked: AtomicBool::new(false),
            evict: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Whether closing the connection now loses nothing: no request in flight, no response
    /// waiting to be written.
    fn closable(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && !self.write_blocked.load(Ordering::Acquire)
    }
}

/// Why a connection was closed, for the debug log.
#[derive(Debug, Clone, Copy)]
enum Closed {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
    Draining,
    ShutdownGrace,
}

enum Watch {
    Close(Closed),
    /// Shutdown began: stop keeping the connection alive after the request in flight.
    Drain,
}

async fn serve_connection(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    stream: TcpStream,
    app: Router,
    permit: OwnedSemaphorePermit,
) {
    let limits = shared.limits;
    let io = TokioIo::new(Watched {
        io: stream,
        conn: conn.clone(),
        shared: shared.clone(),
    });
    let service = ConnService {
        app: TowerToHyperService::new(app),
        conn: conn.clone(),
        shared: shared.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own header timer runs from the moment a connection waits for a head, idle
    // time included, so it cannot tell a stalled head from an idle keep-alive. It is the
    // backstop at the longer of the two; the watchdog below applies each one precisely.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.max(limits.idle_timeout));
    let outcome = {
        let mut connection = pin!(builder.serve_connection(io, service));
        let mut draining = false;
        loop {
            tokio::select! {
                biased;
                result = connection.as_mut() => break result.map_err(|e| e.to_string()),
                watch = watchdog(&shared, &conn, draining) => match watch {
                    Watch::Close(reason) => break Err(format!("{reason:?}")),
                    Watch::Drain => {
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                },
            }
        }
        // The connection, and with it the socket, is dropped here: before the slot is
        // given back, so the cap counts descriptors actually open.
    };
    shared.lock().remove(&conn.id);
    drop(permit);
    match outcome {
        Ok(()) => tracing::trace!(conn = conn.id, "connection closed"),
        Err(reason) => tracing::debug!(conn = conn.id, %reason, "connection closed"),
    }
}

/// Resolves when the connection must close (or start draining): the header or idle deadline
/// passed with no request in flight, the accept loop asked for its slot, or shutdown.
async fn watchdog(shared: &Shared, conn: &Conn, draining: bool) -> Watch {
    let limits = shared.limits;
    loop {
        if shared.closing.load(Ordering::Acquire) {
            return Watch::Close(Closed::ShutdownGrace);
        }
        let shutting_down = shared.draining.load(Ordering::Acquire);
        if shutting_down && !draining {
            return Watch::Drain;
        }
        if conn.in_flight.load(Ordering::Acquire) > 0 {
            if conn.evict.swap(false, Ordering::AcqRel) {
                // A request started after the accept loop chose this one: let it pick again.
                shared.room.notify_one();
            }
            conn.wake.notified().await;
            continue;
        }
        if conn.closable() {
            if shutting_down {
                return Watch::Close(Closed::Draining);
            }
            if conn.evict.load(Ordering::Acquire) {
                return Watch::Close(Closed::Evicted);
            }
        } else if conn.evict.swap(false, Ordering::AcqRel) {
            shared.room.notify_one();
        }
        let head_since = conn.head_since.load(Ordering::Acquire);
        let (deadline, reason) = if head_since > 0 {
            (
                (head_since - 1).saturating_add(millis(limits.header_timeout)),
                Closed::HeaderTimeout,
            )
        } else {
            (
                conn.idle_since
                    .load(Ordering::Acquire)
                    .saturating_add(millis(limits.idle_timeout)),
                Closed::IdleTimeout,
            )
        };
        if shared.now_ms() >= deadline {
            return Watch::Close(reason);
        }
        tokio::select! {
            () = tokio::time::sleep_until(shared.at(deadline)) => {}
            () = conn.wake.notified() => {}
        }
    }
}

/// The connection's socket, noting for the watchdog when a head starts arriving and whether
/// a write is stuck.
struct Watched {
    io: TcpStream,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Watched {
    fn wrote<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.conn
            .write_blocked
            .store(poll.is_pending(), Ordering::Release);
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        let conn = &this.conn;
        if matches!(poll, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && conn.in_flight.load(Ordering::Acquire) == 0
            && conn.head_since.load(Ordering::Acquire) == 0
        {
            // The next head has begun: from now on the header timeout applies, which may be
            // sooner than the idle deadline the watchdog is sleeping towards.
            conn.head_since
                .store(this.shared.now_ms() + 1, Ordering::Release);
            conn.wake.notify_one();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.wrote(poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Marks a request in flight on its connection from its head until its response body has
/// been handed to hyper in full (or dropped): the connection is busy, not closable.
struct InFlight {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl InFlight {
    fn start(conn: Arc<Conn>, shared: Arc<Shared>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.head_since.store(0, Ordering::Release);
        InFlight { conn, shared }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn
                .idle_since
                .store(self.shared.now_ms(), Ordering::Release);
            self.conn.head_since.store(0, Ordering::Release);
            self.conn.wake.notify_one();
            self.shared.room.notify_one();
        }
    }
}

/// The per-connection hyper service: the app, with the body deadline and in-flight tracking.
struct ConnService {
    app: TowerToHyperService<Router>,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let guard = InFlight::start(self.conn.clone(), self.shared.clone());
        let limit = self.shared.limits.body_timeout;
        let timed_out = Arc::new(AtomicBool::new(false));
        let request = request.map(|body| DeadlineBody {
            body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            timed_out: timed_out.clone(),
        });
        let response = self.app.call(request);
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            // Whatever the handler made of the failed read, the client gets a 408 and the
            // connection is not kept: the rest of that body may still be on its way.
            let response = if timed_out.load(Ordering::Acquire) {
                body_timed_out(limit)
            } else {
                response
            };
            Ok(response.map(|body| Tracked {
                body,
                _in_flight: guard,
            }))
        })
    }
}

fn body_timed_out(limit: Duration) -> Response {
    tracing::warn!(
        body_timeout_secs = limit.as_secs_f64(),
        "request body not received in time; answered 408"
    );
    let mut response = (
        StatusCode::REQUEST_TIMEOUT,
        Json(serde_json::json!({
            "error": format!("the request body did not arrive within {limit:?}")
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The error a request body's read fails with once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

/// A request body that fails once its deadline passes while the handler waits for it.
struct DeadlineBody {
    body: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.timed_out.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(BodyTimedOut.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that keeps its request in flight until hyper has taken all of it.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;

    fn limits_from(vars: &[(&str, &str)]) -> Result<ServeLimits, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServeLimits::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn limits_default_and_read_the_variables() {
        assert_eq!(limits_from(&[]).unwrap(), ServeLimits::default());
        let l = limits_from(&[
            (HEADER_TIMEOUT_VAR, "2"),
            (BODY_TIMEOUT_VAR, " 3 "),
            (MAX_CONNECTIONS_VAR, "64"),
        ])
        .unwrap();
        assert_eq!(l.header_timeout, Duration::from_secs(2));
        assert_eq!(l.body_timeout, Duration::from_secs(3));
        assert_eq!(l.max_connections, 64);
        assert_eq!(l.idle_timeout, ServeLimits::default().idle_timeout);
    }

    #[test]
    fn bad_limits_name_the_variable() {
        for (var, value) in [
            (HEADER_TIMEOUT_VAR, "10s"),
            (HEADER_TIMEOUT_VAR, "0"),
            (BODY_TIMEOUT_VAR, "-1"),
            (BODY_TIMEOUT_VAR, "999999999"),
            (MAX_CONNECTIONS_VAR, "0"),
            (MAX_CONNECTIONS_VAR, "many"),
        ] {
            let e = limits_from(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var, "{value}");
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }

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
}
