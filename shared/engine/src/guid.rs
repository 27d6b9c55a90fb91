//! The session id, validated once and then trusted everywhere.
//!
//! A `session_guid` comes from a browser, so it is hostile until proven otherwise, and it
//! becomes a file name, an object name and a Firestore document id. The rule is the
//! intersection of what all three accept: 1–128 of `[A-Za-z0-9._-]`, not starting with `.`
//! (no `..`, no hidden files) and not `__…__` (reserved by Firestore). Nothing is normalised:
//! a guid that breaks the rule is rejected, so two different inputs can never map to one file.

use std::fmt;

use crate::reject::Reject;

/// The longest guid accepted.
pub const MAX_GUID_LEN: usize = 128;

/// A `session_guid` that is safe as a path component, object name and document id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionGuid(String);

impl SessionGuid {
    pub fn parse(raw: &str) -> Result<Self, Reject> {
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let reserved = raw.len() >= 4 && raw.starts_with("__") && raw.ends_with("__");
        if raw.is_empty()
            || raw.len() > MAX_GUID_LEN
            || !ok_chars
            || raw.starts_with('.')
            || reserved
        {
            return Err(Reject::BadGuid { guid: shorten(raw) });
        }
        Ok(SessionGuid(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SessionGuid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Keeps a hostile value short enough for a log line or an index field.
fn shorten(raw: &str) -> String {
    const KEEP: usize = 64;
    match raw.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}… ({} bytes)", &raw[..cut], raw.len()),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_plain_ids() {
        for ok in [
            "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33",
            "a",
            "session_1.v2",
            "_x",
            "x__",
        ] {
            assert_eq!(SessionGuid::parse(ok).unwrap().as_str(), ok);
        }
        assert!(SessionGuid::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn rejects_anything_that_could_escape_or_collide() {
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "../etc/passwd",
            "a/b",
            "a\\b",
            "a\0b",
            "tab\there",
            "new\nline",
            "space here",
            "é",
            "__x__",
            "____",
        ] {
            assert!(SessionGuid::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(SessionGuid::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn a_huge_guid_is_reported_short() {
        let err = SessionGuid::parse(&"x/".repeat(5_000)).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
        assert!(err.to_string().contains("10000 bytes"));
    }
}
