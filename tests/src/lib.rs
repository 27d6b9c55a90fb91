//! Support for rrstitch's end-to-end tests: real emulators started per test run, and the
//! repository's binaries.
//!
//! Every emulator binds a free port on 127.0.0.1, runs in its own process group (so a
//! wrapper's children die with it), and is stopped when its handle is dropped. A missing
//! emulator is a panic that says how to install it — never a silent skip.

pub mod aws;
pub mod backends;
pub mod bench;
pub mod bins;
pub mod browser;
pub mod cloudevents;
pub mod emulators;
pub mod fixture;
pub mod form;
pub mod lambda;
pub mod latency;
pub mod metrics;
pub mod procs;
pub mod quota;
pub mod raw_http;
pub mod restrict;
pub mod segments;
pub mod sqs;
pub mod stacks;
pub mod status;

pub use aws::AwsStack;
pub use emulators::{FakeGcs, Firestore, Moto, PubSub};
pub use stacks::GcpStack;

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}
