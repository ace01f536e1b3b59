//! `puente-ops customers`: the customers the two-way sync holds back, and the notices it left for
//! people, from the state table the customer-sync worker writes (`shared::aws::customer_links`).
//! A linked customer's CRM-side link item carries its quarantine (`quarantine_reason`,
//! `quarantined_at_ms`) and the circuit breaker's window; notices are `NOTICE#customer#...` items
//! holding ids, a kind and a detail, never record data. Listing reads both with filtered,
//! paginated Scans; `release` lifts one quarantine with a conditional `UpdateItem` and then puts
//! one change event per side on the customer queue, so the worker syncs both records once.

use crate::failures::utc_seconds;
use crate::{Target, resolve_queue};
use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_sqs::types::MessageAttributeValue;
use shared::connectors::{hubspot, odoo};
use shared::domain::{ChangeEvent, Entity, Timestamp};
use shared::flows::poll::change_message;
use shared::flows::sync_customer::FLOW;
use std::collections::HashMap;
use std::fmt;

type Item = HashMap<String, AttributeValue>;

/// What a release puts in `subscription_type`, so logs and dead letters show who asked.
pub const RELEASE_SUBSCRIPTION: &str = "puente.release";
/// Who made the change, as the events' `account_id` and `change_source` say.
pub const RELEASED_BY: &str = "puente-ops";

/// What `customers` should list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerQuery {
    /// Stop after this many quarantined customers, and as many notices. Each scan stops there
    /// too, so when the limit is reached the rows are the first found, not necessarily the
    /// newest.
    pub max: usize,
}

impl Default for CustomerQuery {
    fn default() -> Self {
        Self { max: 100 }
    }
}

/// One quarantined customer, from its CRM-side link item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuarantinedCustomer {
    pub crm_id: String,
    /// `None` when the link item names no ERP record.
    pub erp_id: Option<String>,
    /// Epoch milliseconds.
    pub quarantined_at_ms: Option<i64>,
    /// Why, e.g. `more than 10 writes within 10 minutes` or `deleted in hubspot`.
    pub reason: String,
}

impl QuarantinedCustomer {
    fn from_item(item: &Item) -> Option<Self> {
        // `LINK#customer#{system}#{id}`: the CRM side holds the quarantine.
        let pk = text(item, "pk")?;
        let (_system, crm_id) = pk.strip_prefix(&format!("LINK#{FLOW}#"))?.split_once('#')?;
        Some(Self {
            crm_id: crm_id.to_owned(),
            erp_id: text(item, "other_id").filter(|id| !id.is_empty()),
            quarantined_at_ms: number(item, "quarantined_at_ms"),
            reason: text(item, "quarantine_reason")?,
        })
    }
}

impl fmt::Display for QuarantinedCustomer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crm {}  erp {}  quarantined {}  {}",
            self.crm_id,
            self.erp_id.as_deref().unwrap_or("-"),
            self.quarantined_at_ms
                .map_or_else(|| "-".to_owned(), utc_millis),
            one_line(&self.reason),
        )
    }
}

/// One notice for people: a conflict, a deletion or a merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notice {
    /// Epoch seconds.
    pub noticed_at: Option<i64>,
    /// `conflict`, `deleted` or `merged`.
    pub kind: String,
    /// The record it is about, `{system}#{id}`.
    pub record: String,
    pub detail: String,
}

impl Notice {
    fn from_item(item: &Item) -> Option<Self> {
        let pk = text(item, "pk")?;
        let record = pk.strip_prefix(&format!("NOTICE#{FLOW}#"))?;
        Some(Self {
            noticed_at: number(item, "noticed_at"),
            kind: text(item, "kind").unwrap_or_else(|| "-".to_owned()),
            record: text(item, "record").unwrap_or_else(|| record.to_owned()),
            detail: text(item, "detail").unwrap_or_default(),
        })
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  {}  {}  {}",
            self.noticed_at.map_or_else(|| "-".to_owned(), utc_seconds),
            self.kind,
            self.record,
            one_line(&self.detail),
        )
    }
}

/// What `customers` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customers {
    /// Newest quarantine first; rows without a time last.
    pub quarantined: Vec<QuarantinedCustomer>,
    /// Newest notice first; rows without a time last.
    pub notices: Vec<Notice>,
}

/// The quarantined customers and the notices about customers in `target`'s state table.
pub async fn customers(
    sdk: &aws_config::SdkConfig,
    target: &Target,
    query: CustomerQuery,
) -> anyhow::Result<Customers> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let table = target.state_table();
    let (link_prefix, notice_prefix) = (format!("LINK#{FLOW}#"), format!("NOTICE#{FLOW}#"));
    let quarantined = scan(
        &dynamodb,
        &table,
        "begins_with(pk, :prefix) AND attribute_exists(quarantine_reason)",
        &link_prefix,
        query.max,
        QuarantinedCustomer::from_item,
    );
    let notices = scan(
        &dynamodb,
        &table,
        "begins_with(pk, :prefix)",
        &notice_prefix,
        query.max,
        Notice::from_item,
    );
    let (mut quarantined, mut notices) = tokio::try_join!(quarantined, notices)?;
    quarantined.sort_by(|a, b| {
        b.quarantined_at_ms
            .cmp(&a.quarantined_at_ms)
            .then_with(|| a.crm_id.cmp(&b.crm_id))
    });
    notices.sort_by(|a, b| {
        b.noticed_at
            .cmp(&a.noticed_at)
            .then_with(|| (&a.record, &a.kind).cmp(&(&b.record, &b.kind)))
    });
    Ok(Customers {
        quarantined,
        notices,
    })
}

