//! How idle sessions get finalized: inline by the sweep, or through a queue to workers. The
//! mode and the one queue it names are read together, because a queue named without queue
//! mode, or two queues, or none in queue mode, must be told apart at start-up.

use super::{ConfigError, Env};
use rrstitch::queue::QueueSpec;

/// How idle sessions get finalized (`RRSTITCH_FINALIZE_MODE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalizeMode {
    /// The sweep stitches every idle session itself: one process, no queue to run.
    Inline,
    /// The sweep publishes one message per idle session to this queue, and finalize workers
    /// (push deliveries, SQS batches) stitch them: the work spreads over as many instances as
    /// the platform starts.
    Queue(QueueSpec),
}

/// Reads `RRSTITCH_FINALIZE_MODE` and, in queue mode, the one queue it needs.
pub(super) fn finalize_mode(env: &Env) -> Result<FinalizeMode, ConfigError> {
    match env.string("RRSTITCH_FINALIZE_MODE").as_deref() {
        None | Some("inline") => return Ok(FinalizeMode::Inline),
        Some("queue") => {}
        Some(other) => {
            return Err(ConfigError {
                var: "RRSTITCH_FINALIZE_MODE",
                reason: format!("{other:?}: use inline or queue"),
            })
        }
    }
    match (
        env.string("RRSTITCH_FINALIZE_TOPIC"),
        env.string("RRSTITCH_FINALIZE_QUEUE"),
    ) {
        (Some(_), Some(_)) => Err(ConfigError {
            var: "RRSTITCH_FINALIZE_QUEUE",
            reason: "set RRSTITCH_FINALIZE_TOPIC (Pub/Sub) or RRSTITCH_FINALIZE_QUEUE (SQS), not both"
                .into(),
        }),
        (Some(topic), None) => {
            let parts: Vec<&str> = topic.split('/').collect();
            match parts.as_slice() {
                ["projects", p, "topics", t] if !p.is_empty() && !t.is_empty() => {
                    Ok(FinalizeMode::Queue(QueueSpec::PubSub { topic }))
                }
                _ => Err(ConfigError {
                    var: "RRSTITCH_FINALIZE_TOPIC",
                    reason: format!("{topic:?} is not projects/PROJECT/topics/TOPIC"),
                }),
            }
        }
        (None, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(FinalizeMode::Queue(QueueSpec::Sqs { url }))
        }
        (None, Some(url)) => Err(ConfigError {
            var: "RRSTITCH_FINALIZE_QUEUE",
            reason: format!("{url:?} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"),
        }),
        (None, None) => Err(ConfigError {
            var: "RRSTITCH_FINALIZE_MODE",
            reason: "queue mode needs RRSTITCH_FINALIZE_TOPIC (Pub/Sub) or RRSTITCH_FINALIZE_QUEUE (SQS)"
                .into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::settings;

    #[test]
    fn finalize_mode_names_its_queue() {
        assert_eq!(settings(&[]).unwrap().finalize, FinalizeMode::Inline);
        // A queue named without queue mode is not used.
        let inline = settings(&[("RRSTITCH_FINALIZE_TOPIC", "projects/p/topics/t")]).unwrap();
        assert_eq!(inline.finalize, FinalizeMode::Inline);
        let pubsub = settings(&[
            ("RRSTITCH_FINALIZE_MODE", "queue"),
            ("RRSTITCH_FINALIZE_TOPIC", "projects/p/topics/finalize"),
        ])
        .unwrap();
        assert_eq!(
            pubsub.finalize,
            FinalizeMode::Queue(QueueSpec::PubSub {
                topic: "projects/p/topics/finalize".into()
            })
        );
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/rrstitch-finalize";
        let sqs = settings(&[
            ("RRSTITCH_FINALIZE_MODE", "queue"),
            ("RRSTITCH_FINALIZE_QUEUE", url),
        ])
        .unwrap();
        assert_eq!(
            sqs.finalize,
            FinalizeMode::Queue(QueueSpec::Sqs { url: url.into() })
        );
        for (vars, var) in [
            (
                vec![("RRSTITCH_FINALIZE_MODE", "queue")],
                "RRSTITCH_FINALIZE_MODE",
            ),
            (
                vec![("RRSTITCH_FINALIZE_MODE", "fanout")],
                "RRSTITCH_FINALIZE_MODE",
            ),
            (
                vec![
                    ("RRSTITCH_FINALIZE_MODE", "queue"),
                    ("RRSTITCH_FINALIZE_TOPIC", "finalize"),
                ],
                "RRSTITCH_FINALIZE_TOPIC",
            ),
            (
                vec![
                    ("RRSTITCH_FINALIZE_MODE", "queue"),
                    ("RRSTITCH_FINALIZE_QUEUE", "rrstitch-finalize"),
                ],
                "RRSTITCH_FINALIZE_QUEUE",
            ),
            (
                vec![
                    ("RRSTITCH_FINALIZE_MODE", "queue"),
                    ("RRSTITCH_FINALIZE_TOPIC", "projects/p/topics/t"),
                    ("RRSTITCH_FINALIZE_QUEUE", url),
                ],
                "RRSTITCH_FINALIZE_QUEUE",
            ),
        ] {
            assert_eq!(settings(&vars).unwrap_err().var, var, "{vars:?}");
        }
    }
}
