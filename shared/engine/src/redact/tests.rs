use super::*;
use crate::chunk::parse;
use serde_json::json;

/// Shared with the browser test, which doubles the recorded form's numbers the same way.
#[allow(dead_code)]
#[path = "../../../../tests/src/form.rs"]
mod form;
use form::doubled;

/// Runs `events` (JSON texts) through one redactor; a dropped event comes out as `None`.
fn run(rules: &str, events: &[String]) -> (Vec<Option<String>>, Redactor) {
    let rules = Rules::from_json(rules).unwrap();
    let mut r = Redactor::new(Arc::new(rules));
    let text = format!(
        r#"{{"session_guid":"g","session_data":[{}],"environment":"e"}}"#,
        events.join(",")
    );
    let chunk = parse(&text).unwrap();
    let out = chunk
        .events
        .iter()
        .map(|e| match r.apply(e) {
            Redacted::Unchanged(raw) => {
                assert!(
                    std::ptr::eq(raw, e.raw),
                    "unchanged is the event's own bytes"
                );
                Some(raw.to_owned())
            }
            Redacted::Replaced(text) => Some(text),
            Redacted::Dropped => None,
        })
        .collect();
    (out, r)
}

fn full(node: Value) -> String {
    json!({"type": 2, "data": {"node": node, "initialOffset": {"left": 0, "top": 0}}, "timestamp": 2})
        .to_string()
}

fn incremental(data: Value) -> String {
    json!({"type": 3, "data": data, "timestamp": 3}).to_string()
}

fn el(id: i64, tag: &str, attrs: Value, children: Vec<Value>) -> Value {
    json!({"type": 2, "tagName": tag, "attributes": attrs, "childNodes": children, "id": id})
}

fn text(id: i64, t: &str) -> Value {
    json!({"type": 3, "textContent": t, "id": id})
}

/// A document: <html><body>...</body></html>, ids 1 (document), 2 (html), 3 (body).
fn doc(body: Vec<Value>) -> Value {
    json!({"type": 0, "childNodes": [el(2, "html", json!({}), vec![el(3, "body", json!({}), body)])], "id": 1})
}

fn value(out: &Option<String>) -> Value {
    serde_json::from_str(out.as_deref().expect("kept")).unwrap()
}

