//! Many short synthetic sessions (`rrstitch generate --sessions N`), shaped as rrweb 2 records
//! them: a Meta and a deep FullSnapshot, then mouse moves, clicks, scrolls, inputs and DOM
//! mutations from ~76 B to ~28 KB each, cut into chunks of a random size. Sessions overlap in
//! time so their chunks interleave in the bucket as in production; `--duplicates` re-uploads
//! chunks under new names (an SDK retry) and `--bad` adds the junk a real bucket collects.

use std::fmt::Write as _;

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rrstitch::time::Millis;

use super::chunk::{chunk_body, chunk_name, unique_name};
use super::{GenerateArgs, START_MS, WORDS};

/// Writes `args.sessions` sessions, and the duplicates and bad objects asked for, into
/// `args.out` (which exists).
pub fn write_sessions(args: &GenerateArgs) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut written = (0u64, 0u64); // (files, bytes)
    let mut used_names = std::collections::HashSet::new();
    let mut all_chunks: Vec<(String, String)> = Vec::new();
    for s in 0..args.sessions {
        let guid = uuid(&mut rng);
        let start = START_MS + s as i64 * 1_500 + rng.gen_range(0..1_000);
        let mut session = Session::new(&mut rng, args.depth, start);
        let mut events = vec![(session.t, session.meta())];
        let snapshot = session.full_snapshot();
        events.push((session.t, snapshot));
        for _ in 0..args.events {
            let event = session.incremental();
            events.push((session.t, event));
        }
        let mut i = 0;
        while i < events.len() {
            let half = (args.events_per_chunk / 2).max(1);
            let take = session
                .rng
                .gen_range(half..=args.events_per_chunk + half)
                .min(events.len() - i);
            let slice = &events[i..i + take];
            // Uploaded shortly after its last event was recorded.
            let upload_ms = slice[slice.len() - 1].0 + session.rng.gen_range(50..400);
            let name = unique_name(&mut used_names, upload_ms, session.rng);
            let body = chunk_body(
                &guid,
                &args.environment,
                slice.iter().map(|(_, e)| e.as_str()),
            );
            all_chunks.push((name, body));
            i += take;
        }
    }
    for k in 0..args.duplicates.min(all_chunks.len()) {
        let pick = rng.gen_range(0..all_chunks.len());
        let (name, body) = all_chunks[pick].clone();
        let ms = Millis::parse_rfc3339(&name.replace(".json", "")).map_or(START_MS, |m| m.0);
        let retry = unique_name(&mut used_names, ms + 2_000 + k as i64, &mut rng);
        all_chunks.push((retry, body));
    }
    for (name, body) in &all_chunks {
        std::fs::write(args.out.join(name), body)?;
        written.0 += 1;
        written.1 += body.len() as u64;
    }
    for k in 0..args.bad {
        let (name, body) = bad_object(k, &mut rng);
        std::fs::write(args.out.join(&name), body)?;
        written.0 += 1;
    }
    eprintln!(
        "generate: {} sessions, {} files, {:.1} MiB in {}",
        args.sessions,
        written.0,
        written.1 as f64 / (1024.0 * 1024.0),
        args.out.display()
    );
    Ok(())
}

