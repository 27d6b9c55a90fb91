//! rrstitch-engine: the pure stitch engine. No I/O, no clock, no async, no logging.
//!
//! Everything about what a correct output is lives here and is tested here, with nothing
//! but serde_json, flate2, memchr and xxhash underneath, so the fuzz targets and property
//! tests exercise exactly what the cloud functions run:
//! - [`name`]: which objects are chunks and the upload time a name carries;
//! - [`order`]: the order a session's chunks are stitched in, and which are left out;
//! - [`guid`]: the session id rule that keeps hostile ids out of paths and object names;
//! - [`decode`]: stored bytes to JSON text (size caps, gzip, UTF-8);
//! - [`chunk`]: validating one chunk, events kept raw, in one pass; its helpers
//!   [`members`] (the serde visitors), [`locate`] (an event's bytes), [`event`] (the fields
//!   read from an event) and [`rrweb`] (the vocabulary);
//! - [`peek`]: a chunk's session read from its first bytes, for grouping a bucket;
//! - [`stitch`]: the streaming writer of the stitched document, [`compact`] its whitespace rule;
//! - [`metadata`]: what that document says about the session, and [`insights`] what
//!   happened in it (activity, console, rage and dead clicks);
//! - [`segment`]: the same events cut into gzip'd segments a player loads one by one;
//! - [`redact`]: the optional rules applied to events while they are stitched;
//! - [`restrict`]: which chunks ingest refuses before reading their events (drop rules,
//!   sampling);
//! - [`reject`]: the permanent reasons a chunk is refused.

pub mod chunk;
pub mod compact;
pub mod console;
pub mod decode;
pub mod event;
pub mod guid;
pub mod insights;
mod locate;
mod members;
pub mod metadata;
pub mod name;
pub mod order;
pub mod peek;
pub mod redact;
pub mod reject;
pub mod restrict;
pub mod rrweb;
pub mod segment;
pub mod stitch;

pub use chunk::{parse, Chunk};
pub use decode::{decode, Limits};
pub use event::Event;
pub use guid::SessionGuid;
pub use insights::{Insights, Marker, MarkerKind};
pub use metadata::Metadata;
pub use name::{ChunkName, NameClass};
pub use peek::{named_guid, peek_guid};
pub use reject::Reject;
pub use segment::{Manifest, Segment, SegmentInfo, SegmentLimits, Segmenter};
pub use stitch::{Pushed, Stitcher};
