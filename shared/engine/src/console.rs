//! The session's console entries, extracted in the stitch's one pass into `console.jsonl.gz`
//! beside its segments, for a console panel and for search (the seeds' PostHog pipeline
//! keeps them "for separate storage and search").
//!
//! One line per `rrweb/console@1` Plugin event, `{"timestamp","level","message"}`, in
//! stitched order: `timestamp` is the event's, as written; `level` is `log`, `warn` or
//! `error`, as the insights count them (so a panel's filter agrees with
//! `console_*_count`); `message` is the payload's string items, each cut to
//! [`MAX_MESSAGE_CHARS`], joined by a space and cut to the same length again (PostHog's
//! rule). Entries are read from the event's *final* bytes, after redaction, so what a rule
//! masked is masked here too, and a dropped plugin leaves nothing to extract.
//!
//! Memory is the gzip stream of at most [`MAX_CONSOLE_BYTES`] of lines; entries past it are
//! counted ([`ConsoleInfo::skipped`]), not written.

use std::borrow::Cow;
use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use serde_json::Number;

use crate::rrweb::{event_type, CONSOLE_PLUGIN};

/// The longest message (and payload item) kept, in characters.
pub const MAX_MESSAGE_CHARS: usize = 3_000;

/// The most bytes of JSON lines one session's console file holds, uncompressed.
pub const MAX_CONSOLE_BYTES: u64 = 8 << 20;

/// The console file's name inside a generation's folder.
pub const CONSOLE_FILE: &str = "console.jsonl.gz";

/// The console file's object name inside the session's folder.
pub fn console_path(generation: &str) -> String {
    format!("{generation}/{CONSOLE_FILE}")
}

/// What the manifest says of the console file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConsoleInfo {
    /// Relative to the manifest's folder: `<generation>/console.jsonl.gz`.
    pub path: String,
    pub entries: u64,
    /// Bytes of the JSON lines, uncompressed.
    pub bytes: u64,
    /// Bytes stored: the gzip stream.
    pub stored_bytes: u64,
    /// Entries left out because the file reached [`MAX_CONSOLE_BYTES`].
    pub skipped: u64,
}

/// The finished file: its gzip'd body and what the manifest says of it.
#[derive(Debug)]
pub struct ConsoleFile {
    pub body: Vec<u8>,
    pub info: ConsoleInfo,
}

/// One line of the file.
#[derive(Serialize)]
struct Line<'a> {
    timestamp: &'a Number,
    level: &'static str,
    message: &'a str,
}

/// The part of a Plugin event the file needs; everything else is skipped unparsed.
#[derive(Deserialize)]
struct PluginEvent<'a> {
    #[serde(borrow)]
    data: Option<PluginData<'a>>,
}

#[derive(Deserialize)]
struct PluginData<'a> {
    #[serde(borrow)]
    plugin: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<ConsolePayload<'a>>,
}

#[derive(Deserialize)]
struct ConsolePayload<'a> {
    #[serde(borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    payload: Vec<Item<'a>>,
}

/// A payload item: the recorder writes strings (each argument, stringified); anything else
/// is not text and is left out.
#[derive(Deserialize)]
#[serde(untagged)]
enum Item<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    Other(serde::de::IgnoredAny),
}

/// Writes a session's console entries as they stream past.
pub struct ConsoleLog {
    generation: String,
    gz: GzEncoder<Vec<u8>>,
    entries: u64,
    bytes: u64,
    skipped: u64,
    line: Vec<u8>,
}

impl ConsoleLog {
    pub fn new(generation: impl Into<String>) -> Self {
        ConsoleLog {
            generation: generation.into(),
            gz: GzEncoder::new(Vec::new(), Compression::default()),
            entries: 0,
            bytes: 0,
            skipped: 0,
            line: Vec::new(),
        }
    }

