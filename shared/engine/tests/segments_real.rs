//! A real recording cut into segments smaller than its snapshots: every checkout (a Meta and
//! the FullSnapshot after it) must still start a seekable segment, or a player cannot seek.

mod support;

use std::path::PathBuf;

use rrstitch_engine::{
    decode, parse, SegmentInfo, SegmentLimits, Segmenter, SessionGuid, Stitcher,
};
use support::chunks_in_order;

/// PostHog's Hogflix recording: 4 page loads, each a Meta and a 7.6–12 KB FullSnapshot.
fn hogflix() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/real/posthog-hogflix/chunks")
}

fn segments(limits: SegmentLimits) -> Vec<SegmentInfo> {
    let guid = SessionGuid::parse("real-posthog-hogflix").unwrap();
    let mut stitcher = Stitcher::new(Vec::new(), guid)
        .unwrap()
        .with_segments(Segmenter::new(limits, "gen"));
    let mut out = Vec::new();
    for (name, bytes) in chunks_in_order(&hogflix()) {
        let text = decode(&bytes, false, &Default::default()).unwrap();
        stitcher.push(&name, &parse(&text).unwrap()).unwrap();
        out.extend(std::iter::from_fn(|| stitcher.take_segment()));
    }
    stitcher.end_segments().unwrap();
    out.extend(std::iter::from_fn(|| stitcher.take_segment()));
    let (_, meta) = stitcher.finish().unwrap();
    assert_eq!(meta.full_snapshot_count, 4);
    let events: u64 = out.iter().map(|s| s.info.events).sum();
    assert_eq!(events, 62, "no event lost or repeated");
    out.into_iter().map(|s| s.info).collect()
}

#[test]
fn every_checkout_of_a_real_recording_is_seekable_under_a_cap_below_its_snapshots() {
    // 4 KiB: below every one of the four snapshots (7,633 to 12,019 bytes).
    let infos = segments(SegmentLimits::with_max_bytes(4096));
    let seekable = infos.iter().filter(|i| i.seekable).count();
    // The first page load's DomContentLoaded and Load come before its Meta, so its
    // checkout starts the second segment.
    assert_eq!(
        infos.iter().position(|i| i.seekable),
        Some(1),
        "the first checkout starts no seekable segment"
    );
    assert_eq!(
        seekable,
        4,
        "one seekable segment per checkout, got {seekable} of {} segments",
        infos.len()
    );
    // Only a segment that starts with a checkout may pass the cap.
    for i in infos.iter().filter(|i| i.bytes > 4096) {
        assert!(
            i.seekable,
            "an oversized segment that is no checkout: {i:?}"
        );
    }
}
