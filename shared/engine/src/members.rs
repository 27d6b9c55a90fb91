//! The serde visitors of the one validating pass over a chunk.
//!
//! serde_json validates the whole chunk while these visitors capture, as raw slices of the
//! input, only what rrstitch reads: the top-level fields, and for each event the values of
//! `type`, `timestamp` and `data` plus its first and last member (which locate the event's
//! own bytes, see [`crate::locate`]). Nothing is built: an unread value is skipped by
//! serde_json's loop, not deserialized.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// The top level of a chunk. Each field is captured raw, so `null` and wrong types get a
/// precise reason instead of serde's generic message; unknown fields are skipped.
#[derive(Deserialize)]
pub(crate) struct Top<'a> {
    #[serde(borrow, default, deserialize_with = "some_raw")]
    pub(crate) session_guid: Option<&'a RawValue>,
    /// Split into events in the same pass that reads the top level.
    #[serde(borrow, default, deserialize_with = "some_events")]
    pub(crate) session_data: Option<EventsField<'a>>,
    #[serde(borrow, default, deserialize_with = "some_raw")]
    pub(crate) environment: Option<&'a RawValue>,
}

/// `session_data` as found: what each element holds, or the news that it is not an array.
pub(crate) enum EventsField<'a> {
    Array(Vec<Members<'a>>),
    NotArray,
}

/// What one `session_data` element holds, read in the validating pass: the raw values of
/// the members rrstitch needs, and the first and last member values, which locate the
/// event's own bytes. A problem that is not a JSON syntax error (not an object, a field
/// given twice) is kept here rather than failing the pass, so that a syntax error anywhere
/// in the chunk is still reported as such, as serde_json would.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Members<'a> {
    pub(crate) kind: Option<&'a str>,
    pub(crate) timestamp: Option<&'a str>,
    pub(crate) data: Option<&'a str>,
    pub(crate) first: Option<&'a str>,
    pub(crate) last: Option<&'a str>,
    pub(crate) problem: Option<&'static str>,
}

/// The member names rrstitch reads, in an event and in its `data`; serde_json hands them
/// over unescaped, and a name it cannot borrow (one with escapes) is compared without being
/// allocated.
pub(crate) enum Name {
    Type,
    Timestamp,
    Data,
    /// `data.source`, an incremental snapshot's kind.
    Source,
    Other,
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, name: &str) -> Result<Name, E> {
                Ok(match name {
                    "type" => Name::Type,
                    "timestamp" => Name::Timestamp,
                    "data" => Name::Data,
                    "source" => Name::Source,
                    _ => Name::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an rrweb event")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut m = Members::default();
                while let Some(name) = map.next_key::<Name>()? {
                    let value = map.next_value::<&'de RawValue>()?.get();
                    m.first.get_or_insert(value);
                    m.last = Some(value);
                    let (slot, duplicate) = match name {
                        Name::Type => (&mut m.kind, "duplicate field `type`"),
                        Name::Timestamp => (&mut m.timestamp, "duplicate field `timestamp`"),
                        Name::Data => (&mut m.data, "duplicate field `data`"),
                        Name::Source | Name::Other => continue,
                    };
                    if slot.replace(value).is_some() {
                        m.problem.get_or_insert(duplicate);
                    }
                }
                Ok(m)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Members<'de>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Members::not_an_object())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_str<E>(self, _: &str) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_unit<E>(self) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
        }
        d.deserialize_any(V)
    }
}

impl Members<'_> {
    fn not_an_object() -> Self {
        Members {
            problem: Some("is not a JSON object"),
            ..Members::default()
        }
    }
}

fn some_events<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EventsField<'de>>, D::Error> {
    struct Events;
    impl<'de> serde::de::Visitor<'de> for Events {
        type Value = EventsField<'de>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of rrweb events")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(64));
            while let Some(members) = seq.next_element::<Members<'de>>()? {
                events.push(members);
            }
            Ok(EventsField::Array(events))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(EventsField::NotArray)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
    }
    d.deserialize_any(Events).map(Some)
}

pub(crate) fn some_raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}
