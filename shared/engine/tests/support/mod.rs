//! What the engine's whole-fixture tests share: a directory of chunks read in stitch order,
//! and stitched through a stitcher the test sets up (its guid, its rules).

use std::path::Path;

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
