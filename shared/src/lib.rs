//! rrstitch: turns chunked rrweb session recordings into complete, replayable sessions.
//!
//! A browser SDK uploads a session in pieces, each a JSON object named by its upload time.
//! This crate is everything between those pieces and one `<session_guid>.json` per session:
//!
//! - [`engine`] — pure and synchronous: chunk names, validation, the streaming stitch.
//! - [`storage`] and [`index`] — the two ports (object storage, session index) and their
//!   adapters, one module per backend, all held to one conformance suite.
//! - [`service`] — ingest, sweep, finalize and backfill as plain async functions over the
//!   ports; the binaries in `functions/` only wire configuration and platform events to them.
//! - [`queue`] — the finalize queue port (Pub/Sub, SQS) a dispatching sweep publishes to.
//! - [`config`] — the one configuration surface (environment variables) the binaries share.
//!
//! It is not a recorder or a player: it never changes an event, only orders, checks and
//! concatenates them.

pub mod alloc;
#[cfg(feature = "aws")]
mod aws;
pub mod config;
/// The pure engine, a crate of its own (`shared/engine`) so nothing async or cloud-bound
/// can creep into it; re-exported so the rest of the library says `engine::…`.
pub use rrstitch_engine as engine;
pub mod events;
pub mod http;
pub mod index;
pub mod queue;
pub mod service;
pub mod setup;
pub mod storage;
pub mod telemetry;
pub mod time;
