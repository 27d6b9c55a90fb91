//! The viewer's guard against DNS rebinding, kept apart from the routes it wraps: bound to
//! 127.0.0.1, the server still answers only requests addressed to a loopback name, so a web
//! page whose host name an attacker rebinds to 127.0.0.1 gets a 421, not the user's sessions.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Answers a request only when its `Host` is a loopback name (`127.0.0.1`, `localhost`,
/// `[::1]`), alone or with the port served: the 127.0.0.1 bind keeps other machines out, but
/// not a page in the user's browser whose own host name was rebound to 127.0.0.1 (DNS
/// rebinding), and that page sends its own name. Anything else is 421 Misdirected Request.
pub(crate) async fn loopback_only(
    State(port): State<u16>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| is_loopback_host(h, port)) {
        return next.run(request).await;
    }
    (
        StatusCode::MISDIRECTED_REQUEST,
        "rrstitch view answers only http://127.0.0.1, http://localhost or http://[::1]",
    )
        .into_response()
}

fn is_loopback_host(host: &str, port: u16) -> bool {
    let (name, rest) = match host.find(']') {
        Some(end) if host.starts_with('[') => host.split_at(end + 1),
        _ => host.split_at(host.find(':').unwrap_or(host.len())),
    };
    let port_ok = match rest.strip_prefix(':') {
        None => rest.is_empty(),
        Some(p) => p.parse::<u16>() == Ok(port),
    };
    port_ok
        && ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_loopback_names_on_the_served_port_pass() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8787",
            "localhost",
            "LocalHost:8787",
            "[::1]",
            "[::1]:8787",
        ] {
            assert!(is_loopback_host(ok, 8787), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8787",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:8787",
            "127.0.0.1:8788",
            "127.0.0.1:",
            "[::1]8787",
            "::1",
            "",
            "127.0.0.1:8787:8787",
        ] {
            assert!(!is_loopback_host(bad, 8787), "{bad}");
        }
    }
}
