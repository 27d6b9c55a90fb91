//! Byte location: where an event's own bytes are in the chunk's text.
//!
//! The validating pass hands over each event's first and last member values as slices of
//! the input; the event is the stretch from the `{` before the first to the `}` after the
//! last. This is what lets the stitcher copy events byte for byte without a second walk.

/// The stretch of `text` from the start of `first` to the end of `last`, both slices of it.
pub(crate) fn span<'a>(text: &'a str, first: &'a str, last: &'a str) -> &'a str {
    let base = text.as_ptr() as usize;
    let start = first.as_ptr() as usize - base;
    let end = last.as_ptr() as usize - base + last.len();
    &text[start..end]
}

/// The object whose first member's value is `first` and whose last member's value is `last`,
/// both slices of `text`, which serde_json has validated: back from `first` over
/// `{ "name" :` (the name may hold escaped quotes), forward from `last` to the `}`. `None`
/// only if `text` is not what serde_json validated.
pub(crate) fn object_around<'a>(text: &'a str, first: &str, last: &str) -> Option<&'a str> {
    let bytes = text.as_bytes();
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let offset = |s: &str| (s.as_ptr() as usize).checked_sub(text.as_ptr() as usize);
    let back = |mut at: usize| {
        while at > 0 && ws(bytes[at - 1]) {
            at -= 1;
        }
        at
    };
    let expect = |at: usize, want: u8| (at > 0 && bytes[at - 1] == want).then(|| at - 1);

    let mut at = back(offset(first)?);
    at = expect(back(expect(at, b':')?), b'"')?;
    // The name's opening quote: the nearest quote before, not escaped (an even run of
    // backslashes before it).
    loop {
        let quote = memchr::memrchr(b'"', &bytes[..at])?;
        let backslashes = bytes[..quote]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        at = quote;
        if backslashes % 2 == 0 {
            break;
        }
    }
    let start = expect(back(at), b'{')?;

    let mut end = offset(last)? + last.len();
    while bytes.get(end).is_some_and(|&b| ws(b)) {
        end += 1;
    }
    (bytes.get(end) == Some(&b'}')).then(|| &text[start..=end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::parse;
    use crate::members::{some_raw, Members};
    use serde::Deserialize;
    use serde_json::value::RawValue;

    /// serde's derive over the event text: the reference for which members an event has.
    #[derive(Deserialize)]
    struct SerdeHead<'a> {
        #[serde(rename = "type", borrow, default, deserialize_with = "some_raw")]
        kind: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "some_raw")]
        timestamp: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "some_raw")]
        data: Option<&'a RawValue>,
    }

    fn serde_head(text: &str) -> Result<[Option<&str>; 3], ()> {
        let h: SerdeHead<'_> = serde_json::from_str(text).map_err(|_| ())?;
        Ok([h.kind, h.timestamp, h.data].map(|v| v.map(RawValue::get)))
    }

    /// What the validating pass reads from one event, and the bytes it takes for the event.
    fn pass_head(text: &str) -> Result<([Option<&str>; 3], Option<&str>), ()> {
        let m: Members<'_> = serde_json::from_str(text).map_err(|_| ())?;
        if m.problem.is_some() {
            return Err(());
        }
        let raw = m.first.zip(m.last).map(|(f, l)| object_around(text, f, l));
        Ok(([m.kind, m.timestamp, m.data], raw.flatten()))
    }

    fn ws() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec!["", " ", "\n", "\t ", "\r\n"])
    }

    /// An object of members with keys that matter, near misses, escapes and duplicates.
    fn object_text(
        value: impl proptest::strategy::Strategy<Value = String>,
    ) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop::sample::select(vec![
            "type",
            "timestamp",
            "data",
            "t\\u0079pe",
            "x",
            "types",
            "",
            "da\\\"ta",
        ]);
        prop::collection::vec((key, value, ws()), 0..6).prop_map(|members| {
            let members: Vec<String> = members
                .into_iter()
                .map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}{v}{w}"))
                .collect();
            format!("{{{}}}", members.join(","))
        })
    }

    /// JSON text for any value, with whitespace, escapes and brackets inside strings.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            prop::sample::select(vec![
                "0",
                "-12",
                "3.5",
                "1e3",
                "-2.5E-3",
                "true",
                "false",
                "null",
                "9007199254740993",
            ])
            .prop_map(str::to_owned),
            prop::collection::vec(
                prop::sample::select(vec![
                    "a", "\\\"", "\\\\", "\\n", "\\u0079", "]", "}", "{", "[", ",", ":", "é", "😀",
                    " ",
                ]),
                0..6
            )
            .prop_map(|parts| format!("\"{}\"", parts.concat())),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec((inner.clone(), ws()), 0..5).prop_map(|items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(v, w)| format!("{w}{v}{w}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
                object_text(inner),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4_000))]
        #[test]
        fn the_validating_pass_reads_events_as_serde_does(text in object_text(json_text())) {
            serde_json::from_str::<&RawValue>(&text).expect("the generator writes valid JSON");
            let pass = pass_head(&text);
            proptest::prop_assert_eq!(pass.map(|(head, _)| head), serde_head(&text), "{}", text);
            if let Ok((_, raw)) = pass {
                // An object with members is located exactly; `{}` has nothing to locate.
                let want = (text.trim() != "{}").then_some(text.as_str());
                proptest::prop_assert_eq!(raw, want, "{}", text);
            }
        }

        /// Whitespace and escaped names around events in a real array: each event's bytes
        /// are exactly the array element serde_json sees.
        #[test]
        fn events_are_located_exactly_in_their_array(
            events in proptest::collection::vec(object_text(json_text()), 1..4),
            w in ws(),
        ) {
            let events: Vec<String> = events
                .into_iter()
                .map(|e| format!(r#"{{{w}"t\u0079pe"{w}:{w}3,"timestamp":1,"x":{e}{w}}}"#))
                .collect();
            let text = format!(
                r#"{{"session_guid":"g","session_data":[{w}{}{w}],"environment":"e"}}"#,
                events.join(&format!("{w},{w}"))
            );
            let chunk = parse(&text).expect("valid events");
            let raw: Vec<&str> = chunk.events.iter().map(|e| e.raw).collect();
            proptest::prop_assert_eq!(raw, events.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}
