//! The accept loop and the state it shares with every connection task: the connection cap
//! (one semaphore permit per open socket), the table of open connections, and the drain at
//! shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::connection::{serve_connection, Conn};
use super::limits::ServeLimits;

/// The accept loop: serves connections from `listener` until `shutdown` completes, then
/// drains them (see the module docs) and returns.
pub(super) async fn run(
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
pub(super) struct Shared {
    pub(super) limits: ServeLimits,
    /// Times are kept as milliseconds since this instant, so they fit in atomics.
    pub(super) epoch: Instant,
    /// One permit per open connection; a task holds its permit until its socket is closed.
    pub(super) slots: Arc<Semaphore>,
    pub(super) conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Wakes the accept loop waiting at the cap: a connection went idle, or turned down an
    /// eviction because a request had just started on it.
    pub(super) room: Notify,
    /// Set at shutdown: idle connections close, busy ones close after their request.
    pub(super) draining: AtomicBool,
    /// Set when the shutdown grace has run out: every connection closes now.
    pub(super) closing: AtomicBool,
}

impl Shared {
    pub(super) fn new(limits: ServeLimits) -> Self {
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

    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(super) fn at(&self, ms: u64) -> Instant {
        rrstitch::time::deadline(self.epoch, Duration::from_millis(ms))
    }

    /// The connection table. A panic while it was held cannot leave it inconsistent (every
    /// change is one insert or remove), so a poisoned lock is used as is.
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a connection slot at the cap, closing the longest-idle connection that has
    /// no request in flight to free one.
    pub(super) async fn make_room(&self) -> OwnedSemaphorePermit {
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
    pub(super) fn evict_one(&self) {
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

    pub(super) fn wake_all(&self) {
        for conn in self.lock().values() {
            conn.wake.notify_one();
        }
    }

    /// Closes idle connections, lets requests in flight finish for up to the grace period,
    /// then closes whatever is left and returns once their sockets are closed.
    pub(super) async fn drain(&self) {
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
