//! Why a chunk object is refused.
//!
//! Every reason is *permanent*: the same bytes will be refused again, so the object is
//! recorded (never deleted, never retried) and the event acknowledged. Transient failures
//! (a bucket or index that did not answer) are not here: they live in the storage and index
//! errors, and make a function return an error so the platform retries.

use thiserror::Error;

/// A permanent reason to refuse a chunk. The message names what is wrong and where; the
/// caller adds the object name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Reject {
    #[error("name {stem:?} is not a timestamp like 2025-05-02T12:10:50.644423+0000")]
    BadName { stem: String },
    #[error("object is {size} bytes, over the {limit}-byte chunk limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("gzip body expands past the {limit}-byte limit")]
    GzipTooLarge { limit: u64 },
    #[error("gzip body is corrupt: {reason}")]
    BadGzip { reason: String },
    #[error("empty object")]
    Empty,
    #[error("not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("top level is {found}, not a JSON object")]
    NotAnObject { found: &'static str },
    #[error("invalid JSON: {reason}")]
    BadJson { reason: String },
    #[error("missing field `{field}`")]
    MissingField { field: &'static str },
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("session_guid {guid:?} is not 1-128 of [A-Za-z0-9._-] (not starting with '.', not __reserved__)")]
    BadGuid { guid: String },
    #[error("event {index}: {reason}")]
    BadEvent { index: usize, reason: String },
    /// The bucket refused the read for good (permissions, a bad name): retrying cannot help,
    /// so the object is recorded for an operator instead of being redelivered forever.
    #[error("cannot be read: {reason}")]
    Unreadable { reason: String },
    /// A restriction (`RRSTITCH_RESTRICT`) drops the chunk's environment or session.
    #[error("restricted by {rule}")]
    Restricted { rule: String },
    /// The session is outside its environment's sample (`RRSTITCH_RESTRICT`'s `sample`).
    /// `rate` as written in the rules (kept as text so a reject stays `Eq`).
    #[error("sampled out: environment {environment:?} keeps {rate} of its sessions")]
    SampledOut { environment: String, rate: String },
    /// The session's recorded chunks plus this one would pass the per-session quota
    /// (`RRSTITCH_SESSION_MAX_BYTES`). Decided by the index, not by the chunk's bytes: the
    /// same chunk fits a session with room, which is why it is kept in the bucket.
    #[error("over quota: the session holds {recorded_bytes} bytes and this chunk's {size} would pass its {max_bytes}-byte quota")]
    OverQuota {
        size: u64,
        recorded_bytes: u64,
        max_bytes: u64,
    },
}

/// The kind of [`Reject::OverQuota`], which a finalizer looks for among its session's rejects.
pub const OVER_QUOTA: &str = "over_quota";

impl Reject {
    /// A short, stable category for counting and for dashboards.
    pub fn kind(&self) -> &'static str {
        match self {
            Reject::BadName { .. } => "bad_name",
            Reject::TooLarge { .. } => "too_large",
            Reject::GzipTooLarge { .. } => "gzip_too_large",
            Reject::BadGzip { .. } => "bad_gzip",
            Reject::Empty => "empty",
            Reject::NotUtf8 { .. } => "not_utf8",
            Reject::NotAnObject { .. } => "not_an_object",
            Reject::BadJson { .. } => "bad_json",
            Reject::MissingField { .. } => "missing_field",
            Reject::WrongType { .. } => "wrong_type",
            Reject::BadGuid { .. } => "bad_guid",
            Reject::BadEvent { .. } => "bad_event",
            Reject::Unreadable { .. } => "unreadable",
            Reject::Restricted { .. } => "restricted",
            Reject::SampledOut { .. } => "sampled_out",
            Reject::OverQuota { .. } => OVER_QUOTA,
        }
    }
}
