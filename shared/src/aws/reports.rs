//! The reconciler's drift reports in DynamoDB: one item per run under one partition
//! (`REPORT#reconcile`, sort key `{started_at}#{run_id}`), so the newest are one query away.
//! Each holds the report as JSON (a few KB: counts and a bounded sample of record ids and field
//! names) and expires after `retention`.

use crate::aws::epoch_seconds;
use crate::error::StoreError;
use crate::flows::reconcile::report::DriftReport;
use crate::ports::DriftReports;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::time::Duration;

const PARTITION: &str = "REPORT#reconcile";

#[derive(Debug, Clone)]
pub struct DynamoDriftReports {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoDriftReports {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.into(),
            retention,
        }
    }
}

impl DriftReports for DynamoDriftReports {
    async fn save(&self, report: &DriftReport) -> Result<(), StoreError> {
        let json = serde_json::to_string(report).map_err(|e| StoreError::Malformed {
            key: PARTITION.into(),
            detail: e.to_string(),
        })?;
        let expires = epoch_seconds() + self.retention.as_secs() as i64;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(PARTITION.into()))
            .item(
                "sk",
                AttributeValue::S(format!("{}#{}", report.started_at, report.run_id)),
            )
            .item("report", AttributeValue::S(json))
            .item("drift", AttributeValue::N(report.drift().to_string()))
            .item("expires_at", AttributeValue::N(expires.to_string()))
            .send()
            .await
            .map(drop)
            .map_err(|e| StoreError::unavailable("dynamodb", e))
    }

    async fn latest(&self, limit: usize) -> Result<Vec<DriftReport>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(PARTITION.into()))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100) as i32)
            .send()
            .await
            .map_err(|e| StoreError::unavailable("dynamodb", e))?;
        out.items()
            .iter()
            .map(|item| {
                let raw = item
                    .get("report")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| StoreError::Malformed {
                        key: PARTITION.into(),
                        detail: "a report item has no report".into(),
                    })?;
                serde_json::from_str(raw).map_err(|e| StoreError::Malformed {
                    key: PARTITION.into(),
                    detail: e.to_string(),
                })
            })
            .collect()
    }
}
