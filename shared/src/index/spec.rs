//! Which index backend a deployment uses: a plain value the edge parses from its
//! configuration and [`super::open`] turns into a store, so the core names its backends without
//! knowing where the choice came from.

/// Which session index backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexSpec {
    Sqlite(std::path::PathBuf),
    Firestore {
        project: String,
        database: String,
        collection: String,
    },
    DynamoDb {
        table: String,
    },
}

impl IndexSpec {
    /// The cargo feature that compiles this backend in ("" for the embedded one).
    pub fn feature(&self) -> &'static str {
        match self {
            IndexSpec::Sqlite(_) => "",
            IndexSpec::Firestore { .. } => "gcp",
            IndexSpec::DynamoDb { .. } => "aws",
        }
    }
}
