//! The cost model: what one synced event costs on AWS, from what the load run measured (the
//! AWS requests the functions sent, counted at the AWS proxy; the invocations and their
//! durations, from the Runtime API; the event source mapping's own SQS calls) and the prices in
//! `infra/prices.us-east-1.json`.

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Prices in dollars, as configured (us-east-1 on-demand list prices by default).
#[derive(Debug, Clone, Deserialize)]
pub struct Prices {
    pub region: String,
    pub lambda_per_million_requests: f64,
    pub lambda_per_gb_second: f64,
    pub http_api_per_million_requests: f64,
    pub sqs_per_million_requests: f64,
    pub dynamodb_per_million_writes: f64,
    pub dynamodb_per_million_reads: f64,
}

impl Prices {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Prices> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading prices from {}: {e}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// What a run used, in total.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Events synced end to end (a record applied in the ERP).
    pub events: u64,
    /// Webhook requests through API Gateway.
    pub http_requests: u64,
    pub invocations: u64,
    /// Billed duration: every invocation rounded up to the next millisecond.
    pub billed_ms: u64,
    pub memory_mb: u32,
    /// SQS requests, the functions' and the event source mapping's (each up to 64 KB).
    pub sqs_requests: u64,
    /// DynamoDB write and read request units.
    pub dynamodb_writes: u64,
    pub dynamodb_reads: u64,
}

impl Usage {
    /// Adds invocations that ran for `durations`.
    pub fn add_invocations(&mut self, durations: &[Duration]) {
        self.invocations += durations.len() as u64;
        self.billed_ms += durations
            .iter()
            .map(|d| d.as_micros().div_ceil(1000) as u64)
            .sum::<u64>();
    }

    /// Adds one AWS request the functions sent, by operation and body.
    pub fn add_request(&mut self, operation: &str, body: &str) {
        match operation {
            "SendMessage"
            | "SendMessageBatch"
            | "ReceiveMessage"
            | "DeleteMessage"
            | "DeleteMessageBatch"
            | "ChangeMessageVisibility"
            | "ChangeMessageVisibilityBatch"
            | "GetQueueAttributes" => self.sqs_requests += 1,
            "PutItem" | "UpdateItem" | "DeleteItem" => self.dynamodb_writes += 1,
            // Two write units per item in a transaction.
            "TransactWriteItems" => self.dynamodb_writes += 2 * items(body, "TransactItems"),
            "BatchWriteItem" => self.dynamodb_writes += items(body, "RequestItems"),
            "GetItem" | "Query" | "Scan" => self.dynamodb_reads += 1,
            "TransactGetItems" => self.dynamodb_reads += 2 * items(body, "TransactItems"),
            "BatchGetItem" => self.dynamodb_reads += items(body, "RequestItems"),
            _ => {}
        }
    }

    fn per_event(&self, total: u64) -> f64 {
        total as f64 / self.events.max(1) as f64
    }

    pub fn gb_seconds(&self) -> f64 {
        self.billed_ms as f64 / 1000.0 * f64::from(self.memory_mb) / 1024.0
    }
}

/// Items in a request body: the length of the array `key` (TransactItems), or the sum of the
/// arrays under an object `key` (RequestItems, by table). Items are small (under 1 KB), so one
/// item is one unit.
fn items(body: &str, key: &str) -> u64 {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return 1;
    };
    match value.get(key) {
        Some(Value::Array(list)) => list.len() as u64,
        Some(Value::Object(tables)) => tables
            .values()
            .map(|t| {
                t.as_array()
                    .map(|a| a.len() as u64)
                    .or_else(|| {
                        t.get("Keys")
                            .and_then(Value::as_array)
                            .map(|k| k.len() as u64)
                    })
                    .unwrap_or(1)
            })
            .sum(),
        _ => 1,
    }
}

/// One line of the breakdown.
#[derive(Debug, Clone)]
pub struct Line {
    pub item: &'static str,
    /// Units per event (requests, or GB-seconds).
    pub per_event: f64,
    pub unit: &'static str,
    pub per_million_events: f64,
}

