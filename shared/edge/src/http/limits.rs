//! How long slow clients may hold the server's connections, and how many may be open: the
//! [`ServeLimits`] the accept loop and every connection enforce. The configuration reads them
//! from the environment (`crate::config`, as `Settings::serve`); the server only takes them.

use std::time::Duration;

/// Seconds a connection may take to send a complete request head.
pub const HEADER_TIMEOUT_VAR: &str = "RRSTITCH_HTTP_HEADER_TIMEOUT_SECS";
/// Seconds a request may take to send its whole body, counted from its head.
pub const BODY_TIMEOUT_VAR: &str = "RRSTITCH_HTTP_BODY_TIMEOUT_SECS";
/// Most connections open at once.
pub const MAX_CONNECTIONS_VAR: &str = "RRSTITCH_HTTP_MAX_CONNECTIONS";

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
