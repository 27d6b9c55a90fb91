//! One HTTP/1.1 GET over a plain socket, the response as sent: for checking what the viewer
//! puts on the wire (`Content-Encoding`, cache headers, a 421 for a foreign `Host`), which an
//! HTTP client that decodes gzip or sets its own `Host` would hide.
//!
//! Needs nothing but std, so the CLI's viewer tests include this file too (`#[path]`) rather
//! than depend on this crate.

use std::io::{Read, Write};
use std::net::TcpStream;

/// `GET path` from `addr` (`127.0.0.1:port`) with the `Host` header `host` and `headers`
/// besides: the response head as text (each line ending `\r\n`) and the body bytes, undecoded.
pub fn get(addr: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> (String, Vec<u8>) {
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).unwrap();
    let mut all = Vec::new();
    conn.read_to_end(&mut all).unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    (
        String::from_utf8_lossy(&all[..split + 2]).into_owned(),
        all[split + 4..].to_vec(),
    )
}
