//! `rrstitch generate --session-bytes 210MB`: one long session with consistent checkouts.
//!
//! The viewer seeks by rebuilding from the nearest checkout (rrweb's Meta + FullSnapshot) and
//! replaying from there; that only equals "replay everything from the start" when every
//! checkout serializes exactly the DOM the preceding incremental events built, with the node
//! ids rrweb's mirror would still hold. So this generator keeps a small model of its page — a
//! title, a text input and a list of items, each with stable ids, text and a class — applies
//! each mutation it emits to the model, and every `--checkout-every` events writes a checkout
//! from the model's current state.
//!
//! It writes chunk files as it goes (about 512 KiB each, named by upload time): the output is
//! hundreds of megabytes and the debug binary must produce it in seconds, so nothing but the
//! model and the current chunk is held in memory.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rrstitch::time::Millis;

/// Fixed node ids of the page skeleton; list items take ids from `FIRST_DYNAMIC_ID` on.
const DOC: u64 = 1;
const DOCTYPE: u64 = 2;
const HTML: u64 = 3;
const HEAD: u64 = 4;
const BODY: u64 = 5;
const TITLE: u64 = 6;
const TITLE_TEXT: u64 = 7;
const INPUT: u64 = 8;
const LIST: u64 = 9;
const FIRST_DYNAMIC_ID: u64 = 10;

/// A chunk file is cut once its events pass this many bytes.
const CHUNK_BYTES: usize = 512 * 1024;
/// The list stays between these sizes, so the DOM (and a checkout) stays bounded.
const MIN_ITEMS: usize = 20;
const MAX_ITEMS: usize = 80;

const WORDS: &[&str] = &[
    "cart", "checkout", "basket", "apples", "rice", "delivery", "profile", "settings", "search",
    "results", "product", "review", "shipping", "address", "payment", "summary", "order", "list",
];

/// Parses `210MB`, `2MiB`, `500kB`, `1048576`: the one size grammar of every size the
/// project takes ([`rrstitch_edge::config::parse_bytes`]).
pub fn parse_size(raw: &str) -> Result<u64> {
    rrstitch_edge::config::parse_bytes(raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))
}

struct Item {
    li: u64,
    text_id: u64,
    text: String,
    class: u8,
}

/// The page as the incremental events so far have left it.
struct Model {
    title: String,
    input: String,
    scroll: u32,
    items: Vec<Item>,
    next_id: u64,
}

struct Gen {
    rng: StdRng,
    t: i64,
    model: Model,
}

impl Gen {
    fn words(&mut self, min_chars: usize, max_chars: usize) -> String {
        let want = self.rng.gen_range(min_chars..=max_chars);
        let mut s = String::with_capacity(want + 12);
        while s.len() < want {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(WORDS[self.rng.gen_range(0..WORDS.len())]);
        }
        s
    }

    fn new_item(&mut self) -> Item {
        let li = self.model.next_id;
        self.model.next_id += 2;
        let text = self.words(200, 3000);
        Item {
            li,
            text_id: li + 1,
            text,
            class: self.rng.gen_range(0..8),
        }
    }

    fn item_json(out: &mut String, item: &Item) {
        let _ = write!(
            out,
            "{{\"type\":2,\"tagName\":\"li\",\"attributes\":{{\"class\":\"item c{}\"}},\"childNodes\":[{{\"type\":3,\"textContent\":\"{}\",\"id\":{}}}],\"id\":{}}}",
            item.class, item.text, item.text_id, item.li
        );
    }

