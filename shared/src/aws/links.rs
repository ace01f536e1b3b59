//! Links between one entity's records in two systems, stored both ways
//! (`LINK#{entity}#{system}#{id}` / `LINK#{other_system}`), so either side finds its counterpart
//! with a single `GetItem`.
//!
//! The two items are two idempotent `PutItem`s sent together, not a transaction: a link only
//! ever moves forward to the same pair, so a half-written link (one put failed) is completed by
//! the retry that the failure causes, and two puts cost half the write units of a transaction.

use crate::aws::epoch_seconds;
use crate::domain::EntityRef;
use crate::error::StoreError;
use crate::ports::Links;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Clone)]
pub struct DynamoLinks {
    client: Client,
    table: String,
}

impl DynamoLinks {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.into(),
        }
    }

    /// Writes the item that leads from `from` to `to`.
    async fn put(&self, entity: &str, from: &EntityRef, to: &EntityRef) -> Result<(), StoreError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        self.client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                s(&format!("LINK#{entity}#{}#{}", from.system, from.id)),
            )
            .item("sk", s(&format!("LINK#{}", to.system)))
            .item("entity", s(entity))
            .item("other_id", s(&to.id))
            .item("updated_at", AttributeValue::N(epoch_seconds().to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::unavailable("dynamodb", e))
    }
}

impl Links for DynamoLinks {
    async fn link(&self, entity: &str, a: &EntityRef, b: &EntityRef) -> Result<(), StoreError> {
        futures_util::future::try_join(self.put(entity, a, b), self.put(entity, b, a))
            .await
            .map(|_| ())
    }
}
