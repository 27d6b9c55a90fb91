//! How a write lands on a filesystem: a temporary file beside the target, moved into place
//! under the precondition while the directory is locked, with a modification time that is
//! a fresh generation; and the empty directories a delete leaves, removed.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{io_error, meta_of, TEMP_PREFIX};
use crate::storage::{ObjectMeta, Precondition, Result, StorageError};

pub(super) fn temp_path(dest: &Path) -> PathBuf {
    let mut nonce = [0u8; 8];
    let _ = getrandom::getrandom(&mut nonce);
    let name = format!("{TEMP_PREFIX}{}", u64::from_le_bytes(nonce));
    dest.with_file_name(name)
}

/// Moves a finished temp file into place under the precondition.
///
/// The check and the rename happen under an exclusive lock on the directory's lock file, so
/// two processes writing one name cannot both pass a generation check (the finalizer's fence
/// depends on that), and the new file's modification time is made later than the one it
/// replaces, so a generation is never seen twice for one name even when two writes land in
/// one tick of the filesystem's clock.
pub(super) fn commit(
    temp: &Path,
    dest: &Path,
    name: &str,
    precondition: &Precondition,
) -> Result<ObjectMeta> {
    let fail = |e: StorageError| {
        let _ = std::fs::remove_file(temp);
        e
    };
    let _lock = lock_dir(dest).map_err(|e| fail(io_error("put", name, e)))?;
    let current = match std::fs::metadata(dest) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(fail(io_error("put", name, e))),
    };
    let holds = match (precondition, &current) {
        (Precondition::None, _) | (Precondition::DoesNotExist, None) => true,
        (Precondition::DoesNotExist, Some(_)) | (Precondition::GenerationMatches(_), None) => false,
        (Precondition::GenerationMatches(expected), Some(m)) => {
            meta_of(name, m).generation.as_ref() == Some(expected)
        }
    };
    if !holds {
        return Err(fail(StorageError::PreconditionFailed {
            name: name.to_owned(),
        }));
    }
    if let Some(replaced) = current.as_ref().and_then(|m| m.modified().ok()) {
        later_than(temp, replaced).map_err(|e| fail(io_error("put", name, e)))?;
    }
    std::fs::rename(temp, dest).map_err(|e| fail(io_error("put", name, e)))?;
    let m = std::fs::metadata(dest).map_err(|e| io_error("put", name, e))?;
    Ok(meta_of(name, &m))
}

/// Holds an exclusive `flock` on `dest`'s directory itself until dropped: no lock file is
/// left beside the objects, and every writer of the directory agrees on the one lock.
pub(super) fn lock_dir(dest: &Path) -> std::io::Result<std::fs::File> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = std::fs::File::open(dir.unwrap_or(Path::new(".")))?;
    dir.lock()?;
    Ok(dir)
}

/// Removes the directories above a deleted object that it left empty, up to (never
/// including) the root: a bucket has no directories, so a local one should not keep the
/// empty `<guid>/<generation>/` folders every re-stitch, erasure and prune would leave.
/// A directory something else was just written into is not empty and stays (`rmdir` fails);
/// a writer that loses the race to create its temporary file in one makes it again
/// ([`create_temp`]).
pub(super) fn remove_empty_parents(root: &Path, object: &Path) {
    let mut dir = object.parent();
    while let Some(d) = dir.filter(|d| d.starts_with(root) && *d != root) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Creates a temporary file (and its directories). A concurrent delete may remove a
/// directory emptied by it between the two steps ([`remove_empty_parents`]), so a missing
/// directory is made again, a few times: once the file exists, its directory stays.
pub(super) async fn create_temp(temp: &Path) -> std::io::Result<std::fs::File> {
    let mut attempts = 0;
    loop {
        let made = async {
            if let Some(parent) = temp.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::File::create(temp).await
        };
        match made.await {
            Ok(file) => return Ok(file.into_std().await),
            Err(e) if e.kind() == ErrorKind::NotFound && attempts < 8 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Sets `path`'s modification time past `than` if it is not already.
pub(super) fn later_than(path: &Path, than: std::time::SystemTime) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let mtime = file.metadata()?.modified()?;
    if mtime <= than {
        // A microsecond: filesystems keep at least that much of a timestamp.
        file.set_modified(than + std::time::Duration::from_micros(1))?;
    }
    Ok(())
}
