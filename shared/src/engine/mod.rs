//! The pure stitch engine: no I/O, no clock, no async.
//!
//! Everything about what a correct output is lives here and is tested here:
//! - [`name`]: which objects are chunks and the upload time a name carries (the order);
//! - [`guid`]: the session id rule that keeps hostile ids out of paths and object names;
//! - [`chunk`]: decoding (size caps, gzip, UTF-8) and validating one chunk, events kept raw;
//! - [`stitch`]: the streaming writer of the stitched document;
//! - [`metadata`]: what that document says about the session;
//! - [`reject`]: the permanent reasons a chunk is refused.

pub mod chunk;
pub mod guid;
pub mod metadata;
pub mod name;
pub mod reject;
pub mod stitch;

pub use chunk::{decode, parse, peek_guid, Chunk, Event, Limits};
pub use guid::SessionGuid;
pub use metadata::Metadata;
pub use name::{ChunkName, NameClass};
pub use reject::Reject;
pub use stitch::{Pushed, Stitcher};
