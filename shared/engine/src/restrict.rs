//! Ingestion restrictions: which chunks are refused before anything else is done with them.
//!
//! PostHog's consumer applies its restrictions first (drop a token's or an id's events) and
//! samples per team; rrstitch does the same from a small JSON document read once at start-up
//! (`RRSTITCH_RESTRICT`), so a typo stops the process instead of recording what the operator
//! meant to drop:
//!
//! ```json
//! {"drop_environments": ["staging"], "drop_guids": ["bot-*"], "sample": {"production": 0.25}}
//! ```
//!
//! The decision reads only a chunk's head — its `session_guid` and `environment` — never its
//! events ([`Head::read`] skips `session_data` without building anything), and it is
//! deterministic: sampling keeps a session when a hash of its guid falls under the rate, so
//! every chunk of a session gets the same answer on every instance, on every retry and in
//! every release (xxh3 is a specified hash).

use std::collections::BTreeMap;

use serde::Deserialize;

/// The seed of the sampling hash. Not the index's shard hash (unseeded xxh3), so which
/// sessions are sampled out is independent of which shard they land in.
const SAMPLE_SEED: u64 = 0x7272_7374_6974_6368; // "rrstitch"

/// Why a restrictions document was refused.
#[derive(Debug, thiserror::Error)]
pub enum RestrictError {
    /// Not JSON, an unknown key, a value of the wrong type.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("sample rate for environment {environment:?} is {rate}: it must be from 0 to 1")]
    Rate { environment: String, rate: f64 },
    #[error("drop_guids pattern {0:?} is empty: it would match every session")]
    EmptyPattern(String),
}

/// The document as written; unknown keys are refused so a misspelt rule is not silently off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    drop_environments: Vec<String>,
    #[serde(default)]
    drop_guids: Vec<String>,
    #[serde(default)]
    sample: BTreeMap<String, f64>,
}

/// A `drop_guids` entry: a glob over the whole guid when it holds `*` (any run) or `?` (any
/// one character), otherwise a prefix. Guids are `[A-Za-z0-9._-]`, so nothing needs escaping.
#[derive(Debug, Clone, PartialEq)]
pub enum GuidPattern {
    Prefix(String),
    Glob(String),
}

impl GuidPattern {
    fn parse(text: &str) -> Result<GuidPattern, RestrictError> {
        if text.is_empty() || text.chars().all(|c| c == '*') {
            return Err(RestrictError::EmptyPattern(text.to_owned()));
        }
        Ok(if text.contains(['*', '?']) {
            GuidPattern::Glob(text.to_owned())
        } else {
            GuidPattern::Prefix(text.to_owned())
        })
    }

    pub fn matches(&self, guid: &str) -> bool {
        match self {
            GuidPattern::Prefix(p) => guid.starts_with(p.as_str()),
            GuidPattern::Glob(g) => glob(g.as_bytes(), guid.as_bytes()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            GuidPattern::Prefix(p) | GuidPattern::Glob(p) => p,
        }
    }
}

/// `*` and `?` matching, iterative with one backtrack point (linear in practice, never
/// exponential on hostile patterns).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// What to refuse at ingest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restrictions {
    /// Chunks of these environments are refused (`restricted`).
    pub drop_environments: Vec<String>,
    /// Chunks of sessions whose guid matches are refused (`restricted`).
    pub drop_guids: Vec<GuidPattern>,
    /// Per environment, the share of sessions kept; the rest are `sampled_out`. An
    /// environment not listed keeps everything.
    pub sample: BTreeMap<String, f64>,
}

/// What the restrictions say of one chunk.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Keep,
    /// A drop rule matched: which one, for the reject record.
    Restricted {
        rule: String,
    },
    /// The session fell outside its environment's sample.
    SampledOut {
        environment: String,
        rate: f64,
    },
}

impl Restrictions {
    /// Parses a restrictions document.
    pub fn from_json(text: &str) -> Result<Restrictions, RestrictError> {
        let file: File = serde_json::from_str(text)?;
        for (environment, &rate) in &file.sample {
            if !(0.0..=1.0).contains(&rate) {
                return Err(RestrictError::Rate {
                    environment: environment.clone(),
                    rate,
                });
            }
        }
        let drop_guids = file
            .drop_guids
            .iter()
            .map(|p| GuidPattern::parse(p))
            .collect::<Result<_, _>>()?;
        Ok(Restrictions {
            drop_environments: file.drop_environments,
            drop_guids,
            sample: file.sample,
        })
    }

    /// Whether any rule needs the chunk's environment (else the guid alone decides).
    pub fn reads_environment(&self) -> bool {
        !self.drop_environments.is_empty() || !self.sample.is_empty()
    }

