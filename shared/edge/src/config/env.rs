//! The one reader of the environment: typed getters over a variable source, each turning a bad
//! value into a [`ConfigError`] that names the variable, and a record of every name asked for.
//!
//! Every setting goes through [`Env`], so the rules are written once (an empty variable is
//! unset, durations stop at a century, sizes use one grammar) and a test can parse a full
//! configuration and check that every name it read is documented ([`super::VARIABLES`] and the
//! README), rather than grepping the source for string literals.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use super::size::parse_bytes;
use super::ConfigError;

/// The longest any duration variable may be, in days: a century, which is "forever" for a
/// tombstone or a lease, and keeps every deadline far inside what the index backends store.
pub const MAX_DAYS: u64 = 36_525;
/// [`MAX_DAYS`] in seconds, for the `_SECS` variables.
pub const MAX_SECS: u64 = MAX_DAYS * 86_400;

/// Where values come from: a variable's value, or `None` when it is unset.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// A variable source (the process environment, or a map in tests) with typed getters.
pub struct Env<'a> {
    lookup: Lookup<'a>,
    read: RefCell<BTreeSet<&'static str>>,
}

impl Env<'static> {
    /// The process environment.
    pub fn process() -> Self {
        Env::new(|k| std::env::var(k).ok())
    }
}

impl<'a> Env<'a> {
    /// Any variable source: `lookup` returns a variable's value, or `None` when it is unset.
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env {
            lookup: Box::new(lookup),
            read: RefCell::new(BTreeSet::new()),
        }
    }

    /// Every name asked for so far, set or not, in order.
    pub fn names_read(&self) -> Vec<&'static str> {
        self.read.borrow().iter().copied().collect()
    }

    /// The value as set, empty included: only for the rules documents, where an empty value
    /// must be refused rather than read as "none" ([`Env::document`]).
    fn raw(&self, var: &'static str) -> Option<String> {
        self.read.borrow_mut().insert(var);
        (self.lookup)(var)
    }

    /// The value, or `None` when unset or empty: an empty variable counts as unset.
    pub fn string(&self, var: &'static str) -> Option<String> {
        self.raw(var).filter(|v| !v.is_empty())
    }

    /// A whole number, or `default` when unset.
    pub fn number(&self, var: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                var,
                reason: format!("{v:?} is not a whole number"),
            }),
        }
    }

    /// A whole number in `min..=max`, or an error saying which bound it crossed.
    pub fn bounded(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        within(var, self.number(var, default)?, min, max, |n| n.to_string())
    }

    /// Whole seconds in `min..=max` (at most [`MAX_SECS`], a century).
    pub fn seconds(
        &self,
        var: &'static str,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.bounded(var, default.as_secs(), min, max.min(MAX_SECS))
            .map(Duration::from_secs)
    }

    /// Whole days, at least one (a zero TTL would expire records as written), at most
    /// [`MAX_DAYS`].
    pub fn days(&self, var: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        self.bounded(var, default.as_secs() / 86_400, 1, MAX_DAYS)
            .map(|d| Duration::from_secs(d * 86_400))
    }

    /// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off` (any case); `default` when unset.
    pub fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.string(var).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some(other) => Err(ConfigError {
                var,
                reason: format!("{other:?} is not true/false"),
            }),
        }
    }

    /// A byte size ([`parse_bytes`]: `4096`, `64MB`, `8MiB`) of at most `max` bytes, or
    /// `default` when unset. Zero is refused.
    pub fn size(&self, var: &'static str, default: u64, max: u64) -> Result<u64, ConfigError> {
        let Some(value) = self.string(var) else {
            return Ok(default);
        };
        let bytes = parse_bytes(&value).map_err(|e| ConfigError {
            var,
            reason: format!("{value:?}: {e}"),
        })?;
        within(var, bytes, 1, max, |n| format!("{n} bytes"))
    }

    /// A JSON document from `var`: inline when the value starts with `{` (so a Cloud Run or
    /// Lambda variable can carry it), else the path of a file. Returns where it came from, for
    /// messages, and its text. A variable set but empty is refused: a template that lost its
    /// value would otherwise read as "no rules", like every other empty variable — silently
    /// no redaction, no restriction.
    pub fn document(&self, var: &'static str) -> Result<Option<(String, String)>, ConfigError> {
        let Some(value) = self.raw(var) else {
            return Ok(None);
        };
        if value.trim().is_empty() {
            return Err(ConfigError {
                var,
                reason: "set but empty: give a JSON document or a file path, or unset it for none"
                    .into(),
            });
        }
        if value.trim_start().starts_with('{') {
            return Ok(Some(("inline rules".to_owned(), value)));
        }
        let text = std::fs::read_to_string(&value).map_err(|e| ConfigError {
            var,
            reason: format!("rules file {value}: {e}"),
        })?;
        Ok(Some((format!("rules file {value}"), text)))
    }
}

/// `n` if it is in `min..=max`, else an error naming the bound (`show` writes a bound).
fn within(
    var: &'static str,
    n: u64,
    min: u64,
    max: u64,
    show: impl Fn(u64) -> String,
) -> Result<u64, ConfigError> {
    if (min..=max).contains(&n) {
        return Ok(n);
    }
    let (bound, limit) = if n < min {
        ("at least", min)
    } else {
        ("at most", max)
    };
    Err(ConfigError {
        var,
        reason: format!("{}: use {bound} {}", show(n), show(limit)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> Env<'a> {
        Env::new(move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn every_name_asked_for_is_recorded_set_or_not() {
        let e = env(&[("B", "1"), ("C", "")]);
        assert_eq!(e.string("C"), None);
        assert_eq!(e.number("B", 7).unwrap(), 1);
        assert_eq!(e.number("A", 7).unwrap(), 7);
        assert!(e.flag("D", true).unwrap());
        assert_eq!(e.names_read(), ["A", "B", "C", "D"]);
    }

    #[test]
    fn bounds_and_sizes_name_the_variable_and_the_bound() {
        let e = env(&[("N", "5"), ("S", "2KiB"), ("Z", "0"), ("X", "4MB")]);
        assert_eq!(e.bounded("N", 1, 1, 9).unwrap(), 5);
        let err = e.bounded("N", 1, 6, 9).unwrap_err();
        assert_eq!(err.to_string(), "N: 5: use at least 6");
        assert_eq!(e.size("S", 1, u64::MAX).unwrap(), 2048);
        assert_eq!(e.size("unset", 3, u64::MAX).unwrap(), 3);
        assert_eq!(e.size("Z", 1, u64::MAX).unwrap_err().var, "Z");
        let err = e.size("X", 1, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("at most 1048576 bytes"), "{err}");
    }
}