    fn meta(&self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"type\":4,\"data\":{{\"href\":\"https://shop.example.test/long\",\"width\":1024,\"height\":700}},\"timestamp\":{}}}",
            self.t
        );
    }

    /// A FullSnapshot of the model as it stands: the same ids the mutations used.
    fn full_snapshot(&self, out: &mut String) {
        let m = &self.model;
        let _ = write!(
            out,
            "{{\"type\":2,\"data\":{{\"node\":{{\"type\":0,\"childNodes\":[{{\"type\":1,\"name\":\"html\",\"publicId\":\"\",\"systemId\":\"\",\"id\":{DOCTYPE}}},{{\"type\":2,\"tagName\":\"html\",\"attributes\":{{\"lang\":\"en\"}},\"childNodes\":[{{\"type\":2,\"tagName\":\"head\",\"attributes\":{{}},\"childNodes\":[],\"id\":{HEAD}}},{{\"type\":2,\"tagName\":\"body\",\"attributes\":{{}},\"childNodes\":[{{\"type\":2,\"tagName\":\"h1\",\"attributes\":{{\"class\":\"title\"}},\"childNodes\":[{{\"type\":3,\"textContent\":\"{}\",\"id\":{TITLE_TEXT}}}],\"id\":{TITLE}}},{{\"type\":2,\"tagName\":\"input\",\"attributes\":{{\"type\":\"text\",\"value\":\"{}\"}},\"childNodes\":[],\"id\":{INPUT}}},{{\"type\":2,\"tagName\":\"ul\",\"attributes\":{{\"class\":\"list\"}},\"childNodes\":[",
            m.title, m.input
        );
        for (i, item) in m.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            Self::item_json(out, item);
        }
        let _ = write!(
            out,
            "],\"id\":{LIST}}}],\"id\":{BODY}}}],\"id\":{HTML}}}],\"id\":{DOC}}},\"initialOffset\":{{\"left\":0,\"top\":{}}}}},\"timestamp\":{}}}",
            m.scroll, self.t
        );
    }

    /// One incremental event, applied to the model as it is written.
    fn incremental(&mut self, out: &mut String) {
        self.t += self.rng.gen_range(1..50);
        let roll = self.rng.gen_range(0..100);
        out.push_str("{\"type\":3,\"data\":");
        match roll {
            0..=34 => {
                let n = self.rng.gen_range(1..8);
                out.push_str("{\"source\":1,\"positions\":[");
                for k in 0..n {
                    if k > 0 {
                        out.push(',');
                    }
                    let (x, y) = (self.rng.gen_range(0..1024), self.rng.gen_range(0..700));
                    let _ = write!(
                        out,
                        "{{\"x\":{x},\"y\":{y},\"id\":{BODY},\"timeOffset\":-{}}}",
                        k * 20
                    );
                }
                out.push_str("]}");
            }
            35..=44 => {
                self.model.scroll = self.rng.gen_range(0..4000);
                let _ = write!(
                    out,
                    "{{\"source\":3,\"id\":{DOC},\"x\":0,\"y\":{}}}",
                    self.model.scroll
                );
            }
            45..=54 => {
                self.model.input = self.words(3, 40);
                let _ = write!(
                    out,
                    "{{\"source\":5,\"text\":\"{}\",\"isChecked\":false,\"id\":{INPUT}}}",
                    self.model.input
                );
            }
            55..=59 => {
                self.model.title = self.words(10, 60);
                let _ = write!(
                    out,
                    "{{\"source\":0,\"texts\":[{{\"id\":{TITLE_TEXT},\"value\":\"{}\"}}],\"attributes\":[],\"removes\":[],\"adds\":[]}}",
                    self.model.title
                );
            }
            60..=74 => {
                let k = self.rng.gen_range(0..self.model.items.len());
                let text = self.words(200, 3000);
                let id = self.model.items[k].text_id;
                let _ = write!(
                    out,
                    "{{\"source\":0,\"texts\":[{{\"id\":{id},\"value\":\"{text}\"}}],\"attributes\":[],\"removes\":[],\"adds\":[]}}"
                );
                self.model.items[k].text = text;
            }
            75..=84 => {
                let k = self.rng.gen_range(0..self.model.items.len());
                let class = self.rng.gen_range(0..8);
                self.model.items[k].class = class;
                let _ = write!(
                    out,
                    "{{\"source\":0,\"texts\":[],\"attributes\":[{{\"id\":{},\"attributes\":{{\"class\":\"item c{class}\"}}}}],\"removes\":[],\"adds\":[]}}",
                    self.model.items[k].li
                );
            }
            _ => {
                let n = self.model.items.len();
                let add = n < MIN_ITEMS || (n < MAX_ITEMS && self.rng.gen_bool(0.5));
                if add {
                    // As rrweb records an added subtree: one add per node, parent first (the
                    // replayer builds an added node without its inline children).
                    let item = self.new_item();
                    let _ = write!(
                        out,
                        "{{\"source\":0,\"texts\":[],\"attributes\":[],\"removes\":[],\"adds\":[{{\"parentId\":{LIST},\"nextId\":null,\"node\":{{\"type\":2,\"tagName\":\"li\",\"attributes\":{{\"class\":\"item c{}\"}},\"childNodes\":[],\"id\":{}}}}},{{\"parentId\":{},\"nextId\":null,\"node\":{{\"type\":3,\"textContent\":\"{}\",\"id\":{}}}}}]}}",
                        item.class, item.li, item.li, item.text, item.text_id
                    );
                    self.model.items.push(item);
                } else {
                    let k = self.rng.gen_range(0..n);
                    let item = self.model.items.remove(k);
                    let _ = write!(
                        out,
                        "{{\"source\":0,\"texts\":[],\"attributes\":[],\"removes\":[{{\"parentId\":{LIST},\"id\":{}}}],\"adds\":[]}}",
                        item.li
                    );
                }
            }
        }
        let _ = write!(out, ",\"timestamp\":{}}}", self.t);
    }
}

