//! One connection's life: its timers (head, body, idle) watched by a watchdog, its socket
//! wrapped to see the bytes of the next head, and the service that counts requests in flight.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::accept::Shared;
use super::body::{body_timed_out, DeadlineBody, Tracked};
use super::millis;

/// One connection's state, as its task, its service, its socket and the accept loop see it.
pub(super) struct Conn {
    pub(super) id: u64,
    /// Requests whose response has not been handed to the socket completely yet.
    pub(super) in_flight: AtomicUsize,
    /// When the connection was accepted or its last response finished (ms since the epoch).
    pub(super) idle_since: AtomicU64,
    /// 1 + when the head being waited for started: the accept for the first request, the
    /// first byte read while idle for later ones; 0 while idle with nothing read, or busy.
    pub(super) head_since: AtomicU64,
    /// The last write to the socket could not complete: a response is still in hyper's
    /// buffer, so closing now would cut it off.
    pub(super) write_blocked: AtomicBool,
    /// The accept loop asked this connection to close to make room.
    pub(super) evict: AtomicBool,
    /// Wakes the connection's watchdog when any of the above changes.
    pub(super) wake: Notify,
}

impl Conn {
    pub(super) fn new(id: u64, now_ms: u64) -> Self {
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
    pub(super) fn closable(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && !self.write_blocked.load(Ordering::Acquire)
    }
}

/// Why a connection was closed, for the debug log.
#[derive(Debug, Clone, Copy)]
pub(super) enum Closed {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
    Draining,
    ShutdownGrace,
}

pub(super) enum Watch {
    Close(Closed),
    /// Shutdown began: stop keeping the connection alive after the request in flight.
    Drain,
}

pub(super) async fn serve_connection(
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
pub(super) async fn watchdog(shared: &Shared, conn: &Conn, draining: bool) -> Watch {
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
pub(super) struct Watched {
    pub(super) io: TcpStream,
    pub(super) conn: Arc<Conn>,
    pub(super) shared: Arc<Shared>,
}

impl Watched {
    pub(super) fn wrote<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
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
pub(super) struct InFlight {
    pub(super) conn: Arc<Conn>,
    pub(super) shared: Arc<Shared>,
}

impl InFlight {
    pub(super) fn start(conn: Arc<Conn>, shared: Arc<Shared>) -> Self {
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
pub(super) struct ConnService {
    pub(super) app: TowerToHyperService<Router>,
    pub(super) conn: Arc<Conn>,
    pub(super) shared: Arc<Shared>,
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
