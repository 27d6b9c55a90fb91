//! A local directory as a bucket: the embedded default, and the demo's and tests' backend.
//!
//! Object names map to relative paths (`a/b.json` → `<root>/a/b.json`). A name that could
//! leave the root (`..`, an absolute path, NUL) is refused, whatever asked for it. Writes go
//! to a hidden temporary file in the target's directory and are renamed into place, so a
//! reader never sees half an object and a crash leaves at most a stray temp file, which
//! listing skips. The generation of a file is its modification time in nanoseconds, kept
//! strictly increasing per name by the commit step, which checks preconditions under a lock.

mod commit;
mod listing;
mod writer;

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    BlockingRead, Encoding, Object, ObjectMeta, ObjectStore, ObjectWriter, Page, Precondition,
    Result, StorageError, StorageUrl,
};
use commit::{create_temp, lock_dir, remove_empty_parents, temp_path};
use listing::{list_start, walk_sorted};
use writer::LocalWriter;

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

    /// Walks only the directory the prefix names (and below), in name order, from the
    /// bound on: a session's listing costs its own files, whatever else the directory holds,
    /// and a page costs the page (see [`walk_sorted`]).
    async fn list_page(&self, prefix: &str, start_after: Option<&str>, max: usize) -> Result<Page> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        let after = start_after.unwrap_or("").to_owned();
        let max = max.max(1);
        blocking(move || {
            let Some((dir, base, stem)) = list_start(&root, &prefix) else {
                return Ok(Page::default());
            };
            let mut found = Vec::new();
            walk_sorted(&dir, base, stem, &after, max + 1, &mut found)
                .map_err(|e| io_error("list", &prefix, e))?;
            let metas = found
                .into_iter()
                .map(|(name, m)| meta_of(&name, &m))
                .collect();
            Ok(Page::from_overfull(metas, max))
        })
        .await
    }

    /// Each page re-reads the directory it stopped in, so pages here are larger than a
    /// cloud request's: 10,000 names are about a megabyte.
    fn page_size(&self) -> usize {
        10_000
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