    /// The decision for a chunk of session `guid` in `environment` (`None`: not known, as
    /// when the chunk has no readable head; only the guid rules apply then).
    pub fn decide(&self, guid: &str, environment: Option<&str>) -> Decision {
        if let Some(p) = self.drop_guids.iter().find(|p| p.matches(guid)) {
            return Decision::Restricted {
                rule: format!("drop_guids {:?}", p.as_str()),
            };
        }
        let Some(environment) = environment else {
            return Decision::Keep;
        };
        if self.drop_environments.iter().any(|e| e == environment) {
            return Decision::Restricted {
                rule: format!("drop_environments {environment:?}"),
            };
        }
        match self.sample.get(environment) {
            Some(&rate) if !sampled_in(guid, rate) => Decision::SampledOut {
                environment: environment.to_owned(),
                rate,
            },
            _ => Decision::Keep,
        }
    }
}

impl Restrictions {
    /// The reject for a chunk's text, or `None` to go on with it. Reads the head only: the
    /// guid from the first bytes when no rule needs the environment ([`crate::peek_guid`]),
    /// else both fields by [`Head::read`]. A chunk whose head cannot be read is not decided
    /// here: its validation refuses it with the precise reason.
    pub fn refuse(&self, text: &str) -> Option<crate::Reject> {
        let (guid, environment) = match crate::peek_guid(text.as_bytes()) {
            Some(guid) if !self.reads_environment() => (guid.to_string(), None),
            _ => {
                let head = Head::read(text)?;
                (head.session_guid, head.environment)
            }
        };
        match self.decide(&guid, environment.as_deref()) {
            Decision::Keep => None,
            Decision::Restricted { rule } => Some(crate::Reject::Restricted { rule }),
            Decision::SampledOut { environment, rate } => Some(crate::Reject::SampledOut {
                environment,
                rate: rate.to_string(),
            }),
        }
    }
}

/// Whether a session is inside a sample of `rate`: the top 53 bits of its seeded hash, as a
/// fraction of 1, fall below the rate. 0 keeps nothing, 1 keeps everything.
pub fn sampled_in(guid: &str, rate: f64) -> bool {
    let h = xxhash_rust::xxh3::xxh3_64_with_seed(guid.as_bytes(), SAMPLE_SEED);
    ((h >> 11) as f64 / (1u64 << 53) as f64) < rate
}

/// A chunk's head: the two fields restrictions read.
#[derive(Debug, PartialEq)]
pub struct Head {
    pub session_guid: String,
    pub environment: Option<String>,
}