/// Accumulates events into chunk files of about [`CHUNK_BYTES`].
struct ChunkWriter<'a> {
    dir: &'a Path,
    guid: &'a str,
    environment: &'a str,
    events: String,
    count: usize,
    last_upload_ms: i64,
    files: u64,
    bytes: u64,
}

impl ChunkWriter<'_> {
    fn push(&mut self, event: &str, t: i64) -> Result<()> {
        if !self.events.is_empty() {
            self.events.push(',');
        }
        self.events.push_str(event);
        self.count += 1;
        if self.events.len() >= CHUNK_BYTES {
            self.flush(t)?;
        }
        Ok(())
    }

    fn flush(&mut self, last_t: i64) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        // Uploaded just after its last event, strictly after the previous upload.
        let upload = (last_t + 100).max(self.last_upload_ms + 1);
        self.last_upload_ms = upload;
        let name = format!(
            "{}{:03}+0000.json",
            Millis(upload).to_rfc3339().trim_end_matches('Z'),
            self.files % 1000
        );
        let body = format!(
            "{{\"session_guid\":\"{}\",\"session_data\":[{}],\"environment\":\"{}\"}}",
            self.guid, self.events, self.environment
        );
        std::fs::write(self.dir.join(&name), &body).with_context(|| format!("writing {name}"))?;
        self.files += 1;
        self.bytes += body.len() as u64;
        self.events.clear();
        self.count = 0;
        Ok(())
    }
}

