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

/// A real recording from `fixtures/real/`: its chunk names (in time order) and bodies.
struct Recording {
    name: String,
    chunks: Vec<(String, Vec<u8>)>,
}

/// Every real recording with at least two chunks, read once.
fn recordings() -> &'static [Recording] {
    static ALL: std::sync::OnceLock<Vec<Recording>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real");
        let mut all = Vec::new();
        for entry in std::fs::read_dir(&root).unwrap() {
            let dir = entry.unwrap().path().join("chunks");
            if !dir.is_dir() {
                continue;
            }
            let mut chunks: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| {
                    let path = e.unwrap().path();
                    let name = path.file_name().unwrap().to_str().unwrap().to_string();
                    (name, std::fs::read(&path).unwrap())
                })
                .collect();
            chunks.sort_by_key(|(n, _)| {
                rrstitch::engine::name::ChunkName::parse(n)
                    .unwrap()
                    .instant_ns()
            });
            if chunks.len() >= 2 {
                let name = dir
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                all.push(Recording { name, chunks });
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(
            all.len() >= 10,
            "fixtures/real holds {} recordings",
            all.len()
        );
        all
    })
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff+0000.json` for `ns` since the epoch (UTC).
fn name_at_ns(ns: i128) -> String {
    let micros = ns.div_euclid(1_000);
    let secs = micros.div_euclid(1_000_000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = rrstitch::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+0000.json",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        micros.rem_euclid(1_000_000)
    )
}

#[test]
fn names_round_trip_through_the_engine() {
    for ns in [0i128, 1_746_187_850_123_456_000, 1_701_999_999_999_999_000] {
        let name = name_at_ns(ns);
        let parsed = rrstitch::engine::name::ChunkName::parse(&name).unwrap();
        assert_eq!(parsed.instant_ns(), ns, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Any subset of a real recording's chunks, written in any order and with SDK-style
    /// retries (a chunk re-uploaded later under a new name), stitches to the subset's events
    /// in chunk-time order, each exactly once.
    #[test]
    fn real_recordings_stitch_any_subset_with_retries(
        which in 0usize..64,
        keep in prop::collection::vec(any::<bool>(), 32),
        retries in prop::collection::vec((0usize..32, 1i64..20_000), 0..4),
        order in any::<u64>(),
    ) {
        let all = recordings();
        let rec = &all[which % all.len()];
        let kept: Vec<usize> = (0..rec.chunks.len()).filter(|&i| keep[i % keep.len()]).collect();
        prop_assume!(!kept.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("bucket");
        std::fs::create_dir_all(&bucket).unwrap();
        let mut files: Vec<(String, &[u8])> = kept
            .iter()
            .map(|&i| (rec.chunks[i].0.clone(), rec.chunks[i].1.as_slice()))
            .collect();
        for (k, (pick, delay_ms)) in retries.iter().enumerate() {
            let (name, body) = &rec.chunks[kept[pick % kept.len()]];
            let ns = rrstitch::engine::name::ChunkName::parse(name).unwrap().instant_ns();
            // A retry lands after the original; a few microseconds apart so names stay unique.
            let retry = name_at_ns(ns + i128::from(*delay_ms) * 1_000_000 + k as i128 * 1_000 + 7_000);
            if files.iter().all(|(n, _)| *n != retry) {
                files.push((retry, body.as_slice()));
            }
        }
        // The order objects are written in must not matter.
        let mut shuffled: Vec<usize> = (0..files.len()).collect();
        let mut state = order;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        for i in shuffled {
            std::fs::write(bucket.join(&files[i].0), files[i].1).unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let source: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(StorageUrl::Local(bucket)).unwrap());
        let out_dir = dir.path().join("out");
        let results: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(StorageUrl::Local(out_dir.clone())).unwrap());
        let summary = rt.block_on(backfill(source, results, &Options::default(), &NoProgress)).unwrap();
        prop_assert_eq!(summary.sessions_written, 1, "{}", rec.name);
        let guid: serde_json::Value = serde_json::from_slice(&rec.chunks[0].1).unwrap();
        let guid = guid["session_guid"].as_str().unwrap();
        let out: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join(format!("{guid}.json"))).unwrap()).unwrap();
        // The kept chunks' events, in the chunks' time order, once each.
        let mut expected = Vec::new();
        for &i in &kept {
            let chunk: serde_json::Value = serde_json::from_slice(&rec.chunks[i].1).unwrap();
            expected.extend(chunk["session_data"].as_array().unwrap().iter().cloned());
        }
        let got = out["rrweb_data"].as_array().unwrap();
        prop_assert_eq!(got.len(), expected.len(), "{}: kept {:?}, retries {:?}", rec.name, kept, retries);
        prop_assert_eq!(got, &expected, "{}", rec.name);
        prop_assert_eq!(
            out["metadata"]["chunk_count"].as_u64().unwrap() as usize,
            kept.len(),
            "{}: retries must not count as chunks",
            rec.name
        );
    }
}
