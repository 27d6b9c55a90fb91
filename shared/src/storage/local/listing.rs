//! Listing a prefix of a local bucket: only the directory the prefix names (and below) is
//! walked, never the rest of the tree, and what vanishes mid-walk is skipped.

use std::collections::BinaryHeap;
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

/// Collects into `out`, in name order, the first `limit` files under `dir` (named
/// `<base><relative path>`) whose name in `dir` itself starts with `stem` and whose full name
/// sorts strictly after `after`.
///
/// A directory's entries come back from the kernel in no order, so each directory is read
/// and its entries ordered by the name they stand for: a file by its name, a directory by
/// its name and a `/` (`a.json` < `a/…`, as `.` < `/`). Only the `limit` smallest entries
/// past the bound are kept (a bounded heap), so memory is the page, not the directory; a
/// directory entirely before the bound is never opened, and only the files that make the
/// page are stat'ed. When the kept entries run out before the page is full (a directory
/// holding fewer files than it was counted for, an empty one), the directory is read again
/// from the last entry handled.
///
/// Anything that vanishes mid-walk (a file or a whole directory deleted by an erasure, a
/// re-stitch's clean-up, a prune) is skipped, not an error: a listing is a snapshot of a
/// moving bucket, as a cloud store's is.
pub(super) fn walk_sorted(
    dir: &Path,
    base: &str,
    stem: &str,
    after: &str,
    limit: usize,
    out: &mut Vec<(String, std::fs::Metadata)>,
) -> std::io::Result<()> {
    let gone = |e: &std::io::Error| e.kind() == ErrorKind::NotFound;
    // The last entry (its sort key) this directory has handled.
    let mut done = String::new();
    while out.len() < limit {
        let want = limit - out.len();
        let mut kept: BinaryHeap<(String, bool)> = BinaryHeap::with_capacity(want + 1);
        #[cfg(test)]
        tests::DIRS_READ.with(|n| n.set(n.get() + 1));
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
            let is_dir = match entry.file_type() {
                Ok(t) if t.is_symlink() => {
                    std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir())
                }
                Ok(t) => t.is_dir(),
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            let key = if is_dir {
                format!("{base}{file_name}/")
            } else {
                format!("{base}{file_name}")
            };
            // Past what this directory already handled, and able to hold a name past the
            // bound: a file named after it, a directory named after it or one the bound
            // lies in.
            let past = key.as_str() > after || (is_dir && after.starts_with(key.as_str()));
            if key <= done || !past {
                continue;
            }
            if kept.len() == want && kept.peek().is_some_and(|(top, _)| *top < key) {
                continue;
            }
            kept.push((key, is_dir));
            if kept.len() > want {
                kept.pop();
            }
        }
        let exhausted = kept.len() < want;
        if kept.is_empty() {
            return Ok(());
        }
        for (key, is_dir) in kept.into_sorted_vec() {
            let path = dir.join(key[base.len()..].trim_end_matches('/'));
            if is_dir {
                walk_sorted(&path, &key, "", after, limit, out)?;
            } else {
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => out.push((key.clone(), meta)),
                    Ok(_) => {}
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            done = key;
            if out.len() >= limit {
                return Ok(());
            }
        }
        if exhausted {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// Directories `walk_sorted` read on this thread.
        pub(super) static DIRS_READ: Cell<usize> = const { Cell::new(0) };
    }

    /// 20 folders of 5 files: a page after a bound in the middle reads the top directory, the
    /// folder the bound lies in and the folders the page takes its names from, never the
    /// nine before the bound, and never more folders than the page needs.
    #[test]
    fn a_page_reads_only_the_directories_it_lists() {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..20 {
            std::fs::create_dir(dir.path().join(format!("{d:02}"))).unwrap();
            for f in 0..5 {
                std::fs::write(dir.path().join(format!("{d:02}/{f}.json")), b"x").unwrap();
            }
        }
        let list = |after: &str, limit| {
            DIRS_READ.with(|n| n.set(0));
            let mut out = Vec::new();
            walk_sorted(dir.path(), "", "", after, limit, &mut out).unwrap();
            let names: Vec<String> = out.into_iter().map(|(n, _)| n).collect();
            (names, DIRS_READ.with(Cell::get))
        };
        let (names, read) = list("09/4.json", 7);
        assert_eq!(
            names,
            [
                "10/0.json",
                "10/1.json",
                "10/2.json",
                "10/3.json",
                "10/4.json",
                "11/0.json",
                "11/1.json"
            ]
        );
        assert_eq!(
            read, 4,
            "the top directory, 09/ (the bound lies in it), 10/ and 11/"
        );
        let (names, read) = list("10/2.json", 2);
        assert_eq!(names, ["10/3.json", "10/4.json"]);
        assert_eq!(read, 2, "the top directory and 10/");
        let (names, _) = list("", 1_000);
        assert_eq!(names.len(), 100, "no bound: everything");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "in name order");
    }

    /// Empty folders count for an entry but give no name: the directory is read again from
    /// where it stopped until the page is full.
    #[test]
    fn empty_folders_do_not_cut_a_page_short() {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..6 {
            std::fs::create_dir(dir.path().join(format!("{d}"))).unwrap();
        }
        std::fs::write(dir.path().join("5/a.json"), b"x").unwrap();
        std::fs::write(dir.path().join("6.json"), b"x").unwrap();
        let mut out = Vec::new();
        walk_sorted(dir.path(), "", "", "", 2, &mut out).unwrap();
        let names: Vec<String> = out.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["5/a.json", "6.json"]);
    }
}
