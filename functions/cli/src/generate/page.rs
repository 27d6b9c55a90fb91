//! The page the long session records, as a model: a title, a text input and a list of items,
//! each with stable node ids, text and a class. Every incremental event is applied to the model
//! as it is written, so a checkout ([`Gen::meta`] + [`Gen::full_snapshot`]) taken at any point
//! serializes exactly the DOM the events before it built, with the ids rrweb's mirror holds:
//! what the viewer's seek-by-checkout relies on.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::WORDS;

/// Fixed node ids of the page skeleton; list items take ids from `FIRST_DYNAMIC_ID` on.
const DOC: u64 = 1;
const DOCTYPE: u64 = 2;
const HTML: u64 = 3;
const HEAD: u64 = 4;
const BODY: u64 = 5;
const TITLE: u64 = 6;
pub(super) const TITLE_TEXT: u64 = 7;
const INPUT: u64 = 8;
pub(super) const LIST: u64 = 9;
const FIRST_DYNAMIC_ID: u64 = 10;

/// The list stays between these sizes, so the DOM (and a checkout) stays bounded.
const MIN_ITEMS: usize = 20;
const MAX_ITEMS: usize = 80;

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

/// The model and what drives it: the random source and the clock (the last event's time).
pub(super) struct Gen {
    rng: StdRng,
    pub(super) t: i64,
    model: Model,
}

impl Gen {
    /// A page with a title and [`MIN_ITEMS`] + 10 items, at `start_ms`.
    pub(super) fn new(seed: u64, start_ms: i64) -> Gen {
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
        gen
    }

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

    pub(super) fn meta(&self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"type\":4,\"data\":{{\"href\":\"https://shop.example.test/long\",\"width\":1024,\"height\":700}},\"timestamp\":{}}}",
            self.t
        );
    }

    /// A FullSnapshot of the model as it stands: the same ids the mutations used.
    pub(super) fn full_snapshot(&self, out: &mut String) {
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
    pub(super) fn incremental(&mut self, out: &mut String) {
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
