//! Serving the HTTP functions: bind, serve, and stop cleanly on SIGTERM (Cloud Run sends it
//! before stopping an instance; requests in flight finish first).
//!
//! The accept loop is our own rather than `axum::serve`, because a public endpoint has to
//! survive slow clients: a connection that opens and then sends its request head (or body) a
//! byte at a time, or not at all, would otherwise hold its socket and buffers forever, and a
//! few thousand of them exhaust the process's file descriptors so that accepts stop. So
//! [`serve`] enforces the [`ServeLimits`]:
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

mod accept;
mod body;
mod connection;
mod limits;
mod status;

use std::io;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use accept::run;
pub use body::limit_body;
pub use limits::{ServeLimits, BODY_TIMEOUT_VAR, HEADER_TIMEOUT_VAR, MAX_CONNECTIONS_VAR};
pub use status::status_of;

/// A timeout in milliseconds, saturating ([`rrstitch::time::saturating_millis`], never negative).
fn millis(d: Duration) -> u64 {
    rrstitch::time::saturating_millis(d).unsigned_abs()
}

/// Serves `app` on `addr` (`host:port`) under `limits` until SIGTERM or Ctrl-C. The binaries
/// pass what the configuration read (`Settings::serve`); nothing here reads the environment.
pub async fn serve(app: Router, addr: &str, limits: ServeLimits) -> io::Result<()> {
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

#[cfg(test)]
mod tests;