/// Writes one session of at least `target_bytes` of event JSON into `dir`, as chunk files.
pub fn write_long_session(
    dir: &Path,
    target_bytes: u64,
    checkout_every: usize,
    seed: u64,
    environment: &str,
    start_ms: i64,
) -> Result<()> {
    let mut gen = Gen {
        rng: StdRng::seed_from_u64(seed),
        t: start_ms,
        model: Model {
            title: String::new(),
            input: String::new(),
            scroll: 0,
            items: Vec::new(),
            next_id: FIRST_DYNAMIC_ID,
        },
    };
    gen.model.title = gen.words(10, 60);
    for _ in 0..MIN_ITEMS + 10 {
        let item = gen.new_item();
        gen.model.items.push(item);
    }
    let guid = format!("long-{seed}");
    let mut out = ChunkWriter {
        dir,
        guid: &guid,
        environment,
        events: String::with_capacity(CHUNK_BYTES + 64 * 1024),
        count: 0,
        last_upload_ms: 0,
        files: 0,
        bytes: 0,
    };
    let (mut total, mut events, mut checkouts) = (0u64, 0u64, 0u64);
    let mut event = String::new();
    let mut since_checkout = usize::MAX;
    while total < target_bytes {
        if since_checkout >= checkout_every.max(1) {
            // A checkout: Meta then FullSnapshot, one millisecond apart as rrweb records them.
            gen.t += 1;
            for part in 0..2 {
                event.clear();
                if part == 0 {
                    gen.meta(&mut event);
                } else {
                    gen.full_snapshot(&mut event);
                }
                total += event.len() as u64;
                out.push(&event, gen.t)?;
            }
            events += 2;
            checkouts += 1;
            since_checkout = 0;
        }
        event.clear();
        gen.incremental(&mut event);
        total += event.len() as u64;
        out.push(&event, gen.t)?;
        events += 1;
        since_checkout += 1;
    }
    out.flush(gen.t)?;
    eprintln!(
        "generate: session {guid}: {events} events, {checkouts} checkouts, {:.1} MiB of events, \
         {} files ({:.1} MiB) in {}",
        total as f64 / (1024.0 * 1024.0),
        out.files,
        out.bytes as f64 / (1024.0 * 1024.0),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        assert_eq!(parse_size("210MB").unwrap(), 210_000_000);
        assert_eq!(parse_size("2MiB").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_size("1048576").unwrap(), 1_048_576);
        assert!(parse_size("12 parsecs").is_err());
    }

    /// Replays the written events against a tiny DOM of our own (id → text/class/value) and
    /// checks each checkout equals what the incremental events built: the property seeking
    /// relies on.
    #[test]
    fn every_checkout_serializes_the_dom_the_mutations_built() {
        let dir = tempfile::tempdir().unwrap();
        write_long_session(dir.path(), 3_000_000, 300, 7, "test", 1_746_187_850_000).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        let mut events = Vec::new();
        for n in &names {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(n).unwrap()).unwrap();
            events.extend(v["session_data"].as_array().unwrap().iter().cloned());
        }
        // The state: list of (li id, text id, class, text), title, input.
        type State = (Vec<(u64, u64, String, String)>, String, String);
        let snapshot_state = |e: &serde_json::Value| -> State {
            let body = &e["data"]["node"]["childNodes"][1]["childNodes"][1];
            let title = body["childNodes"][0]["childNodes"][0]["textContent"]
                .as_str()
                .unwrap()
                .to_string();
            let input = body["childNodes"][1]["attributes"]["value"]
                .as_str()
                .unwrap()
                .to_string();
            let items = body["childNodes"][2]["childNodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|li| {
                    (
                        li["id"].as_u64().unwrap(),
                        li["childNodes"][0]["id"].as_u64().unwrap(),
                        li["attributes"]["class"].as_str().unwrap().to_string(),
                        li["childNodes"][0]["textContent"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    )
                })
                .collect();
            (items, title, input)
        };
        let mut state: Option<State> = None;
        let mut checked = 0;
        let mut last_ts = 0;
        for e in &events {
            let ts = e["timestamp"].as_i64().unwrap();
            assert!(ts >= last_ts, "timestamps go backwards");
            last_ts = ts;
            match e["type"].as_u64().unwrap() {
                2 => {
                    let snap = snapshot_state(e);
                    if let Some(s) = &state {
                        assert_eq!(s, &snap, "checkout {checked} differs from the replayed DOM");
                        checked += 1;
                    }
                    state = Some(snap);
                }
                3 => {
                    let s = state.as_mut().unwrap();
                    let d = &e["data"];
                    match d["source"].as_u64().unwrap() {
                        5 => s.2 = d["text"].as_str().unwrap().to_string(),
                        0 => {
                            for t in d["texts"].as_array().unwrap() {
                                let (id, v) =
                                    (t["id"].as_u64().unwrap(), t["value"].as_str().unwrap());
                                if id == TITLE_TEXT {
                                    s.1 = v.to_string();
                                } else {
                                    s.0.iter_mut().find(|i| i.1 == id).unwrap().3 = v.to_string();
                                }
                            }
                            for a in d["attributes"].as_array().unwrap() {
                                let id = a["id"].as_u64().unwrap();
                                let class = a["attributes"]["class"].as_str().unwrap();
                                s.0.iter_mut().find(|i| i.0 == id).unwrap().2 = class.to_string();
                            }
                            for r in d["removes"].as_array().unwrap() {
                                let id = r["id"].as_u64().unwrap();
                                let before = s.0.len();
                                s.0.retain(|i| i.0 != id);
                                assert_eq!(s.0.len() + 1, before, "removed an unknown node");
                            }
                            for a in d["adds"].as_array().unwrap() {
                                let node = &a["node"];
                                let parent = a["parentId"].as_u64().unwrap();
                                if parent == LIST {
                                    assert_eq!(node["childNodes"], serde_json::json!([]));
                                    s.0.push((
                                        node["id"].as_u64().unwrap(),
                                        0,
                                        node["attributes"]["class"].as_str().unwrap().to_string(),
                                        String::new(),
                                    ));
                                } else {
                                    // The text of an item added just before, by its own add.
                                    let li = s.0.iter_mut().find(|i| i.0 == parent).unwrap();
                                    li.1 = node["id"].as_u64().unwrap();
                                    li.3 = node["textContent"].as_str().unwrap().to_string();
                                }
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        assert!(checked >= 5, "only {checked} checkouts checked");
    }
}
