//! How long slow clients may hold the server's connections, and how many may be open: the
//! [`ServeLimits`] the accept loop and every connection enforce.

use std::time::Duration;

use crate::config::ConfigError;

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
