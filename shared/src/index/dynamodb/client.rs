//! The DynamoDB client, its error classification, and the table as Terraform declares it.

use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;

use super::{IDLE_INDEX, IDLE_PK, IDLE_SK};
use crate::aws::{failure, Failure};
use crate::index::{IndexError, Result, RECORD_TTL};

/// The DynamoDB session store; [`super::DynamoIndex`] is the index over it.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: String,
    /// How long items live after their last activity (`expire_at`), [`RECORD_TTL`] unless
    /// [`DynamoStore::with_record_ttl`] says otherwise.
    pub(super) record_ttl: Duration,
}

pub(super) fn sdk_error<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> IndexError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match failure(&err) {
        Failure::Transient => IndexError::Transient {
            op,
            source: err.into(),
        },
        _ => IndexError::Permanent {
            op,
            source: err.into(),
        },
    }
}

impl DynamoStore {
    /// Connects with the SDK's default chain (`AWS_ENDPOINT_URL` for an emulator).
    pub async fn connect(table: &str) -> Self {
        let shared = crate::aws::sdk_config().await;
        DynamoStore {
            client: Client::new(&shared),
            table: table.to_owned(),
            record_ttl: RECORD_TTL,
        }
    }

    /// Connects to an emulator at `endpoint`, with test credentials.
    pub async fn on_emulator(table: &str, endpoint: &str) -> Self {
        let shared = crate::aws::emulator_config(endpoint).await;
        DynamoStore {
            client: Client::new(&shared),
            table: table.to_owned(),
            record_ttl: RECORD_TTL,
        }
    }

    /// Items expire `ttl` after their last activity (Terraform sets `RRSTITCH_INDEX_TTL_DAYS`
    /// from the chunk retention, so an index record outlives the chunk it describes).
    pub fn with_record_ttl(mut self, ttl: Duration) -> Self {
        self.record_ttl = ttl;
        self
    }

    /// Creates the table with its sparse, sharded idle index, as Terraform does in a
    /// deployment (`infra/aws/main.tf`). For tests and local emulators.
    pub async fn create_table(&self) -> Result<()> {
        let attr = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .expect("name and type are set")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type are set")
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(IDLE_INDEX)
            .key_schema(key(IDLE_PK, KeyType::Hash))
            .key_schema(key(IDLE_SK, KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .expect("index fields are set");
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .attribute_definitions(attr("sk", ScalarAttributeType::S))
            .attribute_definitions(attr(IDLE_PK, ScalarAttributeType::S))
            .attribute_definitions(attr(IDLE_SK, ScalarAttributeType::N))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .global_secondary_indexes(gsi)
            .send()
            .await
            .map_err(|e| sdk_error("create_table", e))?;
        Ok(())
    }
}
