//! Checks of a session's segmented output (`<guid>/manifest.json` and its segments) against
//! its single file, shared by the cloud flow tests.

use serde_json::Value;

/// Decompresses `bytes` if they are a gzip stream. A bucket may transcode a gzip-encoded
/// object on download (GCS does for a client that does not accept gzip), so a reader may get
/// either.
pub fn gunzip_if_gzip(bytes: Vec<u8>) -> Vec<u8> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return bytes;
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .expect("a valid gzip stream");
    text
}

/// Reads every segment `manifest` lists through `fetch` (given the object name relative to
/// the session's folder) and asserts that together they are `single`'s events, in order, and
/// that the manifest carries `single`'s metadata. Returns the manifest's generation.
pub fn assert_segments_match(
    single: &Value,
    manifest: &Value,
    mut fetch: impl FnMut(&str) -> Vec<u8>,
) -> String {
    assert_eq!(manifest["metadata"], single["metadata"]);
    let segments = manifest["segments"].as_array().expect("a segment list");
    assert!(segments.len() > 1, "{manifest}");
    let mut events = Vec::new();
    for segment in segments {
        let text = gunzip_if_gzip(fetch(segment["path"].as_str().unwrap()));
        let part: Vec<Value> = serde_json::from_slice(&text).unwrap();
        assert_eq!(segment["events"], part.len(), "{segment}");
        events.extend(part);
    }
    assert_eq!(Value::Array(events), single["rrweb_data"]);
    manifest["generation"].as_str().unwrap().to_owned()
}

/// Asserts that every object name in `names` under the session's folder `folder` (ending in
/// `/`) is the manifest or in `generation`: a re-stitch left no older segment behind.
pub fn assert_only_generation<'a>(
    folder: &str,
    generation: &str,
    names: impl IntoIterator<Item = &'a str>,
) {
    for name in names {
        assert!(
            name == format!("{folder}manifest.json")
                || name.starts_with(&format!("{folder}{generation}/")),
            "an old segment is left: {name}"
        );
    }
}
