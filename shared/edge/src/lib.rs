//! rrstitch's hosting: everything between a platform and the core library.
//!
//! The core (`rrstitch`: engine, storage, index, queue, service) never knows it is hosted: it
//! takes its configuration as values and is called with plain requests. This crate is the
//! other side of that line, shared by the three binaries in `functions/`:
//!
//! - [`config`] — the environment, parsed once at start-up into [`config::Settings`]; a bad
//!   value stops the process naming the variable.
//! - [`setup`] — from settings to a ready [`rrstitch::service::Service`] and finalize queue.
//! - [`http`] — the accept loop the HTTP functions serve on, with the limits a public endpoint
//!   needs against slow clients, and the status a service outcome is answered with.
//! - [`events`] — the platforms' payloads, typed and split by direction (ingest: CloudEvents,
//!   Pub/Sub push, S3 notifications; finalize: SQS batches, schedules, Function URL and
//!   manual requests), decoded into what the service takes.
//! - [`telemetry`] and [`alloc`] — logs as Cloud Logging and CloudWatch read them, and the
//!   allocator tuning every binary starts with.

pub mod alloc;
pub mod config;
pub mod events;
pub mod http;
pub mod setup;
pub mod telemetry;