/// Up to `max` rows of the items whose pk starts with `prefix` and that pass `filter`.
async fn scan<T>(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    filter: &str,
    prefix: &str,
    max: usize,
    row: impl Fn(&Item) -> Option<T>,
) -> anyhow::Result<Vec<T>> {
    let request = dynamodb
        .scan()
        .table_name(table)
        .filter_expression(filter)
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()));
    let mut found = Vec::new();
    let mut start = None;
    while found.len() < max {
        let page = request
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .with_context(|| format!("scan {table}"))?;
        found.extend(page.items().iter().filter_map(&row).take(max - found.len()));
        // A filtered page may be empty and still not the last: only its key says so.
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => break,
        }
    }
    Ok(found)
}

/// Which customer to release, and whether only to say what would happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The HubSpot company id.
    pub crm_id: String,
    pub dry_run: bool,
}

/// What a release did (in a dry run: would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub customer: QuarantinedCustomer,
    /// The queue the change events went to.
    pub queue: String,
    /// One change event per side: the CRM company, then the ERP partner when the link names it.
    pub events: Vec<ChangeEvent>,
    /// The SQS message id of each event sent, in the same order; empty in a dry run.
    pub message_ids: Vec<String>,
    pub dry_run: bool,
}

impl fmt::Display for Released {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let customer = &self.customer;
        let (released, queued) = if self.dry_run {
            ("dry run: would release", "would queue")
        } else {
            ("released", "queued")
        };
        writeln!(
            f,
            "{released} customer {} (erp {}), quarantined {}: {}",
            customer.crm_id,
            customer.erp_id.as_deref().unwrap_or("-"),
            customer
                .quarantined_at_ms
                .map_or_else(|| "-".to_owned(), utc_millis),
            one_line(&customer.reason),
        )?;
        write!(f, "{queued} a re-sync on {}:", self.queue)?;
        for (n, event) in self.events.iter().enumerate() {
            write!(f, "\n  {} {}", event.source, event.object_id)?;
            if let Some(id) = self.message_ids.get(n) {
                write!(f, "  message {id}")?;
            }
        }
        if self.dry_run {
            write!(f, "\nnothing changed")?;
        }
        Ok(())
    }
}

/// Lifts the quarantine of the customer linked to the CRM company `release.crm_id` (clears it
/// and restarts the breaker's window, only if it is quarantined), then puts one change event per
/// side on the customer queue so the worker syncs each record's current state once. Fails,
/// changing nothing, when the customer is not quarantined or not linked. A dry run reads the
/// link and resolves the queue, and writes nothing.
pub async fn release(
    sdk: &aws_config::SdkConfig,
    target: &Target,
    release: &Release,
) -> anyhow::Result<Released> {
    let crm_id = release.crm_id.as_str();
    anyhow::ensure!(
        !crm_id.is_empty() && !crm_id.contains('#'),
        "{crm_id:?} is not a CRM id"
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let table = target.state_table();
    let queue = Target {
        flow: FLOW.into(),
        ..target.clone()
    }
    .queue_name();
    // Resolved before anything changes: a wrong stack fails with nothing released.
    let queue_url = resolve_queue(&sqs, &queue).await?;
    let pk = format!("LINK#{FLOW}#{}#{crm_id}", hubspot::SYSTEM);
    let sk = format!("LINK#{}", odoo::SYSTEM);
    let not_quarantined =
        || anyhow::anyhow!("customer {crm_id} is not quarantined (or not linked)");

    let before = if release.dry_run {
        dynamodb
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("read the link of customer {crm_id} in {table}"))?
            .item
            .filter(|item| item.contains_key("quarantine_reason"))
            .ok_or_else(not_quarantined)?
    } else {
        let updated = dynamodb
            .update_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .update_expression(
                "REMOVE quarantine_reason, quarantined_at_ms \
                 SET window_writes = :zero, window_started_ms = :zero",
            )
            .condition_expression("attribute_exists(quarantine_reason)")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            // The item as it was: the other side's id, and the quarantine just lifted.
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match updated {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Err(not_quarantined());
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("release customer {crm_id} in {table}"))
                );
            }
        }
    };
    let customer = QuarantinedCustomer {
        crm_id: crm_id.to_owned(),
        erp_id: text(&before, "other_id").filter(|id| !id.is_empty() && !id.contains('#')),
        quarantined_at_ms: number(&before, "quarantined_at_ms"),
        reason: text(&before, "quarantine_reason").unwrap_or_default(),
    };

    let now_ms = Timestamp::now().epoch_millis();
    let events: Vec<ChangeEvent> = [
        Some((hubspot::SYSTEM, crm_id)),
        customer.erp_id.as_deref().map(|id| (odoo::SYSTEM, id)),
    ]
    .into_iter()
    .flatten()
    .map(|(system, id)| resync(system.name(), id, now_ms))
    .collect();
    let mut message_ids = Vec::new();
    if !release.dry_run {
        for event in &events {
            let sent = send(&sqs, &queue_url, event).await.with_context(|| {
                format!(
                    "customer {crm_id} was released, but the re-sync of {} {} was not queued \
                     on {queue}; the record's next edit syncs it",
                    event.source, event.object_id
                )
            })?;
            message_ids.push(sent);
        }
    }
    Ok(Released {
        customer,
        queue,
        events,
        message_ids,
        dry_run: release.dry_run,
    })
}

