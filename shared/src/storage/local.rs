//! A local directory as a bucket: the embedded default, and the demo's and tests' backend.
//!
//! Object names map to relative paths (`a/b.json` → `<root>/a/b.json`). A name that could
//! leave the root (`..`, an absolute path, NUL) is refused, whatever asked for it. Writes go
//! to a hidden temporary file in the target's directory and are renamed into place, so a
//! reader never sees half an object and a crash leaves at most a stray temp file, which
//! listing skips. The generation of a file is its modification time in nanoseconds, kept
//! strictly increasing per name by the commit step, which checks preconditions under a lock.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use std::io::Write;

use super::{
    BlockingRead, Encoding, Object, ObjectMeta, ObjectStore, ObjectWriter, Precondition, Result,
    StorageError, StorageUrl,
};

/// Temporary files start with this; listing never shows them.
const TEMP_PREFIX: &str = ".rrstitch-tmp-";

#[derive(Debug, Clone)]
pub struct LocalStore {
    url: StorageUrl,
    root: PathBuf,
}

impl LocalStore {
    /// Opens a directory as a bucket. The directory need not exist yet: a results directory
    /// is created on first write, and listing a missing one finds nothing.
    pub fn open(url: StorageUrl) -> Result<Self> {
        match &url {
            StorageUrl::Local(root) => Ok(LocalStore {
                root: root.clone(),
                url,
            }),
            other => Err(StorageError::Permanent {
                op: "open",
                name: other.to_string(),
                source: "not a local directory".into(),
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, name: &str) -> Result<PathBuf> {
        let invalid = |reason: &str| StorageError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        if name.is_empty() || name.ends_with('/') {
            return Err(invalid("empty file name"));
        }
        if name.contains('\0') {
            return Err(invalid("contains NUL"));
        }
        let rel = Path::new(name);
        for part in rel.components() {
            match part {
                Component::Normal(p) if !p.to_string_lossy().starts_with(TEMP_PREFIX) => {}
                Component::Normal(_) => return Err(invalid("reserved temporary name")),
                _ => return Err(invalid("must be a relative path without . or ..")),
            }
        }
        Ok(self.root.join(rel))
    }
}

fn io_error(op: &'static str, name: &str, e: std::io::Error) -> StorageError {
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound {
            name: name.to_owned(),
        },
        ErrorKind::AlreadyExists => StorageError::PreconditionFailed {
            name: name.to_owned(),
        },
        ErrorKind::PermissionDenied | ErrorKind::InvalidInput | ErrorKind::IsADirectory => {
            StorageError::Permanent {
                op,
                name: name.to_owned(),
                source: e.into(),
            }
        }
        _ => StorageError::Transient {
            op,
            name: name.to_owned(),
            source: e.into(),
        },
    }
}

fn meta_of(name: &str, m: &std::fs::Metadata) -> ObjectMeta {
    let generation = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().to_string());
    ObjectMeta {
        name: name.to_owned(),
        size: m.len(),
        generation,
    }
}

/// Where listing `prefix` starts: the directory its part up to the last `/` names (`None`
/// when that part could never name an object: `..`, an absolute path, a temporary name),
/// and what the names directly in that directory must start with.
fn list_start<'p>(root: &Path, prefix: &'p str) -> Option<(PathBuf, &'p str, &'p str)> {
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
fn walk(
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

/// Opens a file to read it as an object: a directory is no object.
fn open_file(path: &Path, name: &str) -> Result<(std::fs::File, std::fs::Metadata)> {
    let file = std::fs::File::open(path).map_err(|e| io_error("get", name, e))?;
    let m = file.metadata().map_err(|e| io_error("get", name, e))?;
    if !m.is_file() {
        return Err(StorageError::NotFound {
            name: name.to_owned(),
        });
    }
    Ok((file, m))
}

fn temp_path(dest: &Path) -> PathBuf {
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
fn commit(temp: &Path, dest: &Path, name: &str, precondition: &Precondition) -> Result<ObjectMeta> {
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
fn lock_dir(dest: &Path) -> std::io::Result<std::fs::File> {
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
fn remove_empty_parents(root: &Path, object: &Path) {
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
async fn create_temp(temp: &Path) -> std::io::Result<std::fs::File> {
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
fn later_than(path: &Path, than: std::time::SystemTime) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let mtime = file.metadata()?.modified()?;
    if mtime <= than {
        // A microsecond: filesystems keep at least that much of a timestamp.
        file.set_modified(than + std::time::Duration::from_micros(1))?;
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// A local read is a blocking syscall anyway: the stitch calls these from its own blocking
/// thread. One `open` and one `read` that returns the file (plus the `read` that finds its
/// end); the size is checked by reading at most one byte past the limit, so there is no
/// `fstat` unless the object is refused.
impl BlockingRead for LocalStore {
    fn read_into(&self, name: &str, limit: u64, buf: &mut Vec<u8>) -> Result<()> {
        use std::io::Read;
        let path = self.path_of(name)?;
        buf.clear();
        let file = std::fs::File::open(&path).map_err(|e| read_error(name, e))?;
        let mut file = file.take(limit.saturating_add(1));
        file.read_to_end(buf).map_err(|e| read_error(name, e))?;
        if buf.len() as u64 > limit {
            let size = file
                .into_inner()
                .metadata()
                .map_or(buf.len() as u64, |m| m.len());
            buf.clear();
            return Err(StorageError::TooLarge {
                name: name.to_owned(),
                size,
                limit,
            });
        }
        Ok(())
    }

    fn read_head_into(&self, name: &str, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        use std::io::Read;
        let path = self.path_of(name)?;
        buf.clear();
        let file = std::fs::File::open(&path).map_err(|e| read_error(name, e))?;
        file.take(len)
            .read_to_end(buf)
            .map_err(|e| read_error(name, e))?;
        Ok(())
    }
}

/// A read's error: a directory is no object, as [`open_file`] has it.
fn read_error(name: &str, e: std::io::Error) -> StorageError {
    if e.kind() == ErrorKind::IsADirectory {
        return StorageError::NotFound {
            name: name.to_owned(),
        };
    }
    io_error("get", name, e)
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn url(&self) -> &StorageUrl {
        &self.url
    }

    fn blocking(&self) -> Option<&dyn BlockingRead> {
        Some(self)
    }

    /// Walks only the directory the prefix names (and below), not the whole tree: a
    /// session's listing costs its own files, whatever else the directory holds.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            let Some((dir, base, stem)) = list_start(&root, &prefix) else {
                return Ok(Vec::new());
            };
            let mut found = Vec::new();
            walk(&dir, base, stem, &mut found).map_err(|e| io_error("list", &prefix, e))?;
            let mut metas: Vec<ObjectMeta> = found
                .into_iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .map(|(name, m)| meta_of(&name, &m))
                .collect();
            metas.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(metas)
        })
        .await
    }

    async fn stat(&self, name: &str) -> Result<ObjectMeta> {
        let path = self.path_of(name)?;
        let m = tokio::fs::metadata(&path)
            .await
            .map_err(|e| io_error("stat", name, e))?;
        if !m.is_file() {
            return Err(StorageError::NotFound {
                name: name.to_owned(),
            });
        }
        Ok(meta_of(name, &m))
    }

    async fn get(&self, name: &str, limit: u64) -> Result<Object> {
        let path = self.path_of(name)?;
        let name = name.to_owned();
        blocking(move || {
            use std::io::Read;
            let (file, m) = open_file(&path, &name)?;
            if m.len() > limit {
                return Err(StorageError::TooLarge {
                    name,
                    size: m.len(),
                    limit,
                });
            }
            let mut body = Vec::with_capacity(m.len() as usize);
            // `take` guards against a file that grew after the size check.
            file.take(limit.saturating_add(1))
                .read_to_end(&mut body)
                .map_err(|e| io_error("get", &name, e))?;
            if body.len() as u64 > limit {
                return Err(StorageError::TooLarge {
                    name,
                    size: body.len() as u64,
                    limit,
                });
            }
            Ok(Object {
                meta: meta_of(&name, &m),
                body: Bytes::from(body),
            })
        })
        .await
    }

    async fn get_head(&self, name: &str, len: u64) -> Result<Bytes> {
        let path = self.path_of(name)?;
        let name = name.to_owned();
        blocking(move || {
            use std::io::Read;
            let (file, m) = open_file(&path, &name)?;
            let mut head = Vec::with_capacity(len.min(m.len()) as usize);
            file.take(len)
                .read_to_end(&mut head)
                .map_err(|e| io_error("get", &name, e))?;
            Ok(Bytes::from(head))
        })
        .await
    }

    async fn put_encoded(
        &self,
        name: &str,
        body: Bytes,
        precondition: Precondition,
        _encoding: Encoding,
    ) -> Result<ObjectMeta> {
        let mut writer = self.writer(name, precondition).await?;
        writer.write(body).await?;
        writer.finish().await
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let path = self.path_of(name)?;
        let name = name.to_owned();
        let root = self.root.clone();
        blocking(move || {
            // Under the directory lock, so a delete never lands between another writer's
            // precondition check and its rename. No directory: no object either.
            let _lock = match lock_dir(&path) {
                Ok(lock) => lock,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io_error("delete", &name, e)),
            };
            let deleted = match std::fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == ErrorKind::NotFound => false,
                Err(e) => return Err(io_error("delete", &name, e)),
            };
            remove_empty_parents(&root, &path);
            Ok(deleted)
        })
        .await
    }

    async fn writer(
        &self,
        name: &str,
        precondition: Precondition,
    ) -> Result<Box<dyn ObjectWriter>> {
        let dest = self.path_of(name)?;
        let temp = temp_path(&dest);
        let file = create_temp(&temp)
            .await
            .map_err(|e| io_error("put", name, e))?;
        Ok(Box::new(LocalWriter {
            name: name.to_owned(),
            dest,
            temp,
            file: Some(file),
            precondition,
        }))
    }
}

/// Writes each part on a blocking thread straight from the `Bytes` it was given.
///
/// `tokio::fs::File` would copy every part into its own buffer first (a fresh allocation,
/// faulted in page by page), which cost as much as the write itself in `make bench`; moving
/// the file and the part to the blocking thread costs no copy.
struct LocalWriter {
    name: String,
    dest: PathBuf,
    temp: PathBuf,
    /// `None` only while a write is in flight, or after one failed.
    file: Option<std::fs::File>,
    precondition: Precondition,
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        let mut file = self.file.take().ok_or_else(|| StorageError::Permanent {
            op: "put",
            name: self.name.clone(),
            source: "an earlier write to this object failed".into(),
        })?;
        let name = self.name.clone();
        self.file = Some(
            blocking(move || {
                file.write_all(&data)
                    .map(|()| file)
                    .map_err(|e| io_error("put", &name, e))
            })
            .await?,
        );
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<ObjectMeta> {
        let LocalWriter {
            name,
            dest,
            temp,
            file,
            precondition,
        } = *self;
        if file.is_none() {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(StorageError::Permanent {
                op: "put",
                name,
                source: "an earlier write to this object failed".into(),
            });
        }
        drop(file);
        blocking(move || commit(&temp, &dest, &name, &precondition)).await
    }

    async fn abort(self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.temp).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> LocalStore {
        LocalStore::open(StorageUrl::Local(dir.to_path_buf())).unwrap()
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        super::super::conformance::run_all(&store(dir.path())).await;
    }

    #[tokio::test]
    async fn names_cannot_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir.path().join("bucket"));
        for bad in [
            "../x.json",
            "/etc/passwd",
            "a/../../x",
            "a\0b",
            "",
            "dir/",
            "./x",
        ] {
            let err = s
                .put(bad, Bytes::from_static(b"x"), Precondition::None)
                .await;
            assert!(
                matches!(err, Err(StorageError::InvalidName { .. })),
                "{bad:?}: {err:?}"
            );
        }
        assert!(!dir.path().join("x.json").exists());
    }

    /// An entry the directory read names but that is gone by its stat (a dangling link is
    /// that moment, frozen) is skipped, not a failure of the whole listing; and only the
    /// prefix's own directory is walked.
    #[tokio::test]
    async fn listing_skips_what_vanished_and_walks_only_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.put("g/1/a.json", Bytes::from_static(b"x"), Precondition::None)
            .await
            .unwrap();
        std::fs::create_dir_all(dir.path().join("g/2")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("g/2/b.json")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("elsewhere.json"))
            .unwrap();
        let names = |l: Vec<ObjectMeta>| l.into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(s.list("g/").await.unwrap()), ["g/1/a.json"]);
        assert_eq!(names(s.list("").await.unwrap()), ["g/1/a.json"]);
        assert!(
            s.list("../").await.unwrap().is_empty(),
            "no listing outside the root"
        );
    }

    /// A bucket has no directories: deleting the last object under one leaves no empty
    /// folder behind (a re-stitch's old generation, an erased session), up to the root.
    #[tokio::test]
    async fn deleting_the_last_object_of_a_folder_removes_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("results");
        let s = store(&root);
        for name in ["g/gen1/0.json", "g/gen1/1.json", "g/manifest.json"] {
            s.put(name, Bytes::from_static(b"x"), Precondition::None)
                .await
                .unwrap();
        }
        assert!(s.delete("g/gen1/0.json").await.unwrap());
        assert!(root.join("g/gen1").is_dir(), "not empty yet");
        assert!(s.delete("g/gen1/1.json").await.unwrap());
        assert!(!root.join("g/gen1").exists(), "an emptied folder goes");
        assert!(
            root.join("g").is_dir(),
            "its parent still holds the manifest"
        );
        assert!(s.delete("g/manifest.json").await.unwrap());
        assert!(!root.join("g").exists());
        assert!(root.is_dir(), "the root stays");
        s.put(
            "g/gen2/0.json",
            Bytes::from_static(b"x"),
            Precondition::None,
        )
        .await
        .expect("a folder can be made again");
    }

    #[tokio::test]
    async fn temp_files_are_invisible_and_cleaned_on_abort() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let mut w = s.writer("r.json", Precondition::None).await.unwrap();
        w.write(Bytes::from_static(b"partial")).await.unwrap();
        assert!(
            s.list("").await.unwrap().is_empty(),
            "half-written object is visible"
        );
        w.abort().await;
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
