//! What `rrstitch status` (the finalize service's `/status`) says once a flow test has erased
//! its one session, on either cloud.

use serde_json::{json, Value};

/// One tombstone, nothing open or finalizing, and an inline sweep that finalized `sessions`
/// as the last one.
pub fn assert_after_erasure(status: &Value, sessions: u64) {
    assert_eq!(status["tombstones"], 1, "{status}");
    assert_eq!(
        (&status["open"], &status["finalizing"]),
        (&json!(0), &json!(0)),
        "{status}"
    );
    assert_eq!(status["last_sweep"]["mode"], "inline", "{status}");
    assert_eq!(status["last_sweep"]["sessions"], sessions, "{status}");
}
