//! What the engine's whole-fixture tests share: a directory of chunks read in stitch order,
//! and stitched through a stitcher the test sets up (its guid, its rules); the real
//! recordings; a list of events cut into chunks.

// Each test file uses some of these, none all.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rrstitch_engine::{decode, parse, ChunkName, Limits, Metadata, Stitcher};

/// Every chunk in `dir`, in stitch order, as its name and stored bytes.
pub fn chunks_in_order(dir: &Path) -> Vec<(ChunkName, Vec<u8>)> {
    let chunks: Vec<(ChunkName, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (
                ChunkName::parse(&name).unwrap(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    rrstitch_engine::order::in_stitch_order(chunks, |(name, _)| (name, ""))
}

/// Pushes `chunks` (in order) through `stitcher` and finishes it.
pub fn stitch_into(
    mut stitcher: Stitcher<Vec<u8>>,
    chunks: &[(ChunkName, Vec<u8>)],
) -> (Vec<u8>, Metadata) {
    for (name, bytes) in chunks {
        let text = decode(bytes, false, &Limits::default()).unwrap();
        stitcher.push(name, &parse(&text).unwrap()).unwrap();
    }
    stitcher.finish().unwrap()
}

/// Every real recording under `fixtures/real` (a directory with a `chunks` folder, see its
/// README), at least the fifteen the repository holds.
pub fn real_recordings() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/real");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("chunks").is_dir())
        .collect();
    assert!(
        dirs.len() >= 15,
        "found {} real recordings under {}",
        dirs.len(),
        root.display()
    );
    dirs
}

/// `items` cut before each position in `cuts` (any order, repeats and 0 allowed) into
/// non-empty runs, first to last.
pub fn split_at<T: Clone>(items: &[T], cuts: impl IntoIterator<Item = usize>) -> Vec<Vec<T>> {
    let mut at: Vec<usize> = cuts.into_iter().collect();
    at.sort();
    at.dedup();
    let mut runs = Vec::new();
    let mut from = 0;
    for cut in at.into_iter().chain([items.len()]) {
        if cut > from {
            runs.push(items[from..cut].to_vec());
            from = cut;
        }
    }
    runs
}