    /// One event as written (its final bytes); anything but a console entry is ignored.
    pub fn event(&mut self, kind: i64, timestamp: &Number, bytes: &[u8]) -> io::Result<()> {
        if kind != event_type::PLUGIN {
            return Ok(());
        }
        let Ok(event) = serde_json::from_slice::<PluginEvent<'_>>(bytes) else {
            return Ok(());
        };
        let Some(data) = event.data else {
            return Ok(());
        };
        if data.plugin.as_deref() != Some(CONSOLE_PLUGIN) {
            return Ok(());
        }
        let payload = data.payload.unwrap_or(ConsolePayload {
            level: None,
            payload: Vec::new(),
        });
        let level = match payload.level.as_deref() {
            Some("error" | "assert") => "error",
            Some("warn" | "countReset") => "warn",
            _ => "log",
        };
        let items: Vec<&str> = payload
            .payload
            .iter()
            .filter_map(|item| match item {
                Item::Text(text) => Some(cut(text)),
                Item::Other(_) => None,
            })
            .collect();
        let joined = items.join(" ");
        let line = Line {
            timestamp,
            level,
            message: cut(&joined),
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &line)?;
        self.line.push(b'\n');
        if self.bytes + self.line.len() as u64 > MAX_CONSOLE_BYTES {
            self.skipped += 1;
            return Ok(());
        }
        self.gz.write_all(&self.line)?;
        self.bytes += self.line.len() as u64;
        self.entries += 1;
        Ok(())
    }

    /// The file, or `None` when the session logged nothing (no file is written then).
    pub fn finish(self) -> io::Result<Option<ConsoleFile>> {
        if self.entries == 0 && self.skipped == 0 {
            return Ok(None);
        }
        let body = self.gz.finish()?;
        Ok(Some(ConsoleFile {
            info: ConsoleInfo {
                path: console_path(&self.generation),
                entries: self.entries,
                bytes: self.bytes,
                stored_bytes: body.len() as u64,
                skipped: self.skipped,
            },
            body,
        }))
    }
}

/// `text`'s first [`MAX_MESSAGE_CHARS`] characters.
fn cut(text: &str) -> &str {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn lines(file: &ConsoleFile) -> Vec<serde_json::Value> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&file.body[..])
            .read_to_string(&mut text)
            .unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn log(events: &[&str]) -> Option<ConsoleFile> {
        let mut log = ConsoleLog::new("g1");
        for e in events {
            let v: serde_json::Value = serde_json::from_str(e).unwrap();
            let kind = v["type"].as_i64().unwrap();
            let Some(ts) = v["timestamp"].as_number() else {
                panic!("{e}")
            };
            log.event(kind, ts, e.as_bytes()).unwrap();
        }
        log.finish().unwrap()
    }

    #[test]
    fn entries_are_lines_with_level_and_joined_text() {
        let file = log(&[
            r#"{"type":6,"data":{"plugin":"rrweb/console@1","payload":{"level":"log","trace":[],"payload":["\"hello\"","42"]}},"timestamp":10}"#,
            r#"{"type":6,"data":{"plugin":"rrweb/console@1","payload":{"level":"assert","payload":["\"boom\"",{"not":"text"}]}},"timestamp":11.5}"#,
            r#"{"type":6,"data":{"plugin":"rrweb/console@1","payload":{"level":"countReset","payload":[]}},"timestamp":12}"#,
            r#"{"type":6,"data":{"plugin":"rrweb/network@1","payload":{"level":"error"}},"timestamp":13}"#,
            r#"{"type":3,"data":{"source":2,"type":2},"timestamp":14}"#,
        ])
        .expect("three entries");
        assert_eq!(
            lines(&file),
            [
                serde_json::json!({"timestamp": 10, "level": "log", "message": "\"hello\" 42"}),
                serde_json::json!({"timestamp": 11.5, "level": "error", "message": "\"boom\""}),
                serde_json::json!({"timestamp": 12, "level": "warn", "message": ""}),
            ]
        );
        assert_eq!(file.info.entries, 3);
        assert_eq!(file.info.path, "g1/console.jsonl.gz");
        assert_eq!(file.info.stored_bytes, file.body.len() as u64);
    }

    #[test]
    fn messages_are_cut_by_characters_and_nothing_logged_is_no_file() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let event = format!(
            r#"{{"type":6,"data":{{"plugin":"rrweb/console@1","payload":{{"level":"warn","payload":["{long}","tail"]}}}},"timestamp":1}}"#
        );
        let file = log(&[&event]).unwrap();
        let message = lines(&file)[0]["message"].as_str().unwrap().to_owned();
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(message.chars().all(|c| c == 'é'));
        assert!(log(&[r#"{"type":4,"data":{"href":"x"},"timestamp":1}"#]).is_none());
    }

    #[test]
    fn past_the_cap_entries_are_counted_not_written() {
        let big = "x".repeat(MAX_MESSAGE_CHARS);
        let event = format!(
            r#"{{"type":6,"data":{{"plugin":"rrweb/console@1","payload":{{"level":"log","payload":["{big}"]}}}},"timestamp":1}}"#
        );
        let n = (MAX_CONSOLE_BYTES / MAX_MESSAGE_CHARS as u64) as usize + 50;
        let events: Vec<&str> = std::iter::repeat_n(event.as_str(), n).collect();
        let file = log(&events).unwrap();
        assert!(file.info.bytes <= MAX_CONSOLE_BYTES);
        assert!(file.info.skipped > 0);
        assert_eq!(file.info.entries + file.info.skipped, n as u64);
    }
}