/// The cost of a million events like the measured ones, line by line.
pub fn breakdown(usage: &Usage, prices: &Prices) -> Vec<Line> {
    let per_million = |per_event: f64, price_per_million: f64| per_event * price_per_million;
    let gb_s = usage.gb_seconds() / usage.events.max(1) as f64;
    vec![
        Line {
            item: "API Gateway HTTP API",
            per_event: usage.per_event(usage.http_requests),
            unit: "requests",
            per_million_events: per_million(
                usage.per_event(usage.http_requests),
                prices.http_api_per_million_requests,
            ),
        },
        Line {
            item: "Lambda requests",
            per_event: usage.per_event(usage.invocations),
            unit: "invocations",
            per_million_events: per_million(
                usage.per_event(usage.invocations),
                prices.lambda_per_million_requests,
            ),
        },
        Line {
            item: "Lambda duration",
            per_event: gb_s,
            unit: "GB-s",
            per_million_events: gb_s * 1_000_000.0 * prices.lambda_per_gb_second,
        },
        Line {
            item: "SQS",
            per_event: usage.per_event(usage.sqs_requests),
            unit: "requests",
            per_million_events: per_million(
                usage.per_event(usage.sqs_requests),
                prices.sqs_per_million_requests,
            ),
        },
        Line {
            item: "DynamoDB writes",
            per_event: usage.per_event(usage.dynamodb_writes),
            unit: "write units",
            per_million_events: per_million(
                usage.per_event(usage.dynamodb_writes),
                prices.dynamodb_per_million_writes,
            ),
        },
        Line {
            item: "DynamoDB reads",
            per_event: usage.per_event(usage.dynamodb_reads),
            unit: "read units",
            per_million_events: per_million(
                usage.per_event(usage.dynamodb_reads),
                prices.dynamodb_per_million_reads,
            ),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> Prices {
        serde_json::from_str(include_str!("../../../infra/prices.us-east-1.json"))
            .expect("the committed prices parse")
    }

    #[test]
    fn a_million_events_cost_what_their_requests_and_seconds_cost() {
        let mut usage = Usage {
            events: 10,
            http_requests: 10,
            memory_mb: 128,
            ..Usage::default()
        };
        // 10 receiver invocations of 4.2 ms (billed 5 ms) and 1 worker batch of 99.1 ms (100).
        usage.add_invocations(&[Duration::from_micros(4_200); 10]);
        usage.add_invocations(&[Duration::from_micros(99_100)]);
        for _ in 0..10 {
            usage.add_request("PutItem", "{}");
            usage.add_request("GetItem", "{}");
        }
        usage.add_request(
            "TransactWriteItems",
            r#"{"TransactItems":[{"Put":{}},{"Update":{}}]}"#,
        );
        usage.add_request("SendMessageBatch", "{}");
        usage.add_request("GetSecretValue", "{}");
        assert_eq!(usage.invocations, 11);
        assert_eq!(usage.billed_ms, 150);
        assert_eq!(usage.dynamodb_writes, 14);
        assert_eq!(usage.dynamodb_reads, 10);
        assert_eq!(usage.sqs_requests, 1);

        let lines = breakdown(&usage, &prices());
        let cost = |item: &str| {
            lines
                .iter()
                .find(|l| l.item == item)
                .map(|l| l.per_million_events)
                .expect("every line is in the breakdown")
        };
        assert!((cost("API Gateway HTTP API") - 1.00).abs() < 1e-9);
        assert!((cost("Lambda requests") - 1.1 * 0.20).abs() < 1e-9);
        // 150 ms at 128 MB over 10 events: 0.001875 GB-s each.
        assert!((cost("Lambda duration") - 0.001875 * 1e6 * 0.0000133334).abs() < 1e-6);
        assert!((cost("DynamoDB writes") - 1.4 * 0.625).abs() < 1e-9);
        assert!((cost("DynamoDB reads") - 0.125).abs() < 1e-9);
        assert!((cost("SQS") - 0.1 * 0.40).abs() < 1e-9);
    }

    #[test]
    fn batch_requests_count_their_items() {
        let mut usage = Usage::default();
        usage.add_request(
            "BatchWriteItem",
            r#"{"RequestItems":{"t":[{"PutRequest":{}},{"PutRequest":{}},{"DeleteRequest":{}}]}}"#,
        );
        usage.add_request("BatchGetItem", r#"{"RequestItems":{"t":{"Keys":[{},{}]}}}"#);
        assert_eq!(usage.dynamodb_writes, 3);
        assert_eq!(usage.dynamodb_reads, 2);
    }
}
