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
/// The session a refused chunk names, if it names one: from its first bytes as
/// [`peek_guid`] reads them, else from a `session_guid` string anywhere at its top level
/// (a whole-JSON read that ignores everything else, so a chunk refused for a bad event or a
/// missing field still says whose it is). `None` when neither finds a valid guid.
///
/// Erasure goes by this: a refused chunk of a session holds that session's personal data,
/// and must go when the session is erased.
pub fn named_guid(text: &str) -> Option<SessionGuid> {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        session_guid: Option<std::borrow::Cow<'a, str>>,
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    peek_guid(text.as_bytes()).or_else(|| {
        let named: Named<'_> = serde_json::from_str(text).ok()?;
        SessionGuid::parse(&named.session_guid?).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_chunk_still_names_its_session_wherever_the_guid_is() {
        let g = |s: &str| named_guid(s).map(|g| g.to_string());
        assert_eq!(
            g(r#"{"session_guid":"abc-1","session_data":[{"type":3.5}]"#).as_deref(),
            Some("abc-1")
        );
        assert_eq!(
            g(r#"{"session_data":[{"type":3.5}],"session_guid":"abc-2"}"#).as_deref(),
            Some("abc-2")
        );
        assert_eq!(
            g(r#"{"session_data":[],"session_guid":"not a guid"}"#),
            None
        );
        assert_eq!(g(r#"{"session_data":[], broken"#), None);
    }

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
