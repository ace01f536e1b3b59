//! Customer flow, CRM to ERP: claim the change's business key, read the source record's current
//! state, validate it into a canonical customer, find the target record by our reference, then
//! create or update it, record the link and complete the key.

use crate::domain::{ChangeEvent, EntityRef};
use crate::error::SyncError;
use crate::flows::{Failed, LEDGER, Run, at, once_under_lock};
use crate::mapping::customer::{CustomerRules, external_reference, to_customer};
use crate::ports::{CustomerSink, CustomerSource, Lease, Ledger, Links};
use std::time::Duration;

/// The flow's name in ledger keys, links and logs.
pub const FLOW: &str = "customer";

/// What one change did to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    Created {
        target_id: String,
    },
    Updated {
        target_id: String,
    },
    /// The target already held these values: nothing was written.
    Unchanged {
        target_id: String,
    },
    /// The change was already applied by an earlier delivery.
    Duplicate,
    /// The change failed for good on an earlier delivery and waits in the dead-letter queue for
    /// an operator; this copy changes nothing.
    AlreadyParked,
}

impl Synced {
    pub(crate) fn target_id(&self) -> Option<&str> {
        match self {
            Synced::Created { target_id }
            | Synced::Updated { target_id }
            | Synced::Unchanged { target_id } => Some(target_id),
            Synced::Duplicate | Synced::AlreadyParked => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Synced::Created { .. } => "created",
            Synced::Updated { .. } => "updated",
            Synced::Unchanged { .. } => "unchanged",
            Synced::Duplicate => crate::lambda::sqs_batch::DUPLICATE,
            Synced::AlreadyParked => crate::lambda::sqs_batch::ALREADY_PARKED,
        }
    }
}

/// The ports and rules the flow runs with, built once per process.
#[derive(Debug)]
pub struct CustomerSync<'a, L, K, S, T> {
    pub ledger: &'a L,
    pub links: &'a K,
    pub source: &'a S,
    pub sink: &'a T,
    pub rules: &'a CustomerRules,
}

impl<L: Ledger, K: Links, S: CustomerSource, T: CustomerSink> CustomerSync<'_, L, K, S, T> {
    /// Applies one change exactly once. `lease_for` is how long the claim (and the record lock)
    /// protect the key: the invocation's remaining time plus a margin, so a killed invocation's
    /// key frees itself. Changes of one record are applied one at a time, under a record lock.
    /// `redriven` says an operator redrove this message: only then is a key that FAILED tried
    /// again.
    pub async fn sync(
        &self,
        event: &ChangeEvent,
        lease_for: Duration,
        redriven: bool,
    ) -> Result<Synced, SyncError> {
        let run = once_under_lock(
            self.ledger,
            event,
            FLOW,
            lease_for,
            redriven,
            |lease| async move { self.apply(event, &lease).await },
        );
        Ok(match run.await? {
            Run::Applied(synced) => synced,
            Run::Duplicate => Synced::Duplicate,
            Run::AlreadyParked => Synced::AlreadyParked,
        })
    }

    async fn apply(&self, event: &ChangeEvent, lease: &Lease) -> Result<Synced, Failed> {
        let synced = upsert(self.source, self.sink, self.rules, &event.object_id, true).await?;
        let source_ref = EntityRef::new(self.source.system(), &event.object_id);
        let target_id = synced.target_id().unwrap_or_default();
        let ledger = LEDGER;
        self.ledger
            .mark_applied(lease, target_id)
            .await
            .map_err(at(&ledger, "mark applied", "ledger item"))?;
        let target_ref = EntityRef::new(self.sink.system(), target_id);
        self.links
            .link(FLOW, &source_ref, &target_ref)
            .await
            .map_err(at(&ledger, "write", "links"))?;
        self.ledger.complete(lease, target_id).await.map_err(at(
            &ledger,
            "complete",
            "ledger item",
        ))?;
        Ok(synced)
    }
}