fn uuid(rng: &mut StdRng) -> String {
    let v: u128 = rng.gen();
    let h = format!("{v:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

struct Session<'r> {
    rng: &'r mut StdRng,
    t: i64,
    next_id: u64,
    depth: usize,
}

impl<'r> Session<'r> {
    fn new(rng: &'r mut StdRng, depth: usize, start: i64) -> Self {
        Session {
            rng,
            t: start,
            next_id: 1,
            depth,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn words(&mut self, count: std::ops::Range<usize>) -> String {
        let n = self.rng.gen_range(count);
        (0..n)
            .map(|_| WORDS[self.rng.gen_range(0..WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn meta(&mut self) -> String {
        let page = self.rng.gen_range(1..500);
        format!(
            "{{\"type\":4,\"data\":{{\"href\":\"https://shop.example.test/p/{page}\",\"width\":1280,\"height\":720}},\"timestamp\":{}}}",
            self.t
        )
    }

    fn full_snapshot(&mut self) -> String {
        self.t += 1;
        let mut dom = String::new();
        let html = self.id();
        let _ = write!(
            dom,
            "{{\"type\":0,\"childNodes\":[{{\"type\":1,\"name\":\"html\",\"publicId\":\"\",\"systemId\":\"\",\"id\":{}}},{{\"type\":2,\"tagName\":\"html\",\"attributes\":{{\"lang\":\"en\"}},\"childNodes\":[",
            self.id()
        );
        self.element(&mut dom, self.depth);
        let _ = write!(dom, "],\"id\":{html}}}],\"id\":1}}");
        format!(
            "{{\"type\":2,\"data\":{{\"node\":{dom},\"initialOffset\":{{\"left\":0,\"top\":0}}}},\"timestamp\":{}}}",
            self.t
        )
    }

    /// A nested chain of elements `depth` deep, with a few siblings and texts on the way.
    fn element(&mut self, out: &mut String, depth: usize) {
        let id = self.id();
        let _ = write!(
            out,
            "{{\"type\":2,\"tagName\":\"div\",\"attributes\":{{\"class\":\"level-{depth}\"}},\"childNodes\":["
        );
        let siblings = self.rng.gen_range(1..4);
        for s in 0..siblings {
            if s > 0 {
                out.push(',');
            }
            let text = self.words(2..12);
            let _ = write!(
                out,
                "{{\"type\":3,\"textContent\":\"{text}\",\"id\":{}}}",
                self.id()
            );
        }
        if depth > 0 {
            out.push(',');
            self.element(out, depth - 1);
        }
        let _ = write!(out, "],\"id\":{id}}}");
    }

    fn incremental(&mut self) -> String {
        self.t += self.rng.gen_range(5..400);
        let t = self.t;
        let roll = self.rng.gen_range(0..100);
        let id = self.rng.gen_range(2..self.next_id.max(3));
        let data = match roll {
            0..=44 => {
                let n = self.rng.gen_range(1..10);
                let positions: Vec<String> = (0..n)
                    .map(|k| {
                        format!(
                            "{{\"x\":{},\"y\":{},\"id\":{id},\"timeOffset\":-{}}}",
                            self.rng.gen_range(0..1280),
                            self.rng.gen_range(0..720),
                            k * 50
                        )
                    })
                    .collect();
                format!("{{\"source\":1,\"positions\":[{}]}}", positions.join(","))
            }
            45..=54 => format!(
                "{{\"source\":2,\"type\":2,\"id\":{id},\"x\":{},\"y\":{}}}",
                self.rng.gen_range(0..1280),
                self.rng.gen_range(0..720)
            ),
            55..=64 => format!(
                "{{\"source\":3,\"id\":1,\"x\":0,\"y\":{}}}",
                self.rng.gen_range(0..4000)
            ),
            65..=74 => {
                let text = self.words(1..5);
                format!("{{\"source\":5,\"text\":\"{text}\",\"isChecked\":false,\"id\":{id}}}")
            }
            _ => self.mutation(id),
        };
        format!("{{\"type\":3,\"data\":{data},\"timestamp\":{t}}}")
    }

    /// A DOM mutation of log-uniform size between ~200 B and ~28 KB.
    fn mutation(&mut self, parent: u64) -> String {
        let target =
            (200f64.ln() + self.rng.gen::<f64>() * (28_000f64.ln() - 200f64.ln())).exp() as usize;
        let mut adds = String::new();
        while adds.len() < target {
            if !adds.is_empty() {
                adds.push(',');
            }
            let text = self.words(3..20);
            let (li, tx) = (self.id(), self.id());
            let _ = write!(
                adds,
                "{{\"parentId\":{parent},\"nextId\":null,\"node\":{{\"type\":2,\"tagName\":\"li\",\"attributes\":{{\"class\":\"item\"}},\"childNodes\":[{{\"type\":3,\"textContent\":\"{text}\",\"id\":{tx}}}],\"id\":{li}}}}}"
            );
        }
        format!(
            "{{\"source\":0,\"texts\":[],\"attributes\":[{{\"id\":{parent},\"attributes\":{{\"class\":\"changed\"}}}}],\"removes\":[],\"adds\":[{adds}]}}"
        )
    }
}

/// Objects a bucket collects in real life that are not valid chunks.
fn bad_object(k: usize, rng: &mut StdRng) -> (String, Vec<u8>) {
    let ms = START_MS + rng.gen_range(0..60_000);
    // A chunk's name, but for the last case.
    let name = chunk_name(ms, (k % 1000) as u32);
    match k % 5 {
        0 => (
            name,
            b"{\"session_guid\":\"truncated\",\"session_da".to_vec(),
        ),
        1 => (
            format!("upload-{k}.json"),
            b"{\"session_guid\":\"x\",\"session_data\":[],\"environment\":\"e\"}".to_vec(),
        ),
        2 => (
            name,
            b"{\"session_guid\":\"../../etc/passwd\",\"session_data\":[],\"environment\":\"e\"}"
                .to_vec(),
        ),
        3 => (
            name,
            b"{\"session_guid\":\"no-ts\",\"session_data\":[{\"type\":3}],\"environment\":\"e\"}"
                .to_vec(),
        ),
        _ => (format!("README-{k}.txt"), b"not a chunk".to_vec()),
    }
}
