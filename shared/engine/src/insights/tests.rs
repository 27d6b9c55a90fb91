//! One test per rule, with the edge cases of its definition.

use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::chunk::parse;
use crate::name::ChunkName;
use crate::redact::Rules;
use crate::stitch::Stitcher;
use crate::{Metadata, SessionGuid};

/// A Meta and a FullSnapshot at 0, so sessions replay; their time matters to the rules
/// below only where a test says so.
const START: [&str; 2] = [
    r#"{"type":4,"data":{"href":"https://a.test/start"},"timestamp":0}"#,
    r#"{"type":2,"data":{"node":{}},"timestamp":0}"#,
];

fn inc(t: u64, data: &str) -> String {
    format!(r#"{{"type":3,"timestamp":{t},"data":{data}}}"#)
}

fn click(t: u64, x: i64, y: i64) -> String {
    inc(
        t,
        &format!(r#"{{"source":2,"type":2,"id":1,"x":{x},"y":{y}}}"#),
    )
}

fn mutation(t: u64) -> String {
    inc(
        t,
        r#"{"source":0,"adds":[],"removes":[],"texts":[],"attributes":[]}"#,
    )
}

fn console(t: u64, level: &str) -> String {
    format!(
        r#"{{"type":6,"timestamp":{t},"data":{{"plugin":"rrweb/console@1","payload":{{"level":{level},"payload":["m"],"trace":[]}}}}}}"#
    )
}

/// Stitches `chunks` in the order given, each a list of events, and returns the metadata.
fn stitch_with(stitcher: Stitcher<Vec<u8>>, chunks: &[Vec<String>]) -> Metadata {
    let mut s = stitcher;
    for (i, events) in chunks.iter().enumerate() {
        let text = format!(
            r#"{{"session_guid":"g","session_data":[{}],"environment":"e"}}"#,
            events.join(",")
        );
        let name = ChunkName::parse(&format!("2025-05-02T12:00:{:02}Z.json", i)).unwrap();
        s.push(&name, &parse(&text).unwrap()).unwrap();
    }
    s.finish().unwrap().1
}

fn stitcher() -> Stitcher<Vec<u8>> {
    Stitcher::new(Vec::new(), SessionGuid::parse("g").unwrap()).unwrap()
}

/// The insights of one chunk holding [`START`] then `events`.
fn insights(events: &[String]) -> Insights {
    let mut all: Vec<String> = START.iter().map(|e| e.to_string()).collect();
    all.extend_from_slice(events);
    stitch_with(stitcher(), &[all]).insights.unwrap()
}

/// The timestamps of the markers of one kind.
fn marked(insights: &Insights, kind: MarkerKind) -> Vec<Number> {
    let of_kind = insights.markers.iter().filter(|m| m.kind == kind);
    of_kind.map(|m| m.timestamp.clone()).collect()
}

#[test]
fn clicks_are_click_context_menu_dblclick_and_touchend() {
    let kinds = [
        ("2", true),
        ("3", true),
        ("4", true),
        ("9", true),
        ("2.0", true),
        ("0", false), // MouseUp
        ("1", false), // MouseDown
        ("5", false), // Focus
        ("7", false), // TouchStart
    ];
    let events: Vec<String> = kinds
        .iter()
        .enumerate()
        .map(|(i, (kind, _))| inc(10 + i as u64, &format!(r#"{{"source":2,"type":{kind}}}"#)))
        .collect();
    let expected = kinds.iter().filter(|(_, counted)| *counted).count() as u64;
    let i = insights(&events);
    assert_eq!(i.click_count, expected);
    assert_eq!(
        i.mouse_activity_count,
        kinds.len() as u64,
        "every MouseInteraction is mouse activity"
    );
    // A Click of another source is not one.
    assert_eq!(
        insights(&[inc(10, r#"{"source":5,"type":2}"#)]).click_count,
        0
    );
}

#[test]
fn keypresses_are_input_events_and_mouse_activity_is_move_interaction_touchmove() {
    let events = [
        inc(1, r#"{"source":5,"text":"a","id":3}"#),
        inc(2, r#"{"source":5,"text":"ab","id":3}"#),
        inc(3, r#"{"source":1,"positions":[]}"#),
        inc(4, r#"{"source":6,"positions":[]}"#),
        inc(5, r#"{"source":3,"id":1,"x":0,"y":9}"#),
        inc(6, r#"{"source":12,"positions":[]}"#),
        mutation(7),
    ];
    let i = insights(&events);
    assert_eq!(i.keypress_count, 2);
    assert_eq!(
        i.mouse_activity_count, 2,
        "MouseMove and TouchMove; not Scroll or Drag"
    );
}

#[test]
fn active_time_joins_gaps_up_to_5000_ms_and_a_lone_event_lasts_1_ms() {
    let moving = |t| inc(t, r#"{"source":1,"positions":[]}"#);
    // 1000..6000 (gap exactly 5000: one span of 5000), 11001 alone (gap 5001: 1 ms),
    // mutations are not activity, and 20000..20300 with a scroll and an input.
    let events = [
        moving(1000),
        moving(6000),
        mutation(8000),
        moving(11001),
        inc(20000, r#"{"source":3,"id":1,"x":0,"y":1}"#),
        inc(20300, r#"{"source":5,"text":"x","id":2}"#),
        mutation(30000),
    ];
    let i = insights(&events);
    assert_eq!(i.active_ms, 5000 + 1 + 300);
    assert_eq!(
        i.inactive_ms,
        30000 - (5000 + 1 + 300),
        "duration less active"
    );
    // Every active source counts: 1,2,3,4,5,6,7,12; 0, 8-11 and 13+ do not.
    for source in 0..=16 {
        let i = insights(&[
            inc(100, &format!(r#"{{"source":{source}}}"#)),
            mutation(5000),
        ]);
        let active = [1, 2, 3, 4, 5, 6, 7, 12].contains(&source);
        assert_eq!(i.active_ms, u64::from(active), "source {source}");
    }
}

#[test]
fn inactive_time_is_never_below_zero() {
    // One active event at the session's only timestamp: duration 0, active 1 ms.
    let m = stitch_with(stitcher(), &[vec![inc(5, r#"{"source":1}"#)]]);
    let i = m.insights.unwrap();
    assert_eq!(
        (m.duration_ms.as_u64(), i.active_ms, i.inactive_ms),
        (Some(0), 1, 0)
    );
}

#[test]
fn console_levels_are_filed_as_posthog_files_them() {
    let events = [
        console(1, r#""error""#),
        console(2, r#""assert""#),
        console(3, r#""warn""#),
        console(4, r#""countReset""#),
        console(5, r#""log""#),
        console(6, r#""info""#),
        console(7, r#""debug""#),
        console(8, "7"),
        r#"{"type":6,"timestamp":9,"data":{"plugin":"rrweb/console@1","payload":{}}}"#.into(),
        r#"{"type":6,"timestamp":10,"data":{"plugin":"rrweb/sequential-id@1","payload":{"level":"error"}}}"#.into(),
        r#"{"type":5,"timestamp":11,"data":{"plugin":"rrweb/console@1","payload":{"level":"error"}}}"#.into(),
    ];
    let i = insights(&events);
    assert_eq!(
        (
            i.console_error_count,
            i.console_warn_count,
            i.console_log_count
        ),
        (2, 2, 5)
    );
    assert_eq!(
        marked(&i, MarkerKind::ConsoleError),
        [Number::from(1), Number::from(2)]
    );
}

/// The console plugin's own layout is read from its prefix; any other layout or escaped
/// strings are parsed, with the same answer.
#[test]
fn console_entries_in_any_layout_are_read_alike() {
    let entry = |data: &str| format!(r#"{{"type":6,"timestamp":1,"data":{data}}}"#);
    let errors = [
        r#"{"plugin":"rrweb/console@1","payload":{"level":"error","payload":["x"]}}"#,
        r#"{"plugin":"rrweb\/console@1","payload":{"level":"error"}}"#,
        r#"{"plugin":"rrweb/console@1","payload":{"level":"err\u006fr"}}"#,
        r#"{"payload":{"trace":[],"level":"error"},"plugin":"rrweb/console@1"}"#,
        r#"{ "plugin": "rrweb/console@1", "payload": { "level": "assert" } }"#,
    ];
    for data in errors {
        assert_eq!(insights(&[entry(data)]).console_error_count, 1, "{data}");
    }
    let not_console = [
        r#"{"plugin":"rrweb/console@2","payload":{"level":"error"}}"#,
        r#"{"plugin":"rrweb/console@1\u0021","payload":{"level":"error"}}"#,
        r#"{"payload":{"level":"error"}}"#,
        r#"[1]"#,
    ];
    for data in not_console {
        let i = insights(&[entry(data)]);
        let all = i.console_error_count + i.console_warn_count + i.console_log_count;
        assert_eq!(all, 0, "{data}");
    }
}

#[test]
fn dropped_console_events_are_not_counted() {
    let rules = Rules::from_json(r#"{"drop_plugins": ["rrweb/console@1"]}"#).unwrap();
    let mut events: Vec<String> = START.iter().map(|e| e.to_string()).collect();
    events.push(console(5, r#""error""#));
    let m = stitch_with(stitcher().with_redaction(Arc::new(rules)), &[events]);
    assert_eq!(m.insights.unwrap().console_error_count, 0);
}

/// Clicks 100 ms apart, a few pixels from each other, then one after a response.
fn rage(n: u64, start: u64) -> Vec<String> {
    (0..n)
        .map(|k| click(start + 100 * k, 50 + k as i64, 50))
        .collect()
}

#[test]
fn a_rage_click_is_three_close_fast_clicks_counted_once() {
    let with_end = |mut events: Vec<String>| {
        events.push(mutation(60_000));
        insights(&events)
    };
    assert_eq!(with_end(rage(2, 1000)).rage_click_count, 0, "2 clicks");
    let three = with_end(rage(3, 1000));
    assert_eq!(three.rage_click_count, 1, "3 clicks");
    assert_eq!(
        marked(&three, MarkerKind::RageClick),
        [Number::from(1200)],
        "at the third click"
    );
    assert_eq!(
        with_end(rage(4, 1000)).rage_click_count,
        1,
        "not again at 4"
    );
    assert_eq!(
        with_end(rage(7, 1000)).rage_click_count,
        1,
        "nor at 5, 6 or 7"
    );
    let mut two_runs = rage(3, 1000);
    two_runs.extend(rage(3, 5000));
    assert_eq!(with_end(two_runs).rage_click_count, 2);
}

#[test]
fn a_rage_run_breaks_at_1000_ms_or_30_px_and_needs_a_position() {
    let count = |events: Vec<String>| insights(&events).rage_click_count;
    // 999 ms apart: a run; exactly 1000: not.
    assert_eq!(
        count(vec![click(0, 5, 5), click(999, 5, 5), click(1998, 5, 5)]),
        1
    );
    assert_eq!(
        count(vec![click(0, 5, 5), click(1000, 5, 5), click(1100, 5, 5)]),
        0
    );
    // |dx| + |dy| = 29: a run; 30: not.
    assert_eq!(
        count(vec![click(0, 0, 0), click(10, 20, 9), click(20, 40, 18)]),
        1
    );
    assert_eq!(
        count(vec![click(0, 0, 0), click(10, 20, 10), click(20, 40, 20)]),
        0
    );
    // A click without numbers for x and y is not part of any run.
    let unpositioned = inc(5, r#"{"source":2,"type":2,"id":1}"#);
    let stringly = inc(6, r#"{"source":2,"type":2,"x":"1","y":1}"#);
    assert_eq!(
        count(vec![
            click(0, 0, 0),
            unpositioned,
            stringly,
            click(10, 0, 0)
        ]),
        0
    );
    // Only Clicks: a DblClick between two clicks neither extends nor breaks.
    let dbl = inc(20, r#"{"source":2,"type":4,"x":0,"y":0}"#);
    assert_eq!(
        count(vec![click(0, 0, 0), dbl, click(30, 0, 0), click(40, 0, 0)]),
        1
    );
}

#[test]
fn rage_clicks_are_judged_in_play_order() {
    // Stitched order (upload order) puts the third click first; played, they are a run.
    let m = stitch_with(
        stitcher(),
        &[
            vec![click(1200, 0, 0), mutation(9000)],
            START.iter().map(|e| e.to_string()).collect(),
            vec![click(1000, 0, 0), click(1100, 0, 0)],
        ],
    );
    assert_eq!(m.insights.unwrap().rage_click_count, 1);
}

#[test]
fn a_dead_click_has_no_response_in_the_next_2500_ms() {
    let dead = |events: Vec<String>| insights(&events).dead_click_count;
    let end = mutation(100_000);
    // A mutation at exactly t + 2500 answers; at t + 2501 it does not; at t neither.
    assert_eq!(
        dead(vec![click(1000, 0, 0), mutation(3500), end.clone()]),
        0
    );
    assert_eq!(
        dead(vec![click(1000, 0, 0), mutation(3501), end.clone()]),
        1
    );
    assert_eq!(
        dead(vec![click(1000, 0, 0), mutation(1000), end.clone()]),
        1
    );
    // Scroll, Selection, Meta and FullSnapshot answer too; a mouse move does not.
    let answers = [
        inc(2000, r#"{"source":3,"id":1,"x":0,"y":5}"#),
        inc(2000, r#"{"source":14,"ranges":[]}"#),
        r#"{"type":4,"data":{"href":"https://a.test/next"},"timestamp":2000}"#.to_owned(),
        r#"{"type":2,"data":{"node":{}},"timestamp":2000}"#.to_owned(),
    ];
    for answer in answers {
        assert_eq!(
            dead(vec![click(1000, 0, 0), answer.clone(), end.clone()]),
            0,
            "{answer}"
        );
    }
    assert_eq!(
        dead(vec![
            click(1000, 0, 0),
            inc(2000, r#"{"source":1}"#),
            end.clone()
        ]),
        1
    );
    // A response stitched before the click (uploaded earlier) still answers it.
    let m = stitch_with(
        stitcher(),
        &[
            vec![mutation(2000)],
            START.iter().map(|e| e.to_string()).collect(),
            vec![click(1000, 0, 0), end.clone()],
        ],
    );
    assert_eq!(m.insights.unwrap().dead_click_count, 0);
}

#[test]
fn a_click_near_the_session_end_is_not_judged() {
    // The last timestamp is 3500: a click at 1000 is judged (1000 + 2500 = 3500), one at
    // 1001 is not.
    let i = insights(&[click(1000, 0, 0), inc(3500, r#"{"source":1}"#)]);
    assert_eq!(i.dead_click_count, 1);
    let i = insights(&[click(1001, 0, 0), inc(3500, r#"{"source":1}"#)]);
    assert_eq!(i.dead_click_count, 0);
    let marks: Vec<MarkerKind> = insights(&[click(1000, 0, 0), inc(3500, r#"{"source":1}"#)])
        .markers
        .iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(marks, [MarkerKind::DeadClick]);
}

#[test]
fn the_first_url_is_the_earliest_metas() {
    let meta =
        |t: u64, href: &str| format!(r#"{{"type":4,"data":{{"href":"{href}"}},"timestamp":{t}}}"#);
    let m = stitch_with(
        stitcher(),
        &[
            vec![meta(500, "https://a.test/later")],
            vec![meta(100, "https://a.test/first")],
        ],
    );
    assert_eq!(
        m.insights.unwrap().first_url.as_deref(),
        Some("https://a.test/first")
    );
    // Ties keep stitched order; no Meta, no URL.
    let m = stitch_with(
        stitcher(),
        &[vec![
            meta(100, "https://a.test/a"),
            meta(100, "https://a.test/b"),
        ]],
    );
    assert_eq!(
        m.insights.unwrap().first_url.as_deref(),
        Some("https://a.test/a")
    );
    let m = stitch_with(stitcher(), &[vec![mutation(1)]]);
    assert_eq!(m.insights.unwrap().first_url, None);
}

#[test]
fn markers_are_the_earliest_200_in_play_order() {
    // 300 errors uploaded latest first, and one dead click at 10.
    let mut events: Vec<String> = (0..300)
        .rev()
        .map(|k| console(1000 + k, r#""error""#))
        .collect();
    events.push(click(10, 0, 0));
    events.push(mutation(100_000));
    let i = insights(&events);
    assert_eq!(i.console_error_count, 300);
    assert_eq!(i.markers.len(), MAX_MARKERS);
    assert_eq!(i.markers[0].kind, MarkerKind::DeadClick);
    assert_eq!(i.markers[1].timestamp, Number::from(1000));
    assert_eq!(i.markers[199].timestamp, Number::from(1000 + 198));
}

#[test]
fn insights_are_in_the_metadata_unless_turned_off() {
    let events: Vec<String> = START.iter().map(|e| e.to_string()).collect();
    let mut s = stitcher();
    let text = format!(
        r#"{{"session_guid":"g","session_data":[{}],"environment":"e"}}"#,
        events.join(",")
    );
    let name = ChunkName::parse("2025-05-02T12:00:00Z.json").unwrap();
    s.push(&name, &parse(&text).unwrap()).unwrap();
    let (out, meta) = s.finish().unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["metadata"]["insights"],
        serde_json::to_value(meta.insights.as_ref().unwrap()).unwrap()
    );
    assert_eq!(
        v["metadata"]["insights"]["first_url"],
        "https://a.test/start"
    );
    let off = stitch_with(stitcher().without_insights(), &[events]);
    assert_eq!(off.insights, None);
    assert!(serde_json::to_value(&off)
        .unwrap()
        .get("insights")
        .is_none());
}

#[test]
fn a_cap_on_clicks_keeps_the_earliest_in_play_order() {
    let mut kept = Clicks::default();
    let n = clicks::MAX_CLICKS as u64 + 10;
    // Latest first, so the cap has to let go of clicks it already holds.
    for k in (0..n).rev() {
        kept.click(
            k as f64 * 10_000.0,
            k,
            &Number::from(k * 10_000),
            Some((0.0, 0.0)),
        );
    }
    let judged = kept.judge(f64::MAX);
    assert_eq!((judged.dropped, judged.approximate), (10, false));
    assert_eq!(
        judged.dead,
        clicks::MAX_CLICKS as u64,
        "only the earliest are judged"
    );
    assert_eq!(judged.marks[0].0, Number::from(0));
}

/// Past the caps (clicks kept, runs of activity), memory stops growing and the metadata's
/// warnings say what became approximate.
#[test]
fn past_the_caps_warnings_say_what_is_approximate() {
    let n = clicks::MAX_CLICKS.max(clusters::MAX_CLUSTERS) as u64 + 10;
    // Clicks 6 s apart: each is its own run of activity, and a dead click.
    let events: Vec<String> = (0..n).map(|k| click(k * 6000, 0, 0)).collect();
    let chunks: Vec<Vec<String>> = events.chunks(20_000).map(<[String]>::to_vec).collect();
    let m = stitch_with(stitcher(), &chunks);
    let i = m.insights.unwrap();
    assert_eq!(i.click_count, n);
    assert_eq!(i.dead_click_count, clicks::MAX_CLICKS as u64);
    let warned = |what: &str| m.warnings.iter().any(|w| w.contains(what));
    assert!(
        warned("were not judged for rage or dead clicks"),
        "{:?}",
        m.warnings
    );
    assert!(
        warned("active time and dead clicks are approximate"),
        "{:?}",
        m.warnings
    );
}

mod any_split {
    //! Insights and the console file are the session's, not its chunking's: any split of the
    //! same events into chunks (in order) gives the same insights and the same console lines.

    use proptest::prelude::*;

    use super::*;
    use crate::console::ConsoleLog;

    /// One event of a kind the rules read, at `t`, unique by `n` (so no boundary repeat is
    /// skipped as a re-sent event).
    fn event(kind: u8, t: u64, n: usize, x: i64) -> String {
        match kind {
            0 => click(t, x, x / 2),
            1 => mutation(t).replace("\"adds\":[]", &format!("\"adds\":[],\"n\":{n}")),
            2 => inc(t, &format!(r#"{{"source":1,"positions":[],"n":{n}}}"#)),
            3 => inc(t, &format!(r#"{{"source":3,"id":{n},"x":0,"y":{x}}}"#)),
            4 => inc(
                t,
                &format!(r#"{{"source":5,"id":{n},"text":"a","isChecked":false}}"#),
            ),
            5 => format!(
                r#"{{"type":4,"data":{{"href":"https://a.test/{n}","width":1,"height":1}},"timestamp":{t}}}"#
            ),
            6 => console(t, "\"error\"").replace("[\"m\"]", &format!("[\"e{n}\"]")),
            _ => console(t, "\"log\"").replace("[\"m\"]", &format!("[\"l{n}\"]")),
        }
    }

    fn stitched(chunks: &[Vec<String>]) -> (Insights, Vec<u8>) {
        let mut s = stitcher().with_console(ConsoleLog::new("g1"));
        for (i, events) in chunks.iter().enumerate() {
            let text = format!(
                r#"{{"session_guid":"g","session_data":[{}],"environment":"e"}}"#,
                events.join(",")
            );
            let name =
                ChunkName::parse(&format!("2025-05-02T12:{:02}:{:02}Z.json", i / 60, i % 60))
                    .unwrap();
            s.push(&name, &parse(&text).unwrap()).unwrap();
        }
        let console = s.finish_console().unwrap();
        let meta = s.finish().unwrap().1;
        let mut lines = Vec::new();
        if let Some(file) = console {
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&file.body[..]),
                &mut lines,
            )
            .unwrap();
        }
        (meta.insights.unwrap(), lines)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn splitting_a_session_changes_no_insight(
            steps in prop::collection::vec((0u8..8, 0u64..3_000, -40i64..40), 1..120),
            cuts in prop::collection::vec(0usize..120, 0..12),
        ) {
            let mut t = 0;
            let mut events: Vec<String> = START.iter().map(|e| e.to_string()).collect();
            for (n, (kind, gap, x)) in steps.into_iter().enumerate() {
                t += gap;
                events.push(event(kind, t, n, x));
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(events.len())).collect();
            cuts.extend([0, events.len()]);
            cuts.sort_unstable();
            cuts.dedup();
            let split: Vec<Vec<String>> = cuts.windows(2).map(|w| events[w[0]..w[1]].to_vec()).collect();
            let (whole, whole_console) = stitched(&[events.clone()]);
            let (parts, parts_console) = stitched(&split);
            prop_assert_eq!(&whole, &parts);
            prop_assert_eq!(whole_console, parts_console);
        }
    }
}
