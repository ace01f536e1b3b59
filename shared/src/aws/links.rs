//! Links between one entity's records in two systems, stored both ways
//! (`LINK#{entity}#{system}#{id}` / `LINK#{other_system}`) in one transaction, so either side
//! finds its counterpart with a single `GetItem`.

use crate::aws::epoch_seconds;
use crate::domain::EntityRef;
use crate::error::StoreError;
use crate::ports::Links;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

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

    fn put(
        &self,
        entity: &str,
        from: &EntityRef,
        to: &EntityRef,
    ) -> Result<TransactWriteItem, StoreError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let put = Put::builder()
            .table_name(&self.table)
            .item(
                "pk",
                s(&format!("LINK#{entity}#{}#{}", from.system, from.id)),
            )
            .item("sk", s(&format!("LINK#{}", to.system)))
            .item("entity", s(entity))
            .item("other_id", s(&to.id))
            .item("updated_at", AttributeValue::N(epoch_seconds().to_string()))
            .build()
            .map_err(|e| StoreError::unavailable("dynamodb", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

impl Links for DynamoLinks {
    async fn link(&self, entity: &str, a: &EntityRef, b: &EntityRef) -> Result<(), StoreError> {
        self.client
            .transact_write_items()
            .transact_items(self.put(entity, a, b)?)
            .transact_items(self.put(entity, b, a)?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::unavailable("dynamodb", e))
    }
}