/// The change event that makes the worker sync `id`'s current state from `source`.
fn resync(source: &str, id: &str, now_ms: i64) -> ChangeEvent {
    ChangeEvent {
        source: source.to_owned(),
        entity: Entity::Customer,
        subscription_type: RELEASE_SUBSCRIPTION.into(),
        object_id: id.to_owned(),
        event_id: format!("release@{now_ms}"),
        account_id: RELEASED_BY.into(),
        occurred_at_ms: now_ms,
        change_source: Some(RELEASED_BY.into()),
        merged_ids: Vec::new(),
    }
}

/// Sends one change event with the attributes every producer sets; returns its message id.
async fn send(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: &ChangeEvent,
) -> anyhow::Result<String> {
    let message = change_message(event);
    let mut request = sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(message.body);
    for (name, value) in message.attributes {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .context("build a message attribute")?;
        request = request.message_attributes(name, value);
    }
    let out = request.send().await.context("send to the customer queue")?;
    Ok(out.message_id().unwrap_or_default().to_owned())
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// Epoch milliseconds as [`utc_seconds`] prints them, to the second.
fn utc_millis(epoch_ms: i64) -> String {
    utc_seconds(epoch_ms.div_euclid(1000))
}

/// Control characters blanked, so a row stays one line.
fn one_line(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect()
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: i64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    #[test]
    fn a_quarantined_link_becomes_a_row_with_its_ids_time_and_reason() {
        let link = item(&[
            ("pk", s("LINK#customer#hubspot#901")),
            ("sk", s("LINK#odoo")),
            ("other_id", s("42")),
            ("quarantined_at_ms", n(1_704_067_199_999)),
            (
                "quarantine_reason",
                s("more than 3 writes\nwithin 10 minutes"),
            ),
        ]);
        let row = QuarantinedCustomer::from_item(&link).expect("a row");
        assert_eq!(
            (row.crm_id.as_str(), row.erp_id.as_deref()),
            ("901", Some("42"))
        );
        assert_eq!(
            row.to_string(),
            "crm 901  erp 42  quarantined 2023-12-31T23:59:59Z  more than 3 writes within 10 minutes"
        );
    }

    #[test]
    fn only_quarantined_link_items_become_rows() {
        let released = item(&[
            ("pk", s("LINK#customer#hubspot#901")),
            ("other_id", s("42")),
        ]);
        assert!(QuarantinedCustomer::from_item(&released).is_none());
        let ledger = item(&[
            ("pk", s("IDEM#customer#hubspot#901#1")),
            ("quarantine_reason", s("x")),
        ]);
        assert!(QuarantinedCustomer::from_item(&ledger).is_none());
    }

    #[test]
    fn a_notice_row_shows_when_what_and_which_record() {
        let notice = item(&[
            ("pk", s("NOTICE#customer#hubspot#901")),
            ("sk", s("deleted#hubspot#901")),
            ("kind", s("deleted")),
            ("record", s("hubspot#901")),
            ("detail", s("deleted in hubspot")),
            ("noticed_at", n(951_782_400)),
        ]);
        assert_eq!(
            Notice::from_item(&notice).expect("a row").to_string(),
            "2000-02-29T00:00:00Z  deleted  hubspot#901  deleted in hubspot"
        );
        assert!(Notice::from_item(&item(&[("pk", s("LINK#customer#hubspot#901"))])).is_none());
    }

    #[test]
    fn a_release_event_is_a_customer_change_now_from_the_operator() {
        let event = resync("odoo", "42", 1_704_067_199_000);
        assert_eq!(event.entity, Entity::Customer);
        assert_eq!(event.subscription_type, "puente.release");
        assert_eq!(event.event_id, "release@1704067199000");
        assert_eq!(event.change_source.as_deref(), Some("puente-ops"));
        assert_eq!(
            event.business_key(FLOW).expect("a key"),
            "customer#odoo#42#1704067199000"
        );
        let message = change_message(&event);
        assert!(
            message
                .attributes
                .contains(&("puente-source".to_owned(), "odoo".to_owned())),
            "{message:?}"
        );
    }
}
