//! Any split of an event array into chunks, stored in any order, under names in any time
//! zone, stitches back to the original array — through the real backfill over a real
//! directory.

use std::sync::Arc;

use proptest::prelude::*;
use rrstitch::service::{backfill, backfill::NoProgress, Options};
use rrstitch::storage::{local::LocalStore, ObjectStore, StorageUrl};

fn event() -> impl Strategy<Value = String> {
    (0i64..7, 0u64..1_000_000, "[a-z ]{0,12}", 0u8..3).prop_map(|(kind, ts, text, nest)| {
        let data = match nest {
            0 => format!("{{\"text\":\"{text}\"}}"),
            1 => format!("{{\"source\":2,\"type\":2,\"id\":{ts}}}"),
            _ => format!("{{\"node\":{{\"childNodes\":[{{\"textContent\":\"{text}\"}}]}}}}"),
        };
        format!("{{\"type\":{kind},\"data\":{data},\"timestamp\":{ts}}}")
    })
}

/// Formats second `s` after 2025-05-02T12:00:00Z in a zone `offset_h` hours east.
fn name_at(s: i64, micros: u32, offset_h: i64) -> String {
    let local = 12 * 3600 + s + offset_h * 3600;
    let (h, m, sec) = (local / 3600, local % 3600 / 60, local % 60);
    let sign = if offset_h >= 0 { '+' } else { '-' };
    format!(
        "2025-05-02T{h:02}:{m:02}:{sec:02}.{micros:06}{sign}{:02}00.json",
        offset_h.abs()
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_split_stitches_back(
        events in prop::collection::vec(event(), 0..60),
        cuts in prop::collection::vec(0usize..60, 0..8),
        offsets in prop::collection::vec(-5i64..6, 9),
    ) {
        // Chunk boundaries: sorted, deduplicated cut points within the array.
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(events.len())).collect();
        cuts.push(0);
        cuts.push(events.len());
        cuts.sort_unstable();
        cuts.dedup();
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("bucket");
        std::fs::create_dir_all(&bucket).unwrap();
        for (i, pair) in cuts.windows(2).enumerate() {
            let body = format!(
                "{{\"session_guid\":\"prop\",\"session_data\":[{}],\"environment\":\"e\"}}",
                events[pair[0]..pair[1]].join(",")
            );
            // Distinct zones per chunk: name order differs from time order.
            let name = name_at(i as i64 * 7, i as u32, offsets[i % offsets.len()]);
            std::fs::write(bucket.join(name), body).unwrap();
        }
        if cuts.len() == 1 {
            // No chunk at all: nothing to stitch.
            return Ok(());
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let source: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(StorageUrl::Local(bucket)).unwrap());
        let out_dir = dir.path().join("out");
        let results: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(StorageUrl::Local(out_dir.clone())).unwrap());
        let summary = rt.block_on(backfill(source, results, &Options::default(), &NoProgress)).unwrap();
        prop_assert_eq!(summary.sessions_written, 1);
        let out = std::fs::read_to_string(out_dir.join("prop.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&format!("[{}]", events.join(","))).unwrap();
        // Identical event arrays are skipped as duplicate uploads; compare against the
        // original with such repeats removed.
        let mut seen = std::collections::HashSet::new();
        let mut dedup = Vec::new();
        for pair in cuts.windows(2) {
            let data = events[pair[0]..pair[1]].join(",");
            if seen.insert(data) {
                dedup.extend(events[pair[0]..pair[1]].iter().cloned());
            }
        }
        let dedup: serde_json::Value = serde_json::from_str(&format!("[{}]", dedup.join(","))).unwrap();
        prop_assert_eq!(&v["rrweb_data"], &dedup);
        if seen.len() == cuts.len() - 1 {
            prop_assert_eq!(&v["rrweb_data"], &expected);
        }
    }
}
