//! The session index's settings: which backend (`RRSTITCH_INDEX` and the variables of the one
//! it names), how many shards its idle index spreads over, and how long records live. The
//! `RRSTITCH_INDEX` value parser is public because `rrstitch --index` takes the same values.

use std::time::Duration;

use super::{ConfigError, Env};
use rrstitch::index::shard::{Shards, DEFAULT_SHARDS, MAX_SHARDS};
use rrstitch::index::IndexSpec;

/// `RRSTITCH_INDEX` (unset: the default SQLite file) and the variables of the backend it
/// names (`RRSTITCH_FIRESTORE_*`, `RRSTITCH_DYNAMODB_TABLE`).
pub(super) fn index_spec(env: &Env) -> Result<IndexSpec, ConfigError> {
    match env.string("RRSTITCH_INDEX") {
        None => Ok(IndexSpec::Sqlite(".rrstitch/index.sqlite".into())),
        Some(value) => parse_index_with(&value, env),
    }
}

/// A value of `RRSTITCH_INDEX` (`sqlite:PATH`, `firestore` or `dynamodb`), with the backend's
/// own variables read from the process environment: what `rrstitch --index` takes.
pub fn parse_index(value: &str) -> Result<IndexSpec, ConfigError> {
    parse_index_with(value, &Env::process())
}

/// [`parse_index`] with the backend's variables read from `env`.
fn parse_index_with(value: &str, env: &Env) -> Result<IndexSpec, ConfigError> {
    const VAR: &str = "RRSTITCH_INDEX";
    Ok(match value {
        // SQLite opens a private temporary database for an empty path or `:memory:`:
        // sessions recorded there are gone when the process exits.
        s if s.starts_with("sqlite:") => match s["sqlite:".len()..].trim() {
            "" | ":memory:" => {
                return Err(ConfigError {
                    var: VAR,
                    reason: format!(
                        "{s:?} names no file, so SQLite would use a throwaway database: \
                         use sqlite:PATH (e.g. sqlite:.rrstitch/index.sqlite)"
                    ),
                })
            }
            _ => IndexSpec::Sqlite(s["sqlite:".len()..].into()),
        },
        "firestore" => IndexSpec::Firestore {
            project: env
                .string("RRSTITCH_FIRESTORE_PROJECT")
                .or_else(|| env.string("GOOGLE_CLOUD_PROJECT"))
                .ok_or(ConfigError {
                    var: "RRSTITCH_FIRESTORE_PROJECT",
                    reason: "required with RRSTITCH_INDEX=firestore".into(),
                })?,
            database: env
                .string("RRSTITCH_FIRESTORE_DATABASE")
                .unwrap_or_else(|| "(default)".into()),
            collection: env
                .string("RRSTITCH_FIRESTORE_COLLECTION")
                .unwrap_or_else(|| "rrstitch_sessions".into()),
        },
        "dynamodb" => IndexSpec::DynamoDb {
            table: env
                .string("RRSTITCH_DYNAMODB_TABLE")
                .unwrap_or_else(|| "rrstitch".into()),
        },
        other => {
            return Err(ConfigError {
                var: VAR,
                reason: format!("{other:?}: use sqlite:PATH, firestore or dynamodb"),
            })
        }
    })
}

/// `RRSTITCH_INDEX_SHARDS`: 1 to [`MAX_SHARDS`], default [`DEFAULT_SHARDS`].
pub(super) fn shards(env: &Env) -> Result<Shards, ConfigError> {
    let n = env.bounded(
        "RRSTITCH_INDEX_SHARDS",
        u64::from(DEFAULT_SHARDS),
        1,
        u64::from(MAX_SHARDS),
    )?;
    Ok(Shards::new(n as u32))
}

/// `RRSTITCH_INDEX_TTL_DAYS`: how long cloud index records live after their last activity.
pub(super) fn ttl(env: &Env) -> Result<Duration, ConfigError> {
    env.days("RRSTITCH_INDEX_TTL_DAYS", rrstitch::index::RECORD_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::settings;

    #[test]
    fn the_cli_parses_one_index_value_as_the_variable_does() {
        let env = Env::new(|k| (k == "RRSTITCH_DYNAMODB_TABLE").then(|| "sessions".to_owned()));
        assert_eq!(
            parse_index_with("dynamodb", &env).unwrap(),
            IndexSpec::DynamoDb {
                table: "sessions".into()
            }
        );
        assert_eq!(
            parse_index_with("sqlite:x.sqlite", &env).unwrap(),
            IndexSpec::Sqlite("x.sqlite".into())
        );
        for bad in ["redis", "sqlite:", "sqlite::memory:"] {
            assert_eq!(
                parse_index_with(bad, &env).unwrap_err().var,
                "RRSTITCH_INDEX"
            );
        }
    }

    #[test]
    fn the_index_ttl_is_whole_days_and_never_zero() {
        assert_eq!(
            settings(&[]).unwrap().index_ttl,
            Duration::from_secs(90 * 86_400)
        );
        let s = settings(&[("RRSTITCH_INDEX_TTL_DAYS", "31")]).unwrap();
        assert_eq!(s.index_ttl, Duration::from_secs(31 * 86_400));
        let zero = settings(&[("RRSTITCH_INDEX_TTL_DAYS", "0")]).unwrap_err();
        assert_eq!(zero.var, "RRSTITCH_INDEX_TTL_DAYS");
        assert!(settings(&[("RRSTITCH_INDEX_TTL_DAYS", "1.5")]).is_err());
    }
}