impl Head {
    /// Reads `session_guid` and `environment` from a chunk's text without looking at its
    /// events: `session_data` and any other member are skipped as tokens, nothing is built.
    /// `None` when the text is not an object with a string `session_guid` — the full
    /// validation that follows refuses such a chunk with its precise reason.
    pub fn read(text: &str) -> Option<Head> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            session_guid: std::borrow::Cow<'a, str>,
            #[serde(borrow, default)]
            environment: Option<std::borrow::Cow<'a, str>>,
            // Every other member (`session_data` above all) is skipped as tokens: serde
            // ignores unknown fields through `IgnoredAny`, building nothing.
        }
        let raw: Raw = serde_json::from_str(text.trim_start_matches('\u{feff}')).ok()?;
        Some(Head {
            session_guid: raw.session_guid.into_owned(),
            environment: raw.environment.map(|e| e.into_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Restrictions {
        Restrictions::from_json(json).unwrap()
    }

    #[test]
    fn environments_and_guid_patterns_are_restricted() {
        let r = rules(
            r#"{"drop_environments": ["staging"], "drop_guids": ["bot-*", "test", "a?c*z"]}"#,
        );
        let restricted = |guid, env| matches!(r.decide(guid, env), Decision::Restricted { .. });
        assert!(restricted("s1", Some("staging")));
        assert!(!restricted("s1", Some("production")));
        assert!(restricted("bot-123", Some("production")));
        assert!(
            !restricted("robot-1", Some("production")),
            "a glob covers the whole guid"
        );
        assert!(restricted("test-42", None), "a plain pattern is a prefix");
        assert!(!restricted("atest", None));
        assert!(restricted("abc-z", None));
        assert!(restricted("axcz", None));
        assert!(!restricted("abc-y", None));
        assert_eq!(
            r.decide("bot-1", Some("staging")),
            Decision::Restricted {
                rule: "drop_guids \"bot-*\"".into()
            },
            "the guid rule is named"
        );
    }

    #[test]
    fn glob_matching_backtracks_and_stays_linear() {
        assert!(glob(b"*a*b*c", b"xxaxxbxxc"));
        assert!(!glob(b"*a*b*c", b"xxaxxbxx"));
        assert!(glob(b"a**", b"a"));
        assert!(!glob(b"a?", b"a"));
        let long = "a".repeat(5000);
        assert!(!glob(b"*a*a*a*a*a*a*b", long.as_bytes()));
    }

    #[test]
    fn bad_documents_are_refused_with_the_reason() {
        for (json, needle) in [
            (r#"{"drop_enviroments": ["x"]}"#, "unknown field"),
            (r#"{"sample": {"production": 1.5}}"#, "from 0 to 1"),
            (r#"{"sample": {"production": -0.1}}"#, "from 0 to 1"),
            (r#"{"drop_guids": [""]}"#, "empty"),
            (r#"{"drop_guids": ["**"]}"#, "empty"),
            (r#"{"sample": {"production": "half"}}"#, "invalid type"),
            ("not json", "expected"),
        ] {
            let err = Restrictions::from_json(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    /// The rate is met within ±3 % over 10,000 generated sessions, every chunk of a session
    /// gets the session's decision, and the decision does not depend on anything but the guid.
    #[test]
    fn sampling_keeps_the_rate_and_every_chunk_of_a_session_alike() {
        let r = rules(r#"{"sample": {"production": 0.25, "canary": 0.0}}"#);
        let guids: Vec<String> = (0..10_000)
            .map(|i| format!("{i:08x}-5d1c-4f0b-9a7e-session"))
            .collect();
        let kept = guids
            .iter()
            .filter(|g| r.decide(g, Some("production")) == Decision::Keep)
            .count();
        let share = kept as f64 / guids.len() as f64;
        println!("FIGURE restrict.sampled_in_share_at_0.25: {share}");
        assert!(
            (0.2425..=0.2575).contains(&share),
            "kept {share} of 0.25 (±3 %)"
        );
        let again = Restrictions::from_json(r#"{"sample": {"production": 0.25}}"#).unwrap();
        for g in &guids {
            assert_eq!(
                r.decide(g, Some("production")),
                again.decide(g, Some("production"))
            );
        }
        assert!(guids
            .iter()
            .all(|g| matches!(r.decide(g, Some("canary")), Decision::SampledOut { .. })));
        assert!(
            guids
                .iter()
                .all(|g| r.decide(g, Some("dev")) == Decision::Keep),
            "unlisted keeps all"
        );
    }

    /// The hash is xxh3 with a fixed seed: the same guids are kept by every build, so a
    /// deployment that upgrades mid-session does not split a session.
    #[test]
    fn the_sampling_hash_is_fixed() {
        let kept: Vec<bool> = ["a", "b", "session-1", "session-2"]
            .iter()
            .map(|g| sampled_in(g, 0.5))
            .collect();
        let expected: Vec<bool> = ["a", "b", "session-1", "session-2"]
            .iter()
            .map(|g| {
                let h = xxhash_rust::xxh3::xxh3_64_with_seed(g.as_bytes(), 0x7272_7374_6974_6368);
                (h >> 11) < (1u64 << 52)
            })
            .collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn a_chunk_is_refused_from_its_head() {
        let r = rules(r#"{"drop_guids": ["bot-"], "sample": {"production": 0.0}}"#);
        let chunk = |guid: &str, env: &str| {
            format!(
                r#"{{"session_guid":"{guid}","session_data":[{{"bad":1}}],"environment":"{env}"}}"#
            )
        };
        assert_eq!(
            r.refuse(&chunk("bot-1", "dev")).map(|r| r.kind()),
            Some("restricted")
        );
        assert_eq!(
            r.refuse(&chunk("s-1", "production")),
            Some(crate::Reject::SampledOut {
                environment: "production".into(),
                rate: "0".into()
            })
        );
        assert_eq!(r.refuse(&chunk("s-1", "dev")), None, "left to validation");
        assert_eq!(r.refuse("{not json"), None, "left to validation");
        let guid_only = rules(r#"{"drop_guids": ["bot-"]}"#);
        assert!(!guid_only.reads_environment());
        assert_eq!(
            guid_only.refuse(&chunk("bot-2", "x")).map(|r| r.kind()),
            Some("restricted")
        );
    }

    #[test]
    fn the_head_is_read_without_the_events() {
        let head = Head::read(
            r#"{"session_guid":"g-1","session_data":[{"type":2,"deep":[[[[1]]]]}],"environment":"prod"}"#,
        )
        .unwrap();
        assert_eq!(
            head,
            Head {
                session_guid: "g-1".into(),
                environment: Some("prod".into())
            }
        );
        // Events that would fail validation do not stop the head from being read.
        let head = Head::read(
            r#"{"environment":"e","session_data":[1,2,{"no":"type"}],"session_guid":"g\u002d2"}"#,
        )
        .unwrap();
        assert_eq!(head.session_guid, "g-2");
        assert!(Head::read(r#"{"session_data":[]}"#).is_none());
        assert!(Head::read("[1]").is_none());
    }
}