#[test]
fn events_no_rule_can_touch_are_copied_unparsed() {
    let odd =
        r#"{"type":3,"timestamp":1,"data":{"source":1,"positions":[{"x":1.50,"y":2e0,"id":9}]}}"#;
    let events = vec![
        r#"{"type":4,"data":{"href":"https://a.test/"},"timestamp":1}"#.to_owned(),
        odd.to_owned(),
        r#"{"type":3,"timestamp":1,"data":{"source":2,"type":2,"id":3}}"#.to_owned(),
        r#"{"type":6,"timestamp":1,"data":{"plugin":"rrweb/console@1","payload":{}}}"#.to_owned(),
        r#"{"type":5,"timestamp":1,"data":{"tag":"x","payload":{"src":"data:image/png;base64,AAAA"}}}"#.to_owned(),
    ];
    let rules = r#"{"mask_inputs": true, "mask": [{"selector": ".s"}]}"#;
    let (out, r) = run(rules, &events);
    assert_eq!(out, events.iter().cloned().map(Some).collect::<Vec<_>>());
    assert_eq!(r.parsed, 0, "no event of these types and sources is parsed");
    // The same with a data-URL threshold: only the event holding `data:` is read.
    let (out, r) = run(r#"{"data_url_max_bytes": 100}"#, &events);
    assert_eq!(
        out[1].as_deref(),
        Some(odd),
        "byte for byte: number forms kept"
    );
    assert_eq!(r.parsed, 1);
    assert_eq!(
        out[4].as_deref(),
        Some(events[4].as_str()),
        "a short data: URL is kept"
    );
}

#[test]
fn a_snapshot_with_no_match_is_parsed_but_kept_byte_for_byte() {
    let snapshot = full(doc(vec![el(
        4,
        "p",
        json!({"class": "x"}),
        vec![text(5, "hello")],
    )]));
    let (out, r) = run(
        r#"{"mask": [{"selector": ".s"}]}"#,
        std::slice::from_ref(&snapshot),
    );
    assert_eq!(out[0].as_deref(), Some(snapshot.as_str()));
    assert_eq!(r.parsed, 1);
    assert_eq!(r.counts().values_masked, 0);
}

#[test]
fn mask_inputs_masks_input_events_and_form_values_only() {
    let events = vec![
        full(doc(vec![
            el(
                4,
                "input",
                json!({"type": "text", "value": "Margaret"}),
                vec![],
            ),
            el(
                5,
                "select",
                json!({"value": "green"}),
                vec![el(
                    6,
                    "option",
                    json!({"value": "green", "selected": true}),
                    vec![text(7, "Green")],
                )],
            ),
            el(
                8,
                "textarea",
                json!({"value": "typed"}),
                vec![text(9, "default")],
            ),
            el(
                10,
                "li",
                json!({"value": "3", "title": "kept"}),
                vec![text(11, "kept text")],
            ),
            el(
                12,
                "input",
                json!({"type": "Submit", "value": "Send"}),
                vec![],
            ),
        ])),
        incremental(json!({"source": 5, "text": "Margaret Ö", "isChecked": false, "id": 4})),
        incremental(
            json!({"source": 0, "texts": [], "removes": [], "adds": [], "attributes": [{"id": 4, "attributes": {"value": "abc", "class": "x"}}]}),
        ),
    ];
    let (out, r) = run(r#"{"mask_inputs": true}"#, &events);
    let snap = value(&out[0]);
    let body = &snap["data"]["node"]["childNodes"][0]["childNodes"][0]["childNodes"];
    assert_eq!(body[0]["attributes"]["value"], "********");
    assert_eq!(body[1]["attributes"]["value"], "*****");
    assert_eq!(body[1]["childNodes"][0]["attributes"]["value"], "*****");
    assert!(
        body[1]["childNodes"][0]["attributes"]
            .get("selected")
            .is_none(),
        "the chosen option is not marked"
    );
    assert_eq!(
        body[1]["childNodes"][0]["childNodes"][0]["textContent"],
        "*****"
    );
    assert_eq!(body[2]["attributes"]["value"], "*****");
    assert_eq!(body[2]["childNodes"][0]["textContent"], "*******");
    assert_eq!(
        body[3]["attributes"]["value"], "3",
        "an li's value is not a form value"
    );
    assert_eq!(body[3]["childNodes"][0]["textContent"], "kept text");
    assert_eq!(
        body[4]["attributes"]["value"], "Send",
        "a button's label is not input"
    );
    let input = value(&out[1]);
    assert_eq!(input["data"]["text"], "**********", "one * per character");
    assert_eq!(input["data"]["isChecked"], false);
    let attrs = value(&out[2]);
    assert_eq!(
        attrs["data"]["attributes"][0]["attributes"],
        json!({"value": "***", "class": "x"})
    );
    assert_eq!(r.counts().values_masked, 9);
    for o in &out {
        let o = o.as_deref().unwrap();
        assert!(
            !o.contains("Margaret") && !o.contains("typed") && !o.contains("abc"),
            "{o}"
        );
    }
}

#[test]
fn a_masked_element_masks_its_text_attributes_and_what_mutations_add_later() {
    let rules = r#"{"mask": [{"selector": "div.secret", "attributes": ["title"]}, {"selector": "[data-private]"}]}"#;
    let events = vec![
        full(doc(vec![
            el(
                4,
                "div",
                json!({"class": "a secret", "title": "Ann's card", "id": "x"}),
                vec![
                    text(5, "Ann Smith"),
                    el(
                        6,
                        "span",
                        json!({"title": "nested"}),
                        vec![text(7, "4111 1111")],
                    ),
                    el(
                        12,
                        "style",
                        json!({}),
                        vec![
                            json!({"type": 3, "textContent": ".a{color:red}", "isStyle": true, "id": 13}),
                        ],
                    ),
                ],
            ),
            el(
                8,
                "p",
                json!({"title": "public"}),
                vec![text(9, "public text")],
            ),
            el(
                10,
                "b",
                json!({"data-private": ""}),
                vec![text(11, "private")],
            ),
        ])),
        // A child added under the masked div, then under that child; a text change of a
        // masked text node; an attribute change of a masked element; the same of a public one.
        incremental(
            json!({"source": 0, "texts": [{"id": 5, "value": "Bob Jones"}, {"id": 9, "value": "still public"}],
            "attributes": [{"id": 6, "attributes": {"title": "new title", "class": "c"}}, {"id": 8, "attributes": {"title": "public too"}}],
            "removes": [],
            "adds": [
                {"parentId": 4, "nextId": null, "node": el(20, "em", json!({}), vec![])},
                {"parentId": 20, "nextId": null, "node": text(21, "added later")},
                {"parentId": 3, "nextId": null, "node": text(22, "public add")},
            ]}),
        ),
        // Later still: a text change of the node added under the masked element.
        incremental(
            json!({"source": 0, "texts": [{"id": 21, "value": "changed later"}], "attributes": [], "removes": [], "adds": []}),
        ),
    ];
    let (out, r) = run(rules, &events);
    let snap = value(&out[0]);
    let body = &snap["data"]["node"]["childNodes"][0]["childNodes"][0]["childNodes"];
    assert_eq!(
        body[0]["attributes"],
        json!({"class": "a secret", "title": "**********", "id": "x"})
    );
    assert_eq!(body[0]["childNodes"][0]["textContent"], "*** *****");
    assert_eq!(body[0]["childNodes"][1]["attributes"]["title"], "******");
    assert_eq!(
        body[0]["childNodes"][1]["childNodes"][0]["textContent"],
        "**** ****"
    );
    assert_eq!(
        body[0]["childNodes"][2]["childNodes"][0]["textContent"], ".a{color:red}",
        "CSS is left alone"
    );
    assert_eq!(body[1]["attributes"]["title"], "public");
    assert_eq!(body[1]["childNodes"][0]["textContent"], "public text");
    assert_eq!(body[2]["childNodes"][0]["textContent"], "*******");
    let m = value(&out[1]);
    assert_eq!(
        m["data"]["texts"],
        json!([{"id": 5, "value": "*** *****"}, {"id": 9, "value": "still public"}])
    );
    assert_eq!(
        m["data"]["attributes"][0]["attributes"],
        json!({"title": "*********", "class": "c"})
    );
    assert_eq!(
        m["data"]["attributes"][1]["attributes"],
        json!({"title": "public too"})
    );
    assert_eq!(m["data"]["adds"][1]["node"]["textContent"], "***** *****");
    assert_eq!(m["data"]["adds"][2]["node"]["textContent"], "public add");
    let later = value(&out[2]);
    assert_eq!(later["data"]["texts"][0]["value"], "******* *****");
    assert_eq!(r.counts().values_masked, 9);
    assert_eq!(
        count(&r, "values_masked_unknown_node"),
        0,
        "in play order every node is known"
    );
}

#[test]
fn adds_listed_before_their_masked_parent_are_masked() {
    let rules = r#"{"mask": [{"selector": ".s"}]}"#;
    let events = vec![
        full(doc(vec![])),
        incremental(
            json!({"source": 0, "texts": [], "attributes": [], "removes": [], "adds": [
                {"parentId": 31, "nextId": null, "node": text(32, "grandchild")},
                {"parentId": 30, "nextId": null, "node": el(31, "span", json!({}), vec![])},
                {"parentId": 3, "nextId": null, "node": el(30, "div", json!({"class": "s"}), vec![])},
            ]}),
        ),
    ];
    let (out, _) = run(rules, &events);
    let m = value(&out[1]);
    assert_eq!(m["data"]["adds"][0]["node"]["textContent"], "**********");
}

#[test]
fn a_checkout_starts_the_masked_set_again() {
    let rules = r#"{"mask": [{"selector": ".s"}]}"#;
    let events = vec![
        full(doc(vec![el(
            4,
            "div",
            json!({"class": "s"}),
            vec![text(5, "secret")],
        )])),
        // After a checkout node 5 is a public text node: ids are renumbered per snapshot.
        full(doc(vec![el(4, "div", json!({}), vec![text(5, "public")])])),
        incremental(
            json!({"source": 0, "texts": [{"id": 5, "value": "still public"}], "attributes": [], "removes": [], "adds": []}),
        ),
    ];
    let (out, r) = run(rules, &events);
    assert!(out[0].as_deref().unwrap().contains("******"));
    assert_eq!(out[1].as_deref(), Some(events[1].as_str()));
    assert_eq!(out[2].as_deref(), Some(events[2].as_str()));
    assert!(r.masked.is_empty(), "only masked nodes are remembered");
}

#[test]
fn an_input_event_of_a_masked_field_is_masked_without_mask_inputs() {
    let rules = r##"{"mask": [{"selector": "#ssn"}]}"##;
    let events = vec![
        full(doc(vec![
            el(4, "input", json!({"id": "ssn", "value": "123"}), vec![]),
            el(5, "input", json!({"id": "q", "value": "shoes"}), vec![]),
        ])),
        incremental(json!({"source": 5, "text": "1234", "isChecked": false, "id": 4})),
        incremental(json!({"source": 5, "text": "boots", "isChecked": false, "id": 5})),
    ];
    let (out, _) = run(rules, &events);
    assert!(out[0].as_deref().unwrap().contains(r#""value":"***""#));
    assert!(out[0].as_deref().unwrap().contains("shoes"));
    assert_eq!(value(&out[1])["data"]["text"], "****");
    assert_eq!(out[2].as_deref(), Some(events[2].as_str()));
}

#[test]
fn large_data_urls_are_replaced_anywhere_in_a_parsed_event() {
    let big = format!("data:image/png;base64,{}", "A".repeat(200));
    let events = vec![
        full(doc(vec![el(
            4,
            "img",
            json!({"src": big, "alt": "data: small"}),
            vec![],
        )])),
        incremental(json!({"source": 0, "texts": [], "removes": [], "adds": [],
            "attributes": [{"id": 4, "attributes": {"src": big}}]})),
        incremental(
            json!({"source": 9, "id": 7, "commands": [{"args": [{"rr_type": "HTMLImageElement", "src": big}]}]}),
        ),
    ];
    let (out, r) = run(r#"{"data_url_max_bytes": 100}"#, &events);
    for o in &out {
        let o = o.as_deref().unwrap();
        assert!(!o.contains(&big) && o.contains(PLACEHOLDER), "{o}");
    }
    assert!(out[0].as_deref().unwrap().contains("data: small"));
    assert_eq!(r.counts().data_urls_replaced, 3);
}

#[test]
fn dropped_types_and_plugins_are_not_written() {
    let events = vec![
        r#"{"type":6,"timestamp":1,"data":{"plugin":"rrweb/console@1","payload":{"level":"log","payload":["secret"]}}}"#.to_owned(),
        r#"{"type":6,"timestamp":1,"data":{"plugin":"rrweb/sequential-id@1","payload":{"id":1}}}"#.to_owned(),
        r#"{"type":5,"timestamp":1,"data":{"tag":"x","payload":{}}}"#.to_owned(),
        r#"{"type":4,"data":{"href":"https://a.test/"},"timestamp":1}"#.to_owned(),
    ];
    let (out, r) = run(
        r#"{"drop_plugins": ["rrweb/console@1"], "drop_event_types": [5]}"#,
        &events,
    );
    assert_eq!(
        out,
        [None, Some(events[1].clone()), None, Some(events[3].clone())]
    );
    assert_eq!(r.counts().events_dropped, 2);
}

#[test]
fn masking_keeps_the_character_count() {
    assert_eq!(mask_value("Ab c"), "****");
    assert_eq!(mask_value("Öß✓"), "***");
    assert_eq!(mask_value(""), "");
    assert_eq!(mask_text("Ann Smith\n 4111"), "*** *****\n ****");
    assert_eq!(mask_text(" \n"), " \n");
}

/// A count of [`Counts`] by name, as the session's metadata holds it (0 when absent).
fn count(r: &Redactor, name: &str) -> u64 {
    serde_json::to_value(r.counts()).unwrap()[name]
        .as_u64()
        .unwrap_or(0)
}

/// A session touching every number the redactor reads: node types and ids, a mutation's
/// source, parentId and text id, an Input's source and id.
fn numbered_session() -> Vec<Value> {
    vec![
        json!({"type": 4, "data": {"href": "https://a.test/", "width": 800, "height": 600}, "timestamp": 1}),
        serde_json::from_str(&full(doc(vec![
            el(4, "div", json!({"class": "s"}), vec![text(5, "secret-text")]),
            el(6, "input", json!({"value": "secret-value"}), vec![]),
        ])))
        .unwrap(),
        serde_json::from_str(&incremental(json!({"source": 5, "text": "secret-typed", "isChecked": false, "id": 6}))).unwrap(),
        serde_json::from_str(&incremental(json!({"source": 0, "texts": [{"id": 5, "value": "secret-changed"}], "attributes": [], "removes": [],
            "adds": [{"parentId": 4, "nextId": null, "node": text(7, "secret-added")}]}))).unwrap(),
    ]
}

#[test]
fn numbers_written_as_doubles_are_read_as_the_integers_they_are() {
    let rules = r#"{"mask_inputs": true, "mask": [{"selector": ".s"}]}"#;
    let plain: Vec<String> = numbered_session()
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    let doubles: Vec<String> = numbered_session()
        .into_iter()
        .map(|e| doubled(e).to_string())
        .collect();
    assert!(doubles[2].contains(r#""source":5.0"#) && doubles[1].contains(r#""id":4.0"#));
    let (_, control) = run(rules, &plain);
    let (out, r) = run(rules, &doubles);
    assert_eq!(
        control.counts().values_masked,
        5,
        "the control masks all five"
    );
    assert_eq!(
        r.counts(),
        control.counts(),
        "as doubles, the same values are masked"
    );
    for o in &out {
        assert!(!o.as_deref().unwrap().contains("secret"), "{o:?}");
    }
}

#[test]
fn a_node_not_seen_since_the_snapshot_is_masked_and_counted() {
    // A chunk uploaded late but named before the snapshot's: its events are stitched first.
    let rules = r#"{"mask": [{"selector": ".s", "attributes": ["title"]}]}"#;
    let events = vec![
        incremental(
            json!({"source": 0, "texts": [{"id": 5, "value": "early text"}],
            "attributes": [{"id": 4, "attributes": {"title": "early title"}}], "removes": [],
            "adds": [{"parentId": 4, "nextId": null, "node": text(8, "early add")}]}),
        ),
        incremental(json!({"source": 5, "text": "early input", "isChecked": false, "id": 6})),
        full(doc(vec![
            el(4, "div", json!({"class": "s"}), vec![text(5, "secret")]),
            el(6, "input", json!({"value": ""}), vec![]),
            el(7, "p", json!({}), vec![text(9, "public")]),
        ])),
        // In play order, known nodes are what the rules say: public stays public.
        incremental(
            json!({"source": 0, "texts": [{"id": 9, "value": "still public"}], "attributes": [], "removes": [], "adds": [
            {"parentId": 7, "nextId": null, "node": text(10, "public add")}]}),
        ),
        incremental(json!({"source": 5, "text": "public input", "isChecked": false, "id": 6})),
    ];
    let (out, r) = run(rules, &events);
    for o in &out[..2] {
        assert!(!o.as_deref().unwrap().contains("early"), "{o:?}");
    }
    assert_eq!(out[3].as_deref(), Some(events[3].as_str()));
    assert_eq!(out[4].as_deref(), Some(events[4].as_str()));
    assert_eq!(
        count(&r, "values_masked_unknown_node"),
        4,
        "{:?}",
        r.counts()
    );
    assert_eq!(
        r.counts().values_masked,
        5,
        "the four, and the snapshot's text"
    );
}

#[test]
fn a_chosen_option_is_not_kept_under_mask_inputs() {
    let events = vec![
        full(doc(vec![el(
            4,
            "select",
            json!({"value": "green"}),
            vec![
                el(5, "option", json!({"value": "red"}), vec![text(6, "Red")]),
                el(
                    7,
                    "option",
                    json!({"value": "green", "selected": true}),
                    vec![text(8, "Green")],
                ),
            ],
        )])),
        incremental(
            json!({"source": 0, "texts": [{"id": 6, "value": "Crimson"}], "removes": [],
            "attributes": [{"id": 5, "attributes": {"selected": true}}],
            "adds": [
                {"parentId": 4, "nextId": null, "node": el(9, "option", json!({"value": "blue", "selected": ""}), vec![])},
                {"parentId": 9, "nextId": null, "node": text(10, "Blue")},
            ]}),
        ),
    ];
    let (out, r) = run(r#"{"mask_inputs": true}"#, &events);
    for o in &out {
        let o = o.as_deref().unwrap();
        assert!(!o.contains("selected"), "{o}");
        for choice in ["Red", "Green", "Crimson", "Blue", "green", "blue"] {
            assert!(!o.contains(choice), "{choice} in {o}");
        }
    }
    let snap = value(&out[0]);
    let select = &snap["data"]["node"]["childNodes"][0]["childNodes"][0]["childNodes"][0];
    assert_eq!(
        select["childNodes"][1]["childNodes"][0]["textContent"],
        "*****"
    );
    // In the snapshot three values, two option texts and `selected`; in the mutation a
    // text, a `selected`, an added option's value, `selected` and text.
    assert_eq!(r.counts().values_masked, 11, "{:?}", r.counts());
}

#[test]
fn a_textareas_text_added_or_changed_later_is_masked() {
    let events = vec![
        full(doc(vec![el(
            4,
            "textarea",
            json!({}),
            vec![text(5, "loaded")],
        )])),
        incremental(
            json!({"source": 0, "texts": [{"id": 5, "value": "changed secret"}], "attributes": [], "removes": [],
            "adds": [{"parentId": 4, "nextId": null, "node": text(6, "added secret")}]}),
        ),
        incremental(
            json!({"source": 0, "texts": [{"id": 6, "value": "changed again"}], "attributes": [], "removes": [], "adds": []}),
        ),
    ];
    let (out, r) = run(r#"{"mask_inputs": true}"#, &events);
    for o in &out {
        let o = o.as_deref().unwrap();
        assert!(!o.contains("secret") && !o.contains("again"), "{o}");
    }
    assert_eq!(r.counts().values_masked, 4);
}

#[test]
fn comments_and_cdata_under_a_masked_element_are_masked() {
    let events = vec![full(doc(vec![el(
        4,
        "div",
        json!({"class": "s"}),
        vec![
            json!({"type": 5, "textContent": "comment secret", "id": 5}),
            json!({"type": 4, "textContent": "cdata secret", "id": 6}),
        ],
    )]))];
    let (out, r) = run(r#"{"mask": [{"selector": ".s"}]}"#, &events);
    assert!(!out[0].as_deref().unwrap().contains("secret"), "{out:?}");
    assert_eq!(r.counts().values_masked, 2);
}

#[test]
fn data_urls_are_found_in_any_case_and_after_spaces() {
    let big = "A".repeat(200);
    let events = vec![
        incremental(json!({"source": 0, "texts": [], "removes": [], "adds": [],
            "attributes": [{"id": 4, "attributes": {"src": format!("DATA:image/png;base64,{big}")}}]})),
        incremental(
            json!({"source": 9, "id": 7, "commands": [{"args": [{"src": format!(" Data:image/png;base64,{big}")}]}]}),
        ),
        // Escaped letters are the same URL to the player.
        format!(
            r#"{{"type":3,"timestamp":3,"data":{{"source":9,"id":7,"src":"\u0064ata:image/png;base64,{big}"}}}}"#
        ),
    ];
    let (out, r) = run(r#"{"data_url_max_bytes": 100}"#, &events);
    for o in &out {
        assert!(!o.as_deref().unwrap().contains(&big), "{o:?}");
    }
    assert_eq!(r.counts().data_urls_replaced, 3);
}

#[test]
fn dropping_one_console_version_drops_console_output_in_every_form() {
    let events = vec![
        r#"{"type":6,"timestamp":1,"data":{"plugin":"rrweb/console@2","payload":{"level":"log","payload":["secret"]}}}"#.to_owned(),
        r#"{"type":3,"timestamp":1,"data":{"source":11,"level":"log","payload":["secret"],"trace":[]}}"#.to_owned(),
        r#"{"type":6,"timestamp":1,"data":{"plugin":"rrweb/network@1","payload":{}}}"#.to_owned(),
    ];
    let (out, r) = run(r#"{"drop_plugins": ["rrweb/console@1"]}"#, &events);
    assert_eq!(out, [None, None, Some(events[2].clone())]);
    assert_eq!(r.counts().events_dropped, 2);
}

#[test]
fn a_snapshot_nested_past_the_json_readers_limit_is_redacted_not_dropped() {
    for depth in [200, 20_000] {
        // Written as text: a `Value` this deep would overflow the test's own stack.
        let open: String = (0..depth)
            .map(|i| {
                format!(
                    r#"{{"type":2,"tagName":"div","attributes":{{}},"id":{},"childNodes":["#,
                    100 + i
                )
            })
            .collect();
        let nested = format!(r#"{open}{}{}"#, text(99, "deep secret"), "]}".repeat(depth));
        let deep = full(doc(vec![el(
            4,
            "div",
            json!({"class": "s"}),
            vec![json!("NESTED")],
        )]))
        .replace(r#""NESTED""#, &nested);
        assert!(
            serde_json::from_str::<Value>(&deep).is_err(),
            "past serde_json's limit"
        );
        let (out, r) = run(r#"{"mask": [{"selector": ".s"}]}"#, &[deep]);
        let out = out[0].as_deref().expect("the snapshot is kept");
        assert!(
            !out.contains("deep secret") && out.contains("**** ******"),
            "{depth}"
        );
        assert_eq!(r.counts().events_unredactable, 0);
        assert_eq!(r.counts().values_masked, 1);
    }
}
