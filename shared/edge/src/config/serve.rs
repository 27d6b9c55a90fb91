//! Where and how the HTTP functions serve: the address they bind (`RRSTITCH_HTTP_HOST`,
//! `PORT`) and the [`ServeLimits`] against slow clients (`RRSTITCH_HTTP_*`). Read here with
//! everything else, so a typo stops the function at start-up, naming the variable, and
//! [`crate::http`] takes the values and never reads the environment.

use super::{ConfigError, Env};
use crate::http::{ServeLimits, BODY_TIMEOUT_VAR, HEADER_TIMEOUT_VAR, MAX_CONNECTIONS_VAR};

/// Longest timeout the variables accept: a day. Anything longer is a typo, and bounding it
/// keeps deadline arithmetic far from overflow.
const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;
/// Most connections the variable accepts: far above any descriptor limit, and small enough
/// for the semaphore's `acquire_many(u32)` at shutdown.
const MAX_MAX_CONNECTIONS: u64 = 1_000_000;

/// The defaults, overridden by `RRSTITCH_HTTP_HEADER_TIMEOUT_SECS`,
/// `RRSTITCH_HTTP_BODY_TIMEOUT_SECS` and `RRSTITCH_HTTP_MAX_CONNECTIONS` (whole numbers, at
/// least 1). A bad value is an error naming the variable, so a typo stops the function at
/// start-up rather than serving unprotected.
pub(super) fn serve_limits(env: &Env) -> Result<ServeLimits, ConfigError> {
    let defaults = ServeLimits::default();
    Ok(ServeLimits {
        header_timeout: env.seconds(
            HEADER_TIMEOUT_VAR,
            defaults.header_timeout,
            1,
            MAX_TIMEOUT_SECS,
        )?,
        body_timeout: env.seconds(BODY_TIMEOUT_VAR, defaults.body_timeout, 1, MAX_TIMEOUT_SECS)?,
        max_connections: env.bounded(
            MAX_CONNECTIONS_VAR,
            defaults.max_connections as u64,
            1,
            MAX_MAX_CONNECTIONS,
        )? as usize,
        ..defaults
    })
}

/// `RRSTITCH_HTTP_HOST` and `PORT` as the `host:port` the functions bind: the host must be an
/// IP address (or `localhost`), checked here so a typo is named rather than failing the bind
/// with a resolver error that names nothing.
pub(super) fn http_addr(env: &Env) -> Result<String, ConfigError> {
    let port = env.bounded("PORT", 8080, 0, u64::from(u16::MAX))? as u16;
    const VAR: &str = "RRSTITCH_HTTP_HOST";
    let host = env.string(VAR).unwrap_or_else(|| "0.0.0.0".into());
    let text = host.trim();
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let ip = match unbracketed.parse::<std::net::IpAddr>() {
        Ok(ip) => ip,
        Err(_) if text.eq_ignore_ascii_case("localhost") => std::net::Ipv4Addr::LOCALHOST.into(),
        Err(_) => {
            return Err(ConfigError {
                var: VAR,
                reason: format!(
                    "{host:?} is not an IP address: use e.g. 0.0.0.0, 127.0.0.1, :: or localhost \
                     (the port is PORT)"
                ),
            })
        }
    };
    Ok(std::net::SocketAddr::new(ip, port).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::settings;
    use std::time::Duration;

    fn limits_from(vars: &[(&str, &str)]) -> Result<ServeLimits, ConfigError> {
        settings(vars).map(|s| s.serve)
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

    #[test]
    fn the_http_address_is_an_ip_and_a_port() {
        assert_eq!(settings(&[]).unwrap().http_addr, "0.0.0.0:8080");
        let s = settings(&[("RRSTITCH_HTTP_HOST", "127.0.0.1"), ("PORT", "9000")]).unwrap();
        assert_eq!(s.http_addr, "127.0.0.1:9000");
        let v6 = settings(&[("RRSTITCH_HTTP_HOST", "::1")]).unwrap();
        assert_eq!(v6.http_addr, "[::1]:8080");
        let named = settings(&[("RRSTITCH_HTTP_HOST", "localhost")]).unwrap();
        assert_eq!(named.http_addr, "127.0.0.1:8080");
    }
}
