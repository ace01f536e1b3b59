//! Linked customers in DynamoDB. The CRM-side link item (`LINK#customer#{crm}#{id}` /
//! `LINK#{erp}`) holds the pair's whole state: the ERP id, per field the hash of the value both
//! sides agreed on, per side the digest and time of our last write and the version applied, the
//! circuit breaker's window and a quarantine. The ERP-side item (`LINK#customer#{erp}#{id}` /
//! `LINK#{crm}`) only points back at the CRM id. Values are never stored, only hashes.
//!
//! Notices for people (conflicts, deletions, merges) are items `NOTICE#customer#{system}#{id}` /
//! `{kind}#{identity}`, written once with a conditional put.

use crate::aws::epoch_seconds;
use crate::aws::ledger::written;
use crate::domain::System;
use crate::error::StoreError;
use crate::mapping::ownership::{CustomerField, Role};
use crate::ports::{CustomerLink, CustomerLinks, CustomerNotice, Quarantine, SideState};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The entity part of customer link keys (the customer flow's name).
const ENTITY: &str = "customer";
/// How long a notice is kept (TTL), so the table does not grow without bound.
const NOTICE_DAYS: i64 = 180;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoCustomerLinks {
    client: Client,
    table: String,
    crm: System,
    erp: System,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn number(item: &Item, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

impl DynamoCustomerLinks {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        table: impl Into<String>,
        crm: System,
        erp: System,
    ) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.into(),
            crm,
            erp,
        }
    }

    fn key(&self, role: Role, id: &str) -> (String, String) {
        let (system, other) = match role {
            Role::Crm => (self.crm, self.erp),
            Role::Erp => (self.erp, self.crm),
        };
        (
            format!("LINK#{ENTITY}#{system}#{id}"),
            format!("LINK#{other}"),
        )
    }

    async fn get(&self, role: Role, id: &str) -> Result<Option<Item>, StoreError> {
        let (pk, sk) = self.key(role, id);
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(&sk))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| StoreError::unavailable("dynamodb", e))
    }

    /// The pair's state item.
    fn item(&self, link: &CustomerLink) -> Item {
        let (pk, sk) = self.key(Role::Crm, &link.crm_id);
        let mut item = Item::from([
            ("pk".into(), s(&pk)),
            ("sk".into(), s(&sk)),
            ("entity".into(), s(ENTITY)),
            ("other_id".into(), s(&link.erp_id)),
            ("updated_at".into(), n(epoch_seconds())),
            ("window_started_ms".into(), n(link.window_started_ms)),
            ("window_writes".into(), n(i64::from(link.window_writes))),
        ]);
        if !link.agreed.is_empty() {
            let agreed = link
                .agreed
                .iter()
                .map(|(field, hash)| (field.as_str().to_owned(), s(hash)))
                .collect();
            item.insert("agreed".into(), AttributeValue::M(agreed));
        }
        for (role, side) in [(Role::Crm, &link.crm), (Role::Erp, &link.erp)] {
            let prefix = role.as_str();
            if let Some(written) = &side.written {
                item.insert(format!("{prefix}_written"), s(written));
            }
            item.insert(format!("{prefix}_written_at_ms"), n(side.written_at_ms));
            item.insert(format!("{prefix}_version_ms"), n(side.version_ms));
        }
        if let Some(quarantine) = &link.quarantine {
            item.insert("quarantined_at_ms".into(), n(quarantine.at_ms));
            item.insert("quarantine_reason".into(), s(&quarantine.reason));
        }
        item
    }

    fn pointer(&self, link: &CustomerLink) -> Item {
        let (pk, sk) = self.key(Role::Erp, &link.erp_id);
        Item::from([
            ("pk".into(), s(&pk)),
            ("sk".into(), s(&sk)),
            ("entity".into(), s(ENTITY)),
            ("other_id".into(), s(&link.crm_id)),
            ("updated_at".into(), n(epoch_seconds())),
        ])
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::unavailable("dynamodb", e))
    }
}

/// A link read from its CRM-side item.
fn link_from(crm_id: &str, item: &Item) -> CustomerLink {
    let side = |role: Role| {
        let prefix = role.as_str();
        SideState {
            written: text(item, &format!("{prefix}_written")),
            written_at_ms: number(item, &format!("{prefix}_written_at_ms")),
            version_ms: number(item, &format!("{prefix}_version_ms")),
        }
    };
    let agreed = item
        .get("agreed")
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter()
                .filter_map(|(field, hash)| {
                    Some((CustomerField::parse(field)?, hash.as_s().ok()?.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    CustomerLink {
        crm_id: crm_id.to_owned(),
        erp_id: text(item, "other_id").unwrap_or_default(),
        agreed,
        crm: side(Role::Crm),
        erp: side(Role::Erp),
        window_started_ms: number(item, "window_started_ms"),
        window_writes: u32::try_from(number(item, "window_writes")).unwrap_or_default(),
        quarantine: text(item, "quarantine_reason").map(|reason| Quarantine {
            at_ms: number(item, "quarantined_at_ms"),
            reason,
        }),
    }
}

impl CustomerLinks for DynamoCustomerLinks {
    async fn find_link(&self, role: Role, id: &str) -> Result<Option<CustomerLink>, StoreError> {
        let crm_id = match role {
            Role::Crm => id.to_owned(),
            Role::Erp => match self
                .get(Role::Erp, id)
                .await?
                .and_then(|p| text(&p, "other_id"))
            {
                Some(crm_id) => crm_id,
                None => return Ok(None),
            },
        };
        Ok(self
            .get(Role::Crm, &crm_id)
            .await?
            .map(|item| link_from(&crm_id, &item)))
    }

    async fn save_link(&self, link: &CustomerLink, new: bool) -> Result<(), StoreError> {
        // Two idempotent puts: a half-written pair is completed by the retry the failure causes.
        let state = self.put(self.item(link));
        if new && !link.erp_id.is_empty() {
            futures_util::future::try_join(state, self.put(self.pointer(link)))
                .await
                .map(|_| ())
        } else {
            state.await
        }
    }

    async fn repoint_link(&self, link: &CustomerLink, from_crm_id: &str) -> Result<(), StoreError> {
        self.put(self.item(link)).await?;
        self.put(self.pointer(link)).await?;
        let (pk, sk) = self.key(Role::Crm, from_crm_id);
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(&sk))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::unavailable("dynamodb", e))
    }

    async fn record_notice(&self, notice: &CustomerNotice) -> Result<bool, StoreError> {
        let now = epoch_seconds();
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&format!("NOTICE#{ENTITY}#{}", notice.record)))
            .item("sk", s(&format!("{}#{}", notice.kind, notice.identity)))
            .item("kind", s(notice.kind))
            .item("record", s(&notice.record))
            .item("detail", s(&notice.detail))
            .item("noticed_at", n(now))
            .item("expires_at", n(now + NOTICE_DAYS * 24 * 3600))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        written(put)
    }
}
