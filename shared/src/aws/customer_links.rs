//! Linked customers in DynamoDB. The CRM-side link item (`LINK#customer#{crm}#{id}` /
//! `LINK#{erp}`) holds the pair's whole state: the ERP id, per field the hash of the value both
//! sides agreed on, per side the digest and time of our last write and the version applied, the
//! circuit breaker's window and a quarantine. The ERP-side item (`LINK#customer#{erp}#{id}` /
//! `LINK#{crm}`) only points back at the CRM id. Values are never stored, only hashes.
//!
//! The items are also the records' locks: `lease_token` and `lease_until` on the item, set by
//! one conditional `UpdateItem` that returns what the item held, so a change of a linked pair
//! locks both records and reads their state in one write. Saving the state is a `PutItem`
//! fenced by the token that drops the lease, so it unlocks in the same write. An unlinked
//! record's lock makes an item that holds only the lease, and goes when it is given back.
//!
//! Notices for people (conflicts, deletions, merges) are items `NOTICE#customer#{system}#{id}` /
//! `{kind}#{identity}`, written once with a conditional put.

use crate::aws::epoch_seconds;
use crate::aws::ledger::{remaining_lease, written};
use crate::domain::System;
use crate::error::StoreError;
use crate::mapping::ownership::{CustomerField, Role};
use crate::ports::{CustomerLink, CustomerLinks, CustomerNotice, Quarantine, SideState};
use crate::ports::{LinkLock, Locked};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;
use std::time::Duration;

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

    /// Writes the item of `role` record `id`: only under our lock when `held` has one on it,
    /// otherwise only while no live lock is on it. The item written carries no lease, so the
    /// write also unlocks.
    async fn put_fenced(
        &self,
        item: Item,
        role: Role,
        id: &str,
        held: &[LinkLock],
    ) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match held.iter().find(|lock| lock.role == role && lock.id == id) {
            Some(lock) => put
                .condition_expression("lease_token = :mine")
                .expression_attribute_values(":mine", s(&lock.token)),
            None => put
                .condition_expression("attribute_not_exists(lease_until) OR lease_until < :now")
                .expression_attribute_values(":now", n(epoch_seconds())),
        };
        match written(put.send().await)? {
            true => Ok(()),
            false => Err(StoreError::LeaseLost {
                key: self.key(role, id).0,
            }),
        }
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
            Role::Erp => match self.linked_crm_id(id).await? {
                Some(crm_id) => crm_id,
                None => return Ok(None),
            },
        };
        // An item without `other_id` holds only a lock: the record is not linked.
        Ok(self
            .get(Role::Crm, &crm_id)
            .await?
            .filter(|item| item.contains_key("other_id"))
            .map(|item| link_from(&crm_id, &item)))
    }

    async fn linked_crm_id(&self, erp_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(Role::Erp, erp_id)
            .await?
            .and_then(|pointer| text(&pointer, "other_id")))
    }

    async fn lock(
        &self,
        role: Role,
        id: &str,
        lease: Duration,
    ) -> Result<Result<Locked, Duration>, StoreError> {
        let (pk, sk) = self.key(role, id);
        let now = epoch_seconds();
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(&sk))
            .update_expression("SET lease_token = :token, lease_until = :until")
            .condition_expression("attribute_not_exists(lease_until) OR lease_until < :now")
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":until", n(now + lease.as_secs() as i64))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let before = out.attributes.unwrap_or_default();
                let other = text(&before, "other_id");
                let lock = LinkLock {
                    role,
                    id: id.to_owned(),
                    token,
                    kept: other.is_some(),
                };
                Ok(Ok(match role {
                    Role::Crm => Locked {
                        link: other.is_some().then(|| link_from(id, &before)),
                        points_to: None,
                        lock,
                    },
                    Role::Erp => Locked {
                        link: None,
                        points_to: other,
                        lock,
                    },
                }))
            }
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let holder = match e.err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item(),
                    _ => None,
                };
                Ok(Err(remaining_lease(holder, now)))
            }
            Err(e) => Err(StoreError::unavailable("dynamodb", e)),
        }
    }

    async fn unlock(&self, lock: &LinkLock) -> Result<(), StoreError> {
        let (pk, sk) = self.key(lock.role, &lock.id);
        // Not written: our lease ran out and another change holds the item now; it is theirs.
        if lock.kept {
            let remove = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(&sk))
                .update_expression("REMOVE lease_token, lease_until")
                .condition_expression("lease_token = :mine")
                .expression_attribute_values(":mine", s(&lock.token))
                .send()
                .await;
            written(remove).map(drop)
        } else {
            let delete = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(&sk))
                .condition_expression("lease_token = :mine AND attribute_not_exists(other_id)")
                .expression_attribute_values(":mine", s(&lock.token))
                .send()
                .await;
            written(delete).map(drop)
        }
    }

    async fn save_link(
        &self,
        link: &CustomerLink,
        new: bool,
        held: &[LinkLock],
    ) -> Result<(), StoreError> {
        // Two fenced puts: a half-written pair is completed by the retry the failure causes.
        let state = self.put_fenced(self.item(link), Role::Crm, &link.crm_id, held);
        if new && !link.erp_id.is_empty() {
            let pointer = self.put_fenced(self.pointer(link), Role::Erp, &link.erp_id, held);
            futures_util::future::try_join(state, pointer)
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
