//! Poller cursors: one item per poller (`CURSOR#{name}`, sort key `CURSOR`) holding the last
//! change a poll handed on, as `position` = `YYYY-MM-DD HH:MM:SS.mmm#<zero-padded id>`, which
//! sorts like the changes themselves. An advance is a conditional write that only moves forward.

use super::ledger::written;
use crate::domain::Timestamp;
use crate::error::StoreError;
use crate::ports::{Cursors, Written};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Clone)]
pub struct DynamoCursors {
    client: Client,
    table: String,
}

impl DynamoCursors {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.into(),
        }
    }
}

fn key(name: &str) -> [(String, AttributeValue); 2] {
    [
        ("pk".into(), AttributeValue::S(format!("CURSOR#{name}"))),
        ("sk".into(), AttributeValue::S("CURSOR".into())),
    ]
}

/// The sortable text of a position, to the millisecond (HubSpot's times have them; Odoo's are
/// whole seconds, `.000`).
fn position(at: &Written) -> String {
    let id: u64 = at.id.parse().unwrap_or_default();
    let millis = at.at.epoch_millis().rem_euclid(1000);
    format!("{}.{millis:03}#{id:020}", at.at.format_naive_utc())
}

/// Reads a position; one written before positions had milliseconds has none.
fn parse(position: &str) -> Option<Written> {
    let (at, id) = position.split_once('#')?;
    let (seconds, millis) = match at.split_once('.') {
        Some((seconds, millis)) => (seconds, millis.parse::<i64>().ok()?),
        None => (at, 0),
    };
    let at = Timestamp::parse_naive_utc(seconds).ok()?;
    Some(Written {
        id: id
            .trim_start_matches('0')
            .parse::<u64>()
            .unwrap_or(0)
            .to_string(),
        at: Timestamp::from_epoch_millis(at.epoch_millis() + millis).ok()?,
    })
}

impl Cursors for DynamoCursors {
    async fn read(&self, name: &str) -> Result<Option<Written>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(name).into_iter().collect()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::unavailable("dynamodb", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        match item.get("position").and_then(|v| v.as_s().ok()) {
            Some(raw) => parse(raw).map(Some).ok_or_else(|| StoreError::Malformed {
                key: format!("CURSOR#{name}"),
                detail: "position is not `YYYY-MM-DD HH:MM:SS.mmm#id`".into(),
            }),
            None => Ok(None),
        }
    }

    async fn advance(&self, name: &str, to: &Written) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("position", AttributeValue::S(position(to)))
            .item(
                "updated_at",
                AttributeValue::N(super::epoch_seconds().to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR #position < :position")
            .expression_attribute_names("#position", "position")
            .expression_attribute_values(":position", AttributeValue::S(position(to)));
        for (k, v) in key(name) {
            request = request.item(k, v);
        }
        // A poll that finds the cursor already further moved nothing back: not an error.
        written(request.send().await).map(drop)
    }

    async fn clear(&self, name: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(name).into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(|e| StoreError::unavailable("dynamodb", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_sort_like_changes_and_read_back() {
        let at = |raw: &str, id: &str| Written {
            id: id.into(),
            at: Timestamp::parse_naive_utc(raw).expect("time"),
        };
        let a = at("2026-03-14 16:02:11", "9");
        let b = at("2026-03-14 16:02:11", "10");
        let c = at("2026-03-14 16:02:12", "1");
        assert!(position(&a) < position(&b) && position(&b) < position(&c));
        assert_eq!(parse(&position(&b)), Some(b));
    }

    #[test]
    fn positions_keep_milliseconds_and_read_the_older_form() {
        let at = |ms: i64, id: &str| Written {
            id: id.into(),
            at: Timestamp::from_epoch_millis(ms).expect("time"),
        };
        let (early, late) = (at(1_773_504_131_007, "12"), at(1_773_504_131_120, "3"));
        assert!(position(&early) < position(&late));
        assert_eq!(
            position(&late),
            "2026-03-14 16:02:11.120#00000000000000000003"
        );
        assert_eq!(parse(&position(&late)), Some(late));
        assert_eq!(
            parse("2026-03-14 16:02:11#00000000000000000042"),
            Some(at(1_773_504_131_000, "42"))
        );
    }
}
