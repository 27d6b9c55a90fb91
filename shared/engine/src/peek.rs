//! Guid peeking: the session a chunk belongs to, read from its first bytes.
//!
//! Backfill groups a whole bucket by session before it stitches anything; SDKs write
//! `session_guid` first, so a few hundred bytes usually settle it without a full parse.

use crate::guid::SessionGuid;

/// The session a chunk names, read from its first bytes without parsing the rest, when the
/// chunk starts `{"session_guid":"<guid>"` (as SDKs write it); `None` otherwise.
///
/// Only a grouping hint: a chunk found this way is still fully validated before it is
/// stitched, and one that fails is rejected then.
pub fn peek_guid(raw: &[u8]) -> Option<SessionGuid> {
    const KEY: &[u8] = b"\"session_guid\"";
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let skip = |s: &[u8]| -> usize { s.iter().take_while(|b| ws(b)).count() };
    let mut at = skip(raw);
    at += 1;
    if raw.get(at - 1) != Some(&b'{') {
        return None;
    }
    at += skip(&raw[at..]);
    if !raw[at..].starts_with(KEY) {
        return None;
    }
    at += KEY.len();
    at += skip(&raw[at..]);
    if raw.get(at) != Some(&b':') {
        return None;
    }
    at += 1;
    at += skip(&raw[at..]);
    if raw.get(at) != Some(&b'"') {
        return None;
    }
    at += 1;
    let len = raw[at..]
        .iter()
        .take(129)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        .count();
    if raw.get(at + len) != Some(&b'"') {
        return None;
    }
    let guid = std::str::from_utf8(&raw[at..at + len]).ok()?;
    SessionGuid::parse(guid).ok()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_the_guid_of_an_sdk_shaped_chunk_only() {
        let g = |s: &str| peek_guid(s.as_bytes()).map(|g| g.to_string());
        assert_eq!(
            g(r#"{"session_guid":"abc-1","session_data":[]}"#).as_deref(),
            Some("abc-1")
        );
        assert_eq!(
            g(" {\n \"session_guid\" : \"x.y_z\" , broken").as_deref(),
            Some("x.y_z")
        );
        // Anything else is left to the full parse.
        assert_eq!(g(r#"{"environment":"p","session_guid":"abc"}"#), None);
        assert_eq!(g(r#"{"session_guid":"a\u0062"}"#), None);
        assert_eq!(g(r#"{"session_guid":"../x"}"#), None);
        assert_eq!(g(r#"{"session_guid":"__x__"}"#), None);
        assert_eq!(g(r#"{"session_guid":"unterminated"#), None);
        assert_eq!(
            g(&format!(r#"{{"session_guid":"{}"}}"#, "a".repeat(129))),
            None
        );
        assert_eq!(g(""), None);
    }
}
