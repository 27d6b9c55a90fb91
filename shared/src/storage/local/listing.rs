//! Listing a prefix of a local bucket: only the directory the prefix names (and below) is
//! walked, never the rest of the tree, and what vanishes mid-walk is skipped.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use super::TEMP_PREFIX;

/// Where listing `prefix` starts: the directory its part up to the last `/` names (`None`
/// when that part could never name an object: `..`, an absolute path, a temporary name),
/// and what the names directly in that directory must start with.
pub(super) fn list_start<'p>(root: &Path, prefix: &'p str) -> Option<(PathBuf, &'p str, &'p str)> {
    let (dir, stem) = match prefix.rfind('/') {
        Some(i) => (&prefix[..=i], &prefix[i + 1..]),
        None => ("", prefix),
    };
    let mut path = root.to_path_buf();
    for part in Path::new(dir).components() {
        match part {
            Component::Normal(p) if !p.to_string_lossy().starts_with(TEMP_PREFIX) => path.push(p),
            _ => return None,
        }
    }
    Some((path, dir, stem))
}

/// Collects the files under `dir` (named `<base><relative path>`) whose name in `dir`
/// itself starts with `stem`. Anything that vanishes mid-walk (a file or a whole directory
/// deleted by an erasure, a re-stitch's clean-up, a prune) is skipped, not an error: a
/// listing is a snapshot of a moving bucket, as a cloud store's is.
pub(super) fn walk(
    dir: &Path,
    base: &str,
    stem: &str,
    out: &mut Vec<(String, std::fs::Metadata)>,
) -> std::io::Result<()> {
    let gone = |e: &std::io::Error| e.kind() == ErrorKind::NotFound;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with(TEMP_PREFIX) || !file_name.starts_with(stem) {
            continue;
        }
        let path = entry.path();
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        let name = format!("{base}{file_name}");
        if meta.is_dir() {
            walk(&path, &format!("{name}/"), "", out)?;
        } else if meta.is_file() {
            out.push((name, meta));
        }
    }
    Ok(())
}