/// Reads the source record, validates it and makes the target hold it: found by our reference
/// first (which closes the window where an earlier attempt created the record and died before
/// the ledger knew), then updated when `update` and it differs, or created. Invoicing uses it
/// with `update` false to make sure a deal's customer exists.
pub(crate) async fn upsert<S: CustomerSource, T: CustomerSink>(
    source: &S,
    sink: &T,
    rules: &CustomerRules,
    object_id: &str,
    update: bool,
) -> Result<Synced, Failed> {
    let (source_system, sink_system) = (source.system(), sink.system());
    let kind = source.record_kind();
    let fields =
        source
            .fetch_customer(object_id)
            .await
            .map_err(at(&source_system, "read", kind))?;
    let customer = to_customer(&fields, rules).map_err(at(&source_system, "validate", kind))?;
    let reference = external_reference(&EntityRef::new(source_system, object_id), kind);
    let found = sink.find_customer(&reference, &customer).await.map_err(at(
        &sink_system,
        "find",
        "customer",
    ))?;
    Ok(match found {
        Some(found) if found.matches || !update => Synced::Unchanged {
            target_id: found.id,
        },
        Some(found) => {
            sink.update_customer(&found.id, &customer)
                .await
                .map_err(at(&sink_system, "update", "customer"))?;
            Synced::Updated {
                target_id: found.id,
            }
        }
        None => Synced::Created {
            target_id: sink
                .create_customer(&customer, &reference)
                .await
                .map_err(at(&sink_system, "create", "customer"))?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Customer, Entity, System};
    use crate::error::{ConnectorError, FailureClass, StoreError};
    use crate::flows::digest;
    use crate::mapping::customer::CustomerFields;
    use crate::ports::{Claim, FailureNote, TargetCustomer};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// status, target id, lease held, payload digest
    type LedgerItem = (String, Option<String>, bool, String);

    #[derive(Default)]
    struct FakeLedger {
        items: Mutex<HashMap<String, LedgerItem>>,
        locks: Mutex<std::collections::HashSet<String>>,
    }

    impl Ledger for FakeLedger {
        async fn claim(
            &self,
            key: &str,
            digest: &str,
            _lease: Duration,
            retry_failed: bool,
        ) -> Result<Claim, StoreError> {
            let mut items = self.items.lock().expect("lock");
            match items.get(key) {
                Some((status, _, _, _)) if status.starts_with("FAILED") && !retry_failed => {
                    Ok(Claim::Failed)
                }
                Some((_, _, _, stored)) if stored != digest => Ok(Claim::Conflict {
                    stored_digest: stored.clone(),
                }),
                Some((status, target, _, _)) if status == "COMPLETED" => Ok(Claim::Completed {
                    target_id: target.clone(),
                }),
                Some((_, _, true, _)) => Ok(Claim::Held {
                    remaining: Duration::from_secs(30),
                }),
                _ => {
                    items.insert(
                        key.into(),
                        ("IN_PROGRESS".into(), None, true, digest.into()),
                    );
                    Ok(Claim::Acquired(Lease {
                        key: key.into(),
                        token: "t".into(),
                        attempt: 1,
                        applied_target: None,
                        first_failure_at: None,
                    }))
                }
            }
        }
        async fn mark_applied(&self, lease: &Lease, target: &str) -> Result<(), StoreError> {
            self.set(lease, "APPLIED", Some(target), true);
            Ok(())
        }
        async fn complete(&self, lease: &Lease, target: &str) -> Result<(), StoreError> {
            self.set(lease, "COMPLETED", Some(target), false);
            Ok(())
        }
        async fn release(&self, lease: &Lease, _: &FailureNote<'_>) -> Result<(), StoreError> {
            self.set(lease, "IN_PROGRESS", None, false);
            Ok(())
        }
        async fn fail(&self, lease: &Lease, note: &FailureNote<'_>) -> Result<(), StoreError> {
            self.set(
                lease,
                &format!("FAILED:{}:{}", note.class, note.step),
                None,
                false,
            );
            Ok(())
        }
        async fn lock_record(
            &self,
            record: &str,
            _lease: Duration,
        ) -> Result<Result<Lease, Duration>, StoreError> {
            let mut locks = self.locks.lock().expect("lock");
            if !locks.insert(record.to_owned()) {
                return Ok(Err(Duration::from_secs(30)));
            }
            Ok(Ok(Lease {
                key: record.into(),
                token: "l".into(),
                attempt: 1,
                applied_target: None,
                first_failure_at: None,
            }))
        }
        async fn unlock_record(&self, lock: &Lease) -> Result<(), StoreError> {
            self.locks.lock().expect("lock").remove(&lock.key);
            Ok(())
        }
        async fn record_conflict(&self, key: &str, _digest: &str) -> Result<(), StoreError> {
            let mut items = self.items.lock().expect("lock");
            if let Some(item) = items.get_mut(key) {
                item.0.push_str("+conflict");
            }
            Ok(())
        }
    }

    impl FakeLedger {
        fn set(&self, lease: &Lease, status: &str, target: Option<&str>, held: bool) {
            let mut items = self.items.lock().expect("lock");
            let digest = items
                .get(&lease.key)
                .map(|item| item.3.clone())
                .unwrap_or_default();
            items.insert(
                lease.key.clone(),
                (status.into(), target.map(Into::into), held, digest),
            );
        }
        fn status(&self, key: &str) -> Option<String> {
            let items = self.items.lock().expect("lock");
            items.get(key).map(|(s, _, _, _)| s.clone())
        }
    }

    #[derive(Default)]
    struct FakeLinks(Mutex<Vec<(EntityRef, EntityRef)>>);

    impl Links for FakeLinks {
        async fn link(&self, _: &str, a: &EntityRef, b: &EntityRef) -> Result<(), StoreError> {
            self.0.lock().expect("lock").push((a.clone(), b.clone()));
            Ok(())
        }
    }

    struct FakeCrm(Result<CustomerFields, fn() -> ConnectorError>);

    impl CustomerSource for FakeCrm {
        fn system(&self) -> System {
            System::named("crm")
        }
        fn record_kind(&self) -> &'static str {
            "company"
        }
        async fn fetch_customer(&self, _id: &str) -> Result<CustomerFields, ConnectorError> {
            self.0.clone().map_err(|make| make())
        }
    }

    #[derive(Default)]
    struct FakeErp(Mutex<HashMap<String, (String, Customer)>>); // reference -> (id, customer)

    impl CustomerSink for FakeErp {
        fn system(&self) -> System {
            System::named("erp")
        }
        async fn find_customer(
            &self,
            reference: &str,
            wanted: &Customer,
        ) -> Result<Option<TargetCustomer>, ConnectorError> {
            let records = self.0.lock().expect("lock");
            Ok(records.get(reference).map(|(id, c)| TargetCustomer {
                id: id.clone(),
                matches: c == wanted,
            }))
        }
        async fn create_customer(
            &self,
            c: &Customer,
            reference: &str,
        ) -> Result<String, ConnectorError> {
            let mut records = self.0.lock().expect("lock");
            let id = format!("{}", records.len() + 1);
            records.insert(reference.into(), (id.clone(), c.clone()));
            Ok(id)
        }
        async fn update_customer(&self, id: &str, c: &Customer) -> Result<(), ConnectorError> {
            let mut records = self.0.lock().expect("lock");
            if let Some(entry) = records.values_mut().find(|(i, _)| i == id) {
                entry.1 = c.clone();
            }
            Ok(())
        }
    }

    fn fields(tax_id: &str) -> CustomerFields {
        CustomerFields {
            name: Some("Distribuidora Andina SAS".into()),
            tax_id: Some(tax_id.into()),
            country: Some("CO".into()),
            ..CustomerFields::default()
        }
    }

    fn event(occurred_at_ms: i64) -> ChangeEvent {
        ChangeEvent {
            source: "crm".into(),
            entity: Entity::Customer,
            subscription_type: "company.propertyChange".into(),
            object_id: "901".into(),
            event_id: "1".into(),
            account_id: "62515".into(),
            occurred_at_ms,
            change_source: None,
        }
    }

    struct World {
        ledger: FakeLedger,
        links: FakeLinks,
        crm: FakeCrm,
        erp: FakeErp,
        rules: CustomerRules,
    }

    impl World {
        fn new(crm: FakeCrm) -> Self {
            Self {
                ledger: FakeLedger::default(),
                links: FakeLinks::default(),
                crm,
                erp: FakeErp::default(),
                rules: CustomerRules::default(),
            }
        }
        async fn sync(&self, e: &ChangeEvent) -> Result<Synced, SyncError> {
            let flow = CustomerSync {
                ledger: &self.ledger,
                links: &self.links,
                source: &self.crm,
                sink: &self.erp,
                rules: &self.rules,
            };
            flow.sync(e, Duration::from_secs(60), false).await
        }
    }

    #[tokio::test]
    async fn a_new_company_is_created_linked_and_completed() {
        let world = World::new(FakeCrm(Ok(fields("900123456-8"))));
        let synced = world.sync(&event(1)).await.expect("synced");
        assert_eq!(
            synced,
            Synced::Created {
                target_id: "1".into()
            }
        );
        assert!(
            world
                .erp
                .0
                .lock()
                .expect("lock")
                .contains_key("crm-company-901")
        );
        assert_eq!(
            world.ledger.status("customer#crm#901#1").as_deref(),
            Some("COMPLETED")
        );
        let links = world.links.0.lock().expect("lock");
        assert_eq!(links[0].1, EntityRef::new(System::named("erp"), "1"));
    }

    #[tokio::test]
    async fn the_same_change_twice_writes_once() {
        let world = World::new(FakeCrm(Ok(fields("900123456-8"))));
        world.sync(&event(1)).await.expect("first");
        assert_eq!(
            world.sync(&event(1)).await.expect("second"),
            Synced::Duplicate
        );
        assert_eq!(world.erp.0.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn a_later_change_with_the_same_values_writes_nothing() {
        let world = World::new(FakeCrm(Ok(fields("900123456-8"))));
        world.sync(&event(1)).await.expect("first");
        let synced = world.sync(&event(2)).await.expect("second");
        assert_eq!(
            synced,
            Synced::Unchanged {
                target_id: "1".into()
            }
        );
    }

    #[tokio::test]
    async fn an_invalid_nit_fails_the_key_with_field_reasons() {
        let world = World::new(FakeCrm(Ok(fields("900123456-7"))));
        let err = world.sync(&event(1)).await.expect_err("invalid");
        let SyncError::Rejected { class, fields, .. } = err else {
            panic!("expected a rejection, got {err:?}");
        };
        assert_eq!(class, FailureClass::Invalid);
        assert_eq!(fields[0].field, "tax_id");
        assert_eq!(
            world.ledger.status("customer#crm#901#1").as_deref(),
            Some("FAILED:invalid:crm validate company")
        );
        assert!(world.erp.0.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn an_unavailable_source_releases_the_key_for_a_retry() {
        let world = World::new(FakeCrm(Err(|| ConnectorError::Unavailable {
            system: System::named("crm"),
            detail: "HTTP 502".into(),
            source: None,
        })));
        let err = world.sync(&event(1)).await.expect_err("transient");
        assert!(matches!(err, SyncError::Transient { .. }), "{err:?}");
        let items = world.ledger.items.lock().expect("lock");
        assert!(!items["customer#crm#901#1"].2, "lease released");
    }

    #[tokio::test]
    async fn a_key_held_by_another_invocation_is_retried_later() {
        let world = World::new(FakeCrm(Ok(fields("900123456-8"))));
        let digest = digest(&event(1).payload_identity());
        world
            .ledger
            .claim(
                "customer#crm#901#1",
                &digest,
                Duration::from_secs(60),
                false,
            )
            .await
            .expect("claim");
        let err = world.sync(&event(1)).await.expect_err("busy");
        assert!(matches!(err, SyncError::Busy { .. }), "{err:?}");
        assert!(world.erp.0.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn the_same_key_with_another_payload_is_a_conflict_and_writes_nothing() {
        let world = World::new(FakeCrm(Ok(fields("900123456-8"))));
        world.sync(&event(1)).await.expect("first");
        let mut other_portal = event(1);
        other_portal.account_id = "99999".into();
        let err = world.sync(&other_portal).await.expect_err("conflict");
        let SyncError::Rejected { class, reason, .. } = &err else {
            panic!("expected a conflict, got {err:?}");
        };
        assert_eq!(*class, FailureClass::Conflict);
        assert!(reason.contains("customer#crm#901#1"), "{reason}");
        assert_eq!(
            world.ledger.status("customer#crm#901#1").as_deref(),
            Some("COMPLETED+conflict")
        );
        assert_eq!(world.erp.0.lock().expect("lock").len(), 1);
    }

    #[tokio::test]
    async fn a_change_without_a_business_key_is_poison_and_claims_nothing() {
        let world = World::new(FakeCrm(Ok(fields("900123456-8"))));
        let mut unkeyed = event(1);
        unkeyed.object_id = " ".into();
        let err = world.sync(&unkeyed).await.expect_err("unkeyed");
        let SyncError::Rejected { class, fields, .. } = &err else {
            panic!("expected a rejection, got {err:?}");
        };
        assert_eq!(*class, FailureClass::Poison);
        assert_eq!(fields[0].field, "object_id");
        assert!(world.ledger.items.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_failure_names_the_step_that_failed() {
        let world = World::new(FakeCrm(Err(|| ConnectorError::Unavailable {
            system: System::named("crm"),
            detail: "502".into(),
            source: None,
        })));
        let err = world.sync(&event(1)).await.expect_err("unavailable");
        assert!(
            err.to_string().starts_with("transient: crm read company:"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_change_of_a_record_locked_by_another_change_waits_and_writes_nothing() {
        let world = World::new(FakeCrm(Ok(fields("900123456-8"))));
        let other = world
            .ledger
            .lock_record("customer#crm#901", Duration::from_secs(60))
            .await
            .expect("lock")
            .expect("free");
        let err = world.sync(&event(1)).await.expect_err("busy");
        let SyncError::Busy { retry_after } = err else {
            panic!("expected busy, got {err:?}");
        };
        assert!(retry_after <= crate::flows::RECORD_BUSY_RETRY);
        assert!(world.erp.0.lock().expect("lock").is_empty());
        world.ledger.unlock_record(&other).await.expect("unlock");
        world.sync(&event(1)).await.expect("applied once unlocked");
        assert_eq!(world.erp.0.lock().expect("lock").len(), 1);
        assert!(world.ledger.locks.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_failed_change_stays_parked_until_an_operator_redrives_it() {
        let world = World::new(FakeCrm(Ok(fields("900123456-7"))));
        world.sync(&event(1)).await.expect_err("invalid");
        assert_eq!(
            world.sync(&event(1)).await.expect("another delivery"),
            Synced::AlreadyParked
        );
        let flow = CustomerSync {
            ledger: &world.ledger,
            links: &world.links,
            source: &world.crm,
            sink: &world.erp,
            rules: &world.rules,
        };
        let redriven = flow.sync(&event(1), Duration::from_secs(60), true).await;
        assert!(
            matches!(redriven, Err(SyncError::Rejected { .. })),
            "the redrive tried again: {redriven:?}"
        );
    }
}
