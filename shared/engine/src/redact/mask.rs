//! What masking writes in place of what it hides, and how a `data:` URL is recognised: the
//! string-level rules, apart from the walk over events that decides where they apply.

use memchr::memmem;

/// What a `data:` URL over the threshold becomes: a 1x1 transparent GIF, which any `src`,
/// `href` or `rr_dataURL` accepts, so the replay shows an empty box where the image was.
pub const PLACEHOLDER: &str =
    "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

/// Whether a string is a `data:` URL as a browser reads one: the scheme in any case, after
/// any leading spaces and control characters (which URL parsing strips).
pub(super) fn is_data_url(s: &str) -> bool {
    let s = s.trim_start_matches(|c: char| c <= ' ');
    s.get(..5)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"))
}

/// Whether an event's raw text may hold a `data:` URL: a `:` after `data` in any case, or
/// any `\u` escape (which could spell either). Cheap enough to run on every event: two
/// SIMD passes, one over the colons.
pub(super) fn may_hold_data_url(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    memmem::find(bytes, b"\\u").is_some()
        || memchr::memchr_iter(b':', bytes)
            .any(|at| at >= 4 && bytes[at - 4..at].eq_ignore_ascii_case(b"data"))
}

/// A form value or attribute: one `*` per character, as rrweb's default `maskInputFn` does.
pub fn mask_value(text: &str) -> String {
    "*".repeat(text.chars().count())
}

/// Text: each character but whitespace becomes `*`, as rrweb's default `maskTextFn` does, so
/// lines and words keep their breaks and a replayed page its layout.
pub fn mask_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_whitespace() { c } else { '*' })
        .collect()
}
