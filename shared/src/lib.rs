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
//!
//! Hosting is not here: reading the environment, serving HTTP, decoding platform events and
//! setting up logs live in the edge crate (`shared/edge`, `rrstitch-edge`), which the binaries
//! use. This crate never reads the environment and does not link an HTTP server; its
//! dependency tree (`cargo tree -p rrstitch`) is the check.
//!
//! It is not a recorder or a player: it never changes an event, only orders, checks and
//! concatenates them.

#[cfg(feature = "aws")]
mod aws;
/// The pure engine, a crate of its own (`shared/engine`) so nothing async or cloud-bound
/// can creep into it; re-exported so the rest of the library says `engine::…`.
pub use rrstitch_engine as engine;
pub mod index;
pub mod metrics;
pub mod queue;
pub mod service;
pub mod storage;
pub mod time;
