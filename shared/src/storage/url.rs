//! Naming a bucket: `gs://bucket`, `s3://bucket`, or a local directory.

use std::fmt;
use std::path::{Path, PathBuf};

/// Which bucket a store reads and writes. Its text form is what the index records as a
/// chunk's bucket, and parsing that text opens the same bucket again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StorageUrl {
    /// A directory standing in for a bucket; kept absolute so the index can find it from
    /// any working directory.
    Local(PathBuf),
    Gcs {
        bucket: String,
    },
    S3 {
        bucket: String,
    },
}

impl StorageUrl {
    /// Parses `gs://bucket[/prefix]`, `s3://bucket[/prefix]`, `file:///dir` or a plain path,
    /// returning the bucket and the prefix the URL named ("" for none, else ending in `/`).
    pub fn parse(text: &str) -> Result<(StorageUrl, String), String> {
        let cloud = |rest: &str, make: fn(String) -> StorageUrl| {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("{text}: no bucket name"));
            }
            let prefix = match prefix.trim_matches('/') {
                "" => String::new(),
                p => format!("{p}/"),
            };
            Ok((make(bucket.to_owned()), prefix))
        };
        if let Some(rest) = text.strip_prefix("gs://") {
            return cloud(rest, |bucket| StorageUrl::Gcs { bucket });
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            return cloud(rest, |bucket| StorageUrl::S3 { bucket });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            if scheme != "file" {
                return Err(format!(
                    "{text}: unknown scheme {scheme:?} (use gs://, s3:// or a directory)"
                ));
            }
        }
        let path = text.strip_prefix("file://").unwrap_or(text);
        if path.is_empty() {
            return Err("empty bucket path".into());
        }
        Ok((StorageUrl::Local(absolute(Path::new(path))), String::new()))
    }

    pub fn scheme(&self) -> &'static str {
        match self {
            StorageUrl::Local(_) => "file",
            StorageUrl::Gcs { .. } => "gs",
            StorageUrl::S3 { .. } => "s3",
        }
    }

    /// The cargo feature that compiles this backend in ("" for a local directory).
    pub fn feature(&self) -> &'static str {
        match self {
            StorageUrl::Local(_) => "",
            StorageUrl::Gcs { .. } => "gcp",
            StorageUrl::S3 { .. } => "aws",
        }
    }

    /// The bucket name for cloud stores; the directory for local ones.
    pub fn bucket(&self) -> String {
        match self {
            StorageUrl::Local(p) => p.display().to_string(),
            StorageUrl::Gcs { bucket } | StorageUrl::S3 { bucket } => bucket.clone(),
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Local(p) => write!(f, "{}", p.display()),
            StorageUrl::Gcs { bucket } => write!(f, "gs://{bucket}"),
            StorageUrl::S3 { bucket } => write!(f, "s3://{bucket}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_left_out_names_its_feature() {
        let (gs, _) = StorageUrl::parse("gs://b").unwrap();
        let (s3, _) = StorageUrl::parse("s3://b").unwrap();
        assert_eq!(gs.feature(), "gcp");
        assert_eq!(s3.feature(), "aws");
        let said = crate::storage::not_in_this_build("gs buckets", gs.feature());
        assert!(said.contains("`gcp` feature"), "{said}");
        assert!(said.contains("--features gcp"), "{said}");
    }

    #[test]
    fn parses_buckets_and_prefixes() {
        assert_eq!(
            StorageUrl::parse("gs://b").unwrap(),
            (StorageUrl::Gcs { bucket: "b".into() }, String::new())
        );
        assert_eq!(
            StorageUrl::parse("s3://b/in/chunks/").unwrap(),
            (StorageUrl::S3 { bucket: "b".into() }, "in/chunks/".into())
        );
        assert_eq!(
            StorageUrl::parse("/tmp/x").unwrap().0,
            StorageUrl::Local("/tmp/x".into())
        );
        assert_eq!(
            StorageUrl::parse("file:///tmp/x").unwrap().0,
            StorageUrl::Local("/tmp/x".into())
        );
        assert!(StorageUrl::parse("gs://").is_err());
        assert!(StorageUrl::parse("ftp://x").is_err());
    }

    #[test]
    fn text_form_round_trips() {
        for text in ["gs://b", "s3://b", "/tmp/somewhere"] {
            let (url, _) = StorageUrl::parse(text).unwrap();
            assert_eq!(url.to_string(), text);
            assert_eq!(StorageUrl::parse(&url.to_string()).unwrap().0, url);
        }
    }
}
