//! Hostile and broken uploads, each through `Service::ingest` over a real directory and a
//! real SQLite index: every one gets a stable reason recorded in the index, nothing panics,
//! nothing is lost (the object is still there, byte for byte), and a good chunk of another
//! session ingested alongside is unaffected.

mod support;

use std::io::Write as _;
use std::sync::Arc;

use rrstitch::index::SessionIndex;
use rrstitch::service::{IngestOutcome, ObjectRef, Options, Service};
use rrstitch::storage::local::LocalStore;
use rrstitch::storage::StorageUrl;

const NAME: &str = "2025-05-02T12:10:50.644423+0000.json";

fn chunk(guid: &str, events: &str) -> Vec<u8> {
    format!(r#"{{"session_guid":{guid},"session_data":{events},"environment":"production"}}"#)
        .into_bytes()
}

const EVENTS: &str = r#"[{"type":4,"timestamp":1,"data":{"href":"https://x.test/"}}]"#;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn nested(depth: usize) -> Vec<u8> {
    let mut s =
        String::from(r#"{"session_guid":"deep","session_data":[{"type":2,"timestamp":1,"data":"#);
    s.push_str(&"[".repeat(depth));
    s.push_str(&"]".repeat(depth));
    s.push_str(r#"}],"environment":"production"}"#);
    s.into_bytes()
}

/// (object name, body, the reason kind it must get).
fn cases() -> Vec<(String, Vec<u8>, &'static str)> {
    let good = |guid: &str| chunk(&serde_json::to_string(guid).unwrap(), EVENTS);
    // A gzip bomb: under 2 MB that inflates past the 256 MiB default cap.
    let bomb = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(br#"{"session_guid":"bomb","session_data":[],"environment":""#)
            .unwrap();
        let spaces = vec![b' '; 1 << 20];
        for _ in 0..300 {
            enc.write_all(&spaces).unwrap();
        }
        enc.finish().unwrap()
    };
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    let over_cap = {
        let mut v = chunk("\"big\"", EVENTS);
        v.resize(100 << 20, b' ');
        v
    };
    vec![
        (
            "truncated".into(),
            br#"{"session_guid":"a","session_data":[{"type":4,"#.to_vec(),
            "bad_json",
        ),
        (
            "latin1".into(),
            b"{\"session_guid\":\"a\xe9\"}".to_vec(),
            "not_utf8",
        ),
        ("empty".into(), Vec::new(), "empty"),
        ("array".into(), b"[]".to_vec(), "not_an_object"),
        ("null".into(), b"null".to_vec(), "not_an_object"),
        ("string".into(), b"\"hello\"".to_vec(), "not_an_object"),
        (
            "no-guid".into(),
            br#"{"session_data":[],"environment":"p"}"#.to_vec(),
            "missing_field",
        ),
        (
            "no-data".into(),
            br#"{"session_guid":"a","environment":"p"}"#.to_vec(),
            "missing_field",
        ),
        (
            "no-env".into(),
            br#"{"session_guid":"a","session_data":[]}"#.to_vec(),
            "missing_field",
        ),
        ("guid-number".into(), chunk("42", EVENTS), "wrong_type"),
        ("data-object".into(), chunk("\"a\"", "{}"), "wrong_type"),
        (
            "dup-keys".into(),
            br#"{"session_guid":"a","session_guid":"b","session_data":[],"environment":"p"}"#
                .to_vec(),
            "bad_json",
        ),
        (
            "nan".into(),
            chunk("\"a\"", r#"[{"type":3,"timestamp":NaN}]"#),
            "bad_json",
        ),
        (
            "infinity".into(),
            chunk("\"a\"", r#"[{"type":3,"timestamp":Infinity}]"#),
            "bad_json",
        ),
        (
            "no-timestamp".into(),
            chunk("\"a\"", r#"[{"type":3,"data":{}}]"#),
            "bad_event",
        ),
        (
            "string-type".into(),
            chunk("\"a\"", r#"[{"type":"3","timestamp":1}]"#),
            "bad_event",
        ),
        (
            "event-not-object".into(),
            chunk("\"a\"", "[1]"),
            "bad_event",
        ),
        ("over-cap".into(), over_cap, "too_large"),
        ("bomb".into(), bomb, "gzip_too_large"),
        (
            "bad-gzip".into(),
            b"\x1f\x8b\x08\x00garbage".to_vec(),
            "bad_gzip",
        ),
        ("guid-dotdot".into(), good("../../etc/passwd"), "bad_guid"),
        ("guid-slash".into(), good("a/b"), "bad_guid"),
        ("guid-backslash".into(), good("a\\b"), "bad_guid"),
        ("guid-nul".into(), good("a\0b"), "bad_guid"),
        ("guid-control".into(), good("a\nb"), "bad_guid"),
        ("guid-10kb".into(), good(&"a".repeat(10_240)), "bad_guid"),
        ("guid-reserved".into(), good("__x__"), "bad_guid"),
        ("guid-dot".into(), good(".hidden"), "bad_guid"),
        ("guid-empty".into(), good(""), "bad_guid"),
    ]
}

struct Bucket {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    svc: Service,
    index: Arc<dyn SessionIndex>,
}

fn bucket() -> Bucket {
    let scratch = support::scratch();
    let svc = support::service_on(scratch.index.clone(), &scratch.results, Options::default());
    Bucket {
        _dir: scratch.dir,
        path: scratch.bucket,
        svc,
        index: scratch.index,
    }
}

impl Bucket {
    fn object(&self, name: &str) -> ObjectRef {
        ObjectRef {
            bucket: StorageUrl::Local(self.path.clone()),
            name: name.into(),
            generation: None,
        }
    }
}

#[tokio::test]
async fn every_hostile_chunk_gets_its_reason_and_stays_untouched() {
    let b = bucket();
    let cases = cases();
    for (i, (label, body, _)) in cases.iter().enumerate() {
        // Each case in its own "directory", all with a valid chunk name.
        let dir = b.path.join(format!("{i:02}-{label}"));
        std::fs::create_dir_all(&dir).unwrap();
        let suffix = if label.contains("gzip") || *label == "bomb" {
            ".gz"
        } else {
            ""
        };
        std::fs::write(dir.join(format!("{NAME}{suffix}")), body).unwrap();
    }
    std::fs::write(b.path.join(NAME), chunk("\"fine\"", EVENTS)).unwrap();

    for (i, (label, body, kind)) in cases.iter().enumerate() {
        let suffix = if label.contains("gzip") || *label == "bomb" {
            ".gz"
        } else {
            ""
        };
        let name = format!("{i:02}-{label}/{NAME}{suffix}");
        let outcome = b.svc.ingest(&b.object(&name)).await.unwrap();
        match &outcome {
            IngestOutcome::Rejected {
                kind: got, reason, ..
            } => {
                assert_eq!(got, kind, "{label}: {reason}");
                assert!(!reason.is_empty(), "{label}: a reason is given");
            }
            other => panic!("{label}: expected rejection {kind}, got {other:?}"),
        }
        let kept = std::fs::read(b.path.join(&name)).unwrap();
        assert!(kept == *body, "{label}: the object is untouched");
        // Redelivery records nothing new.
        let again = b.svc.ingest(&b.object(&name)).await.unwrap();
        assert!(matches!(again, IngestOutcome::Rejected { .. }), "{label}");
    }
    let fine = b.svc.ingest(&b.object(NAME)).await.unwrap();
    assert!(matches!(fine, IngestOutcome::Recorded { .. }), "{fine:?}");

    let rejected = b.index.rejected(1_000).await.unwrap();
    assert_eq!(rejected.len(), cases.len(), "each recorded once");
    for (label, _, kind) in &cases {
        assert!(
            rejected
                .iter()
                .any(|r| r.name.contains(label.as_str()) && r.kind == *kind),
            "{label} recorded as {kind}"
        );
    }
}

/// Real DOM snapshots nest deeply: 10,000 levels stitch (typed parsing would stop at 128).
#[tokio::test]
async fn ten_thousand_levels_of_nesting_stitch() {
    let b = bucket();
    std::fs::write(b.path.join(NAME), nested(10_000)).unwrap();
    let outcome = b.svc.ingest(&b.object(NAME)).await.unwrap();
    assert!(
        matches!(outcome, IngestOutcome::Recorded { .. }),
        "{outcome:?}"
    );
    let report = b.svc.finalize("deep").await.unwrap();
    assert_eq!(report.events, 1);
}

#[tokio::test]
async fn awkward_object_names() {
    let b = bucket();
    let body = chunk("\"names\"", EVENTS);
    let names = [
        ("with space/2025-05-02T12:10:50Z.json", true),
        ("plus+sign/2025-05-02T12:10:51Z.json", true),
        ("per%cent/2025-05-02T12:10:52Z.json", true),
        ("ünï©ødé/2025-05-02T12:10:53Z.json", true),
        ("2025-05-02T12:10:54Z.json.gz", false),
        ("notes.txt", false),
    ];
    for (name, _) in &names {
        let path = b.path.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let data = if name.ends_with(".gz") {
            gzip(&body)
        } else {
            body.clone()
        };
        std::fs::write(path, data).unwrap();
    }
    for (name, plain) in &names {
        let outcome = b.svc.ingest(&b.object(name)).await.unwrap();
        match (name, plain, &outcome) {
            (_, true, IngestOutcome::Recorded { .. }) => {}
            (n, false, IngestOutcome::Recorded { .. }) if n.ends_with(".gz") => {}
            (n, false, IngestOutcome::Ignored { .. }) if n.ends_with(".txt") => {}
            _ => panic!("{name}: {outcome:?}"),
        }
    }
    // A "directory marker" object (a name ending in `/`) is not a chunk.
    let marker = b.svc.ingest(&b.object("folder/")).await.unwrap();
    assert!(
        matches!(marker, IngestOutcome::Ignored { .. }),
        "{marker:?}"
    );
    let report = b.svc.finalize("names").await.unwrap();
    assert_eq!(report.chunks + report.duplicate_chunks, 5);
}

/// The batch job over the same objects: each is rejected with the same reason — including the
/// ones that name a valid session first thing and break later, which the batch job's first
/// pass groups without parsing — and only the good chunk's session is written.
#[tokio::test]
async fn backfill_rejects_the_same_objects_for_the_same_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let mut cases = cases();
    // Valid guid up front, broken afterwards: only a full parse can tell.
    cases.push((
        "late-break".into(),
        br#"{"session_guid":"late","session_data":[{"type":1,"timestamp":1},{"type":"#.to_vec(),
        "bad_json",
    ));
    cases.push((
        "late-bad-event".into(),
        br#"{"session_guid":"late2","session_data":[{"type":1}],"environment":"p"}"#.to_vec(),
        "bad_event",
    ));
    let mut expected = std::collections::BTreeMap::new();
    for (i, (label, body, kind)) in cases.iter().enumerate() {
        let gz = label.contains("gzip") || *label == "bomb";
        // Flat, as the seed's bucket is: distinct instants keep names unique.
        let name = format!(
            "2025-05-02T12:{:02}:{:02}.000000+0000.json{}",
            i / 60,
            i % 60,
            if gz { ".gz" } else { "" }
        );
        std::fs::write(bucket.join(&name), body).unwrap();
        expected.insert(name, *kind);
    }
    std::fs::write(
        bucket.join("2025-05-02T13:00:00.000000+0000.json"),
        chunk("\"fine\"", EVENTS),
    )
    .unwrap();
    let source = Arc::new(LocalStore::open(StorageUrl::Local(bucket)).unwrap());
    let out = dir.path().join("out");
    let results = Arc::new(LocalStore::open(StorageUrl::Local(out.clone())).unwrap());
    let summary = rrstitch::service::backfill(
        source,
        results,
        &Options::default(),
        &rrstitch::service::backfill::NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(summary.rejected as usize, expected.len(), "{summary:?}");
    for r in &summary.rejected_objects {
        assert_eq!(
            Some(&r.kind.as_str()),
            expected.get(&r.name),
            "{}: {}",
            r.name,
            r.reason
        );
    }
    assert_eq!(summary.sessions_written, 1, "{summary:?}");
    let written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written, ["fine.json"]);
}
