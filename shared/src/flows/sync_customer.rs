//! Customer flow, both ways: a change of a CRM company or of an ERP customer is mirrored to its
//! counterpart in the other system, without loops.
//!
//! Per change: claim its business key, lock the pair (a linked record's link item, which holds
//! the pair's state and comes back with the lock; an unlinked record's own item), skip it when
//! it is older than the version already applied (events arrive out of order), read the record,
//! skip it when it is our own write coming back (its fields hash to what we last wrote there),
//! find the counterpart (link, the reference the record carries, or our reference in the other
//! system; an unlinked counterpart is locked too), read it, and write only what the ownership
//! rules allow and what differs. Saving the link's state gives its lock back in the same write.
//! Conflicts, deletions and merges are recorded for a person; nothing is ever deleted. A
//! customer written more than the breaker allows is quarantined until an operator releases it.

use crate::config::BreakerRules;
use crate::domain::{ChangeEvent, CustomerKind, EntityRef, System};
use crate::error::{FailureClass, SyncError};
use crate::flows::{Claimed, Failed, LEDGER, RECORD_BUSY_RETRY, at, claim, settle_failure};
use crate::mapping::customer::{CustomerFields, CustomerRules, external_reference, to_customer};
use crate::mapping::ownership::{
    CustomerField, Ownership, Role, SyncFields, TermsRules, sync_fields, value_hash,
};
use crate::ports::{
    CustomerLink, CustomerLinks, CustomerNotice, CustomerRecord, CustomerSide, CustomerSink,
    CustomerSource, Lease, Ledger, LinkLock, Locked, Quarantine,
};
use crate::telemetry::{Metric, Metrics};
use std::time::Duration;

/// The flow's name in ledger keys, links and logs.
pub const FLOW: &str = "customer";

/// What one change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    Created {
        target_id: String,
    },
    Updated {
        target_id: String,
    },
    /// The target already held these values (or the rules let the source write none of them):
    /// nothing was written.
    Unchanged {
        target_id: String,
    },
    /// The change was already applied by an earlier delivery.
    Duplicate,
    /// The record holds exactly what we last wrote to it: our own write came back.
    Echo,
    /// The change is older than the version of the record already applied.
    Stale,
    /// The customer is quarantined (circuit breaker, deletion, merge): nothing synced.
    Quarantined,
    /// The record does not take part in the sync (an ERP partner that is no customer).
    NotSynced,
    /// The record was deleted: recorded, and nothing deleted in the other system.
    Deleted,
    /// A CRM merge: the link now points at the record that survived.
    Merged,
}

impl Synced {
    pub(crate) fn target_id(&self) -> Option<&str> {
        match self {
            Synced::Created { target_id }
            | Synced::Updated { target_id }
            | Synced::Unchanged { target_id } => Some(target_id),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Synced::Created { .. } => "created",
            Synced::Updated { .. } => "updated",
            Synced::Unchanged { .. } => "unchanged",
            Synced::Duplicate => crate::lambda::sqs_batch::DUPLICATE,
            Synced::Echo => crate::lambda::sqs_batch::ECHO_SUPPRESSED,
            Synced::Stale => crate::lambda::sqs_batch::STALE,
            Synced::Quarantined => crate::lambda::sqs_batch::QUARANTINED,
            Synced::NotSynced => "not_synced",
            Synced::Deleted => "deleted",
            Synced::Merged => "merged",
        }
    }
}

/// The ports and rules the flow runs with, built once per process.
#[derive(Debug)]
pub struct CustomerSync<'a, L, K, C, E> {
    pub ledger: &'a L,
    pub links: &'a K,
    pub crm: &'a C,
    pub erp: &'a E,
    pub rules: &'a CustomerRules,
    pub terms: TermsRules,
    pub ownership: &'a Ownership,
    pub breaker: BreakerRules,
    pub near_miss_window: Duration,
    pub metrics: &'a Metrics,
}

impl<L: Ledger, K: CustomerLinks, C: CustomerSide, E: CustomerSide> CustomerSync<'_, L, K, C, E> {
    /// Applies one change exactly once. `lease_for` is how long the claim and the record locks
    /// protect it: the invocation's remaining time plus a margin. `redriven` says an operator
    /// redrove this message: only then is a key that FAILED tried again.
    pub async fn sync(
        &self,
        event: &ChangeEvent,
        lease_for: Duration,
        redriven: bool,
    ) -> Result<Synced, SyncError> {
        let from = if event.source == self.crm.system().name() {
            Role::Crm
        } else if event.source == self.erp.system().name() {
            Role::Erp
        } else {
            return Err(SyncError::rejected(
                FailureClass::Poison,
                format!("no customer system is named {}", event.source),
            ));
        };
        let lease = match claim(self.ledger, event, FLOW, lease_for, redriven).await? {
            Claimed::Lease(lease) => lease,
            Claimed::Duplicate => return Ok(Synced::Duplicate),
        };
        let mut locks = Locks::new(self.links, lease_for);
        let applied = match from {
            Role::Crm => {
                self.apply(event, from, self.crm, self.erp, &lease, &mut locks)
                    .await
            }
            Role::Erp => {
                self.apply(event, from, self.erp, self.crm, &lease, &mut locks)
                    .await
            }
        };
        let result = match applied {
            Ok(synced) => Ok(synced),
            Err(failed) => Err(settle_failure(self.ledger, &lease, failed).await),
        };
        locks.give_back().await;
        result
    }

    async fn apply<S: CustomerSide, T: CustomerSide>(
        &self,
        event: &ChangeEvent,
        from: Role,
        source: &S,
        target: &T,
        lease: &Lease,
        locks: &mut Locks<'_, K>,
    ) -> Result<Synced, Failed> {
        let synced = if event.subscription_type.ends_with(".merge") && from == Role::Crm {
            self.merge(event, locks).await?
        } else {
            self.mirror(event, from, source, target, locks).await?
        };
        let target_id = synced.target_id().unwrap_or_default().to_owned();
        self.ledger.complete(lease, &target_id).await.map_err(at(
            &LEDGER,
            "complete",
            "ledger item",
        ))?;
        Ok(synced)
    }

    /// Mirrors the source record's current state onto its counterpart.
    async fn mirror<S: CustomerSide, T: CustomerSide>(
        &self,
        event: &ChangeEvent,
        from: Role,
        source: &S,
        target: &T,
        locks: &mut Locks<'_, K>,
    ) -> Result<Synced, Failed> {
        let to = from.other();
        let (source_system, kind) = (source.system(), source.record_kind());
        let id = event.object_id.as_str();
        let link = self.lock_pair(from, id, locks).await?;
        if let Some(link) = &link {
            if event.occurred_at_ms < link.side(from).version_ms {
                return Ok(Synced::Stale);
            }
            if link.quarantine.is_some() {
                tracing::warn!(crm = %link.crm_id, erp = %link.erp_id, "customer is quarantined; change not synced");
                return Ok(Synced::Quarantined);
            }
        }
        let record = source
            .read_record(id)
            .await
            .map_err(at(&source_system, "read", kind))?;
        let Some(record) = record else {
            return self.deleted(event, from, source_system, link, locks).await;
        };
        if !record.syncs {
            return Ok(Synced::NotSynced);
        }
        let fields = sync_fields(&record.fields, self.rules, self.terms).map_err(at(
            &source_system,
            "validate",
            kind,
        ))?;
        // A repair is mirrored even when the record holds what we last wrote to it: the
        // reconciler found its counterpart different (edited while its webhook was lost).
        if let Some(link) = link.as_ref().filter(|_| !event.is_repair()) {
            let side = link.side(from);
            if side.written.as_deref() == Some(fields.digest().as_str()) {
                return Ok(Synced::Echo);
            }
            let since_write = event.occurred_at_ms - side.written_at_ms;
            if side.written_at_ms > 0
                && (0..self.near_miss_window.as_millis() as i64).contains(&since_write)
            {
                // Not our echo, and right after our write: someone else edited it meanwhile.
                tracing::info!(
                    since_write_ms = since_write,
                    "near miss: edited right after our write"
                );
                self.metrics.count(Metric::NearMiss);
            }
        }

        let counterpart = match &link {
            Some(link) => Some(link.id(to).to_owned()),
            None => counterpart(source, target, &record).await.map_err(at(
                &target.system(),
                "find",
                target.record_kind(),
            ))?,
        };
        // A linked pair is locked already (its one item); an unlinked counterpart is locked
        // too, so that a change of it cannot create or link the pair at the same time. The
        // change from the ERP gives way at once (it is retried shortly), the change from the
        // CRM waits a moment for it to, so two changes of one pair never keep each other out.
        if let (None, Some(other)) = (&link, &counterpart) {
            let patience = match from {
                Role::Crm => COUNTERPART_PATIENCE,
                Role::Erp => Duration::ZERO,
            };
            locks.lock(to, other, patience).await?;
        }
        self.write(
            event,
            from,
            source,
            target,
            locks,
            link,
            record,
            fields,
            counterpart,
        )
        .await
    }

    /// Locks the pair of record `id` of the `from` side and returns its link, if it is linked:
    /// the CRM record's item holds the pair's state; an ERP record's item points at it. An
    /// unlinked record's own item is locked instead.
    async fn lock_pair(
        &self,
        from: Role,
        id: &str,
        locks: &mut Locks<'_, K>,
    ) -> Result<Option<CustomerLink>, Failed> {
        let crm_id = match from {
            Role::Crm => Some(id.to_owned()),
            Role::Erp => self
                .links
                .linked_crm_id(id)
                .await
                .map_err(at(&LEDGER, "read", "link"))?,
        };
        if let Some(crm_id) = crm_id {
            let locked = locks.lock(Role::Crm, &crm_id, Duration::ZERO).await?;
            return Ok(locked.and_then(|locked| locked.link));
        }
        let locked = locks.lock(from, id, Duration::ZERO).await?;
        if locked.is_some_and(|locked| locked.points_to.is_some()) {
            // Linked between our read and our lock: the retry takes the pair's lock.
            return Err(Failed {
                step: format!("{LEDGER} lock link"),
                error: SyncError::Busy {
                    retry_after: RECORD_BUSY_RETRY,
                },
            });
        }
        Ok(None)
    }

    /// Creates or updates the counterpart with what the rules allow, and remembers the state.
    #[allow(clippy::too_many_arguments)]
    async fn write<S: CustomerSide, T: CustomerSide>(
        &self,
        event: &ChangeEvent,
        from: Role,
        source: &S,
        target: &T,
        locks: &mut Locks<'_, K>,
        link: Option<CustomerLink>,
        record: CustomerRecord,
        fields: SyncFields,
        counterpart: Option<String>,
    ) -> Result<Synced, Failed> {
        let to = from.other();
        let (target_system, target_kind) = (target.system(), target.record_kind());
        let current = match &counterpart {
            Some(other) => {
                let read = target.read_record(other).await.map_err(at(
                    &target_system,
                    "read",
                    target_kind,
                ))?;
                let Some(read) = read else {
                    return Err(Failed {
                        step: format!("{target_system} read {target_kind}"),
                        error: SyncError::rejected(
                            FailureClass::NotFound,
                            format!(
                                "the linked {target_kind} {other} no longer exists (deleted or \
                                 merged); nothing was written"
                            ),
                        ),
                    });
                };
                Some(read)
            }
            None => None,
        };
        let target_fields = current
            .as_ref()
            .map(|r| lenient_fields(&r.fields, self.rules, self.terms))
            .unwrap_or_default();
        let source_is_newer = match &current {
            None => true,
            Some(current) => {
                // Odoo keeps whole seconds: compare both in seconds, the ERP wins a tie.
                let (s, t) = (
                    record.modified.epoch_millis().div_euclid(1000),
                    current.modified.epoch_millis().div_euclid(1000),
                );
                s > t || (s == t && from == Role::Erp)
            }
        };
        let agreed = link.as_ref().map(|l| l.agreed.clone()).unwrap_or_default();
        let plan = self
            .ownership
            .plan(from, &fields, &target_fields, &agreed, source_is_newer);
        let other_id = counterpart.clone().unwrap_or_default();
        let (crm_id, erp_id) = match from {
            Role::Crm => (record.id.clone(), other_id),
            Role::Erp => (other_id, record.id.clone()),
        };
        let crm_record = format!("{}#{crm_id}", self.crm.system());
        for field in &plan.conflicts {
            let hashes = {
                let mut pair = [
                    value_hash(fields.get(*field)),
                    value_hash(target_fields.get(*field)),
                ];
                pair.sort();
                pair.join("#")
            };
            let kept = if plan.writes.get(*field).is_some() {
                source.system()
            } else {
                target_system
            };
            let notice = CustomerNotice {
                kind: "conflict",
                record: crm_record.clone(),
                identity: format!("{field}#{hashes}"),
                detail: format!(
                    "{field} was edited in both systems since they last agreed; the {kept} value \
                     was kept ({:?} rule)",
                    self.ownership.rule(*field).owner
                ),
            };
            if self
                .links
                .record_notice(&notice)
                .await
                .map_err(at(&LEDGER, "write", "conflict"))?
            {
                tracing::warn!(field = field.as_str(), kept = %kept, "conflict: edited on both sides");
                self.metrics.count(Metric::Conflict);
            }
        }

        let now_ms = crate::domain::Timestamp::now().epoch_millis();
        let is_new = link.is_none();
        let mut link = link.unwrap_or_else(|| CustomerLink {
            crm_id,
            erp_id,
            ..CustomerLink::default()
        });
        // For a new record, the plan against an empty target is everything the rules let this
        // side fill.
        let writes = &plan.writes;
        let synced = if current.is_some() && writes.is_empty() {
            Synced::Unchanged {
                target_id: link.id(to).to_owned(),
            }
        } else {
            if now_ms - link.window_started_ms > self.breaker.window.as_millis() as i64 {
                link.window_started_ms = now_ms;
                link.window_writes = 0;
            }
            if link.window_writes >= self.breaker.max_writes {
                let reason = format!(
                    "more than {} writes within {} minutes",
                    self.breaker.max_writes,
                    self.breaker.window.as_secs() / 60
                );
                tracing::error!(crm = %link.crm_id, erp = %link.erp_id, reason, "customer quarantined by the circuit breaker");
                link.quarantine = Some(Quarantine {
                    at_ms: now_ms,
                    reason,
                });
                self.metrics.count(Metric::Quarantined);
                locks.save(&link, is_new && !link.erp_id.is_empty()).await?;
                return Ok(Synced::Quarantined);
            }
            link.window_writes += 1;
            let synced = match &current {
                None => {
                    let origin = external_reference(
                        &EntityRef::new(source.system(), &record.id),
                        source.record_kind(),
                    );
                    let kind = record.fields.kind.unwrap_or(CustomerKind::Company);
                    let created = target
                        .create_record(writes, kind, &origin)
                        .await
                        .map_err(at(&target_system, "create", target_kind))?;
                    match to {
                        Role::Crm => link.crm_id = created.clone(),
                        Role::Erp => link.erp_id = created.clone(),
                    }
                    Synced::Created { target_id: created }
                }
                Some(current) => {
                    target.update_record(&current.id, writes).await.map_err(at(
                        &target_system,
                        "update",
                        target_kind,
                    ))?;
                    Synced::Updated {
                        target_id: current.id.clone(),
                    }
                }
            };
            // No "applied" mark on the ledger: the link, saved next with nothing in between that
            // can fail, records the created record, and a retry that comes before it finds the
            // record by the origin reference it carries (as the stuck-item probe does).
            synced
        };

        // What the target holds now, and what both sides agree on.
        let after = target_fields.overlaid(writes);
        for (field, hash) in fields.value_hashes() {
            if after.get(field) == fields.get(field) {
                link.agreed.insert(field, hash);
            }
        }
        if !matches!(synced, Synced::Unchanged { .. }) {
            let side = link.side_mut(to);
            side.written = Some(after.digest());
            side.written_at_ms = now_ms;
        }
        // The source moved on from what we last wrote to it: if it comes back to those values
        // later, that is an edit (an undo), not our echo.
        let source_side = link.side_mut(from);
        source_side.written = None;
        source_side.version_ms = record.modified.epoch_millis();
        tracing::info!(
            crm = %link.crm_id,
            erp = %link.erp_id,
            fields = ?writes.names(),
            conflicts = plan.conflicts.len(),
            occurred_at_ms = event.occurred_at_ms,
            "customer mirrored"
        );
        locks.save(&link, is_new).await?;
        Ok(synced)
    }

    /// The source record is gone. Accounting records must survive, so nothing is deleted on
    /// the other side: the deletion is recorded for a person and the link quarantined, so the
    /// counterpart's changes wait instead of recreating what was deleted.
    async fn deleted(
        &self,
        event: &ChangeEvent,
        from: Role,
        system: System,
        link: Option<CustomerLink>,
        locks: &mut Locks<'_, K>,
    ) -> Result<Synced, Failed> {
        let counterpart = link
            .as_ref()
            .map(|l| format!("{} stays", l.id(from.other())))
            .unwrap_or_else(|| "it was not linked".into());
        let notice = CustomerNotice {
            kind: "deleted",
            record: format!("{system}#{}", event.object_id),
            identity: "deleted".into(),
            detail: format!("deleted in {system}; its counterpart {counterpart}"),
        };
        self.links
            .record_notice(&notice)
            .await
            .map_err(at(&LEDGER, "write", "notice"))?;
        if let Some(mut link) = link {
            link.quarantine = Some(Quarantine {
                at_ms: crate::domain::Timestamp::now().epoch_millis(),
                reason: format!("deleted in {system}"),
            });
            self.metrics.count(Metric::Quarantined);
            locks.save(&link, false).await?;
        }
        tracing::warn!(system = %system, "record deleted; nothing deleted in the other system");
        Ok(Synced::Deleted)
    }

    /// A CRM merge: each merged record's link moves to the surviving record. When the surviving
    /// record is already linked to another ERP record, two ERP records now match one CRM record:
    /// that is for a person (ERP records are merged by accounting, if ever), so the merged one's
    /// link is quarantined and a notice recorded. Nothing is deleted anywhere.
    async fn merge(&self, event: &ChangeEvent, locks: &mut Locks<'_, K>) -> Result<Synced, Failed> {
        let primary = event.object_id.as_str();
        let crm = self.crm.system();
        locks.lock(Role::Crm, primary, Duration::ZERO).await?;
        for merged in event.merged_ids.iter().filter(|m| m.as_str() != primary) {
            let Some(mut link) = self
                .links
                .find_link(Role::Crm, merged)
                .await
                .map_err(at(&LEDGER, "read", "link"))?
            else {
                continue;
            };
            let survivor = self
                .links
                .find_link(Role::Crm, primary)
                .await
                .map_err(at(&LEDGER, "read", "link"))?;
            let detail = match survivor {
                None => {
                    link.crm_id = primary.to_owned();
                    self.links
                        .repoint_link(&link, merged)
                        .await
                        .map_err(at(&LEDGER, "write", "link"))?;
                    // The survivor's item now holds the link, and no lease.
                    locks.forget(Role::Crm, primary);
                    format!(
                        "{crm} {merged} was merged into {primary}; ERP record {} now links to {primary}",
                        link.erp_id
                    )
                }
                Some(survivor) => {
                    link.quarantine = Some(Quarantine {
                        at_ms: crate::domain::Timestamp::now().epoch_millis(),
                        reason: format!(
                            "merged into {crm} {primary}, which is linked to ERP record {}",
                            survivor.erp_id
                        ),
                    });
                    self.metrics.count(Metric::Quarantined);
                    locks.save(&link, false).await?;
                    format!(
                        "{crm} {merged} was merged into {primary}: ERP records {} and {} now \
                         match one {crm} record; {} is quarantined until a person decides",
                        link.erp_id, survivor.erp_id, link.erp_id
                    )
                }
            };
            let notice = CustomerNotice {
                kind: "merged",
                record: format!("{crm}#{merged}"),
                identity: format!("into#{primary}"),
                detail,
            };
            self.links
                .record_notice(&notice)
                .await
                .map_err(at(&LEDGER, "write", "notice"))?;
            tracing::info!(merged = %merged, primary, "merge: link re-pointed or quarantined");
        }
        Ok(Synced::Merged)
    }
}

/// How long a change from the CRM waits for its counterpart's lock.
const COUNTERPART_PATIENCE: Duration = Duration::from_secs(2);

/// The link items one change holds, given back at its end unless saving the link released
/// them.
pub(crate) struct Locks<'l, K> {
    links: &'l K,
    lease_for: Duration,
    held: Vec<LinkLock>,
}

impl<'l, K: CustomerLinks> Locks<'l, K> {
    pub(crate) fn new(links: &'l K, lease_for: Duration) -> Self {
        Self {
            links,
            lease_for,
            held: Vec::new(),
        }
    }

    /// Locks the item of `role` record `id`, waiting up to `patience` for another change to
    /// give it back; `None` when this change holds it already. Another change of the record
    /// being applied right now usually takes well under a second, so a busy item is retried
    /// after at most `RECORD_BUSY_RETRY`, not after its holder's whole lease.
    pub(crate) async fn lock(
        &mut self,
        role: Role,
        id: &str,
        patience: Duration,
    ) -> Result<Option<Locked>, Failed> {
        if self
            .held
            .iter()
            .any(|lock| lock.role == role && lock.id == id)
        {
            return Ok(None);
        }
        let give_up_at = tokio::time::Instant::now() + patience;
        loop {
            let held_for = match self.links.lock(role, id, self.lease_for).await {
                Ok(Ok(locked)) => {
                    self.held.push(locked.lock.clone());
                    return Ok(Some(locked));
                }
                Ok(Err(held_for)) => held_for,
                Err(store) => return Err(at(&LEDGER, "lock", "link")(store)),
            };
            if tokio::time::Instant::now() >= give_up_at {
                return Err(Failed {
                    step: format!("{LEDGER} lock link"),
                    error: SyncError::Busy {
                        retry_after: held_for.min(RECORD_BUSY_RETRY),
                    },
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves the link (see `CustomerLinks::save_link`); the locks on the items written are
    /// released by the write.
    pub(crate) async fn save(&mut self, link: &CustomerLink, new: bool) -> Result<(), Failed> {
        self.links
            .save_link(link, new, &self.held)
            .await
            .map_err(at(&LEDGER, "write", "link"))?;
        self.forget(Role::Crm, &link.crm_id);
        if new {
            self.forget(Role::Erp, &link.erp_id);
        }
        Ok(())
    }

    /// Drops a lock that a write released.
    fn forget(&mut self, role: Role, id: &str) {
        self.held
            .retain(|lock| !(lock.role == role && lock.id == id));
    }

    /// Gives back every lock still held; a lock that cannot be given back runs out by itself.
    pub(crate) async fn give_back(self) {
        for lock in &self.held {
            if let Err(store) = self.links.unlock(lock).await {
                tracing::warn!(role = lock.role.as_str(), error = %store, "could not unlock link");
            }
        }
    }
}

/// The record's counterpart in `target` when they are not linked yet: the record carries the
/// reference of the target record it was created from, or the target holds a record carrying
/// ours (created by an earlier attempt that died before the link was written).
async fn counterpart<S: CustomerSide, T: CustomerSide>(
    source: &S,
    target: &T,
    record: &CustomerRecord,
) -> Result<Option<String>, crate::error::ConnectorError> {
    if let Some(id) = record
        .fields
        .origin
        .as_deref()
        .and_then(|origin| referenced_id(origin, target.system(), target.record_kind()))
    {
        return Ok(Some(id.to_owned()));
    }
    let ours = external_reference(
        &EntityRef::new(source.system(), &record.id),
        source.record_kind(),
    );
    target.find_by_origin(&ours).await
}

/// The id in a reference made by `external_reference` for `system` and `kind`
/// (`hubspot-company-901` -> `901`), if `reference` is one.
pub fn referenced_id<'r>(reference: &'r str, system: System, kind: &str) -> Option<&'r str> {
    let id = reference
        .strip_prefix(system.name())?
        .strip_prefix('-')?
        .strip_prefix(kind)?
        .strip_prefix('-')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// The target's fields for comparison. A target value that does not validate (an invalid tax id
/// typed into the ERP) counts as no value, so the comparison goes on for every other field; a
/// target whose name is unusable counts as empty.
pub(crate) fn lenient_fields(
    fields: &CustomerFields,
    rules: &CustomerRules,
    terms: TermsRules,
) -> SyncFields {
    let rejection = match sync_fields(fields, rules, terms) {
        Ok(synced) => return synced,
        Err(rejection) => rejection,
    };
    let mut fields = fields.clone();
    for failed in rejection.fields() {
        if let Some(field) = CustomerField::parse(&failed.field) {
            *fields.slot(field) = None;
        }
    }
    sync_fields(&fields, rules, terms).unwrap_or_default()
}

/// Reads the source record, validates it and makes sure the target holds it: found through the
/// reference the source record carries (a CRM company created from an ERP customer), or by our
/// reference (which closes the window where an earlier attempt created the record and died
/// before the ledger knew), then updated when `update` and it differs, or created. Invoicing
/// uses it with `update` false to make sure a deal's customer exists.
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
    if !update
        && let Some(id) = fields
            .origin
            .as_deref()
            .and_then(|origin| referenced_id(origin, sink_system, sink.record_kind()))
    {
        return Ok(Synced::Unchanged {
            target_id: id.to_owned(),
        });
    }
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
    use crate::domain::{Entity, Timestamp};
    use crate::error::{ConnectorError, StoreError};
    use crate::flows::digest;
    use crate::ports::{Claim, FailureNote};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// status, target id, lease held, payload digest
    type LedgerItem = (String, Option<String>, bool, String);

    #[derive(Default)]
    struct FakeLedger {
        items: Mutex<HashMap<String, LedgerItem>>,
        locks: Mutex<std::collections::HashSet<String>>,
        /// The keys marked APPLIED, in order.
        marked: Mutex<Vec<String>>,
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
                    Ok(Claim::Failed {
                        class: status.split(':').nth(1).unwrap_or_default().to_owned(),
                        reason: status.clone(),
                    })
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
            self.marked.lock().expect("lock").push(lease.key.clone());
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

    /// Links by CRM id, ERP pointers, the items locked (`crm#901`), and the notices recorded.
    #[derive(Default)]
    struct FakeLinks {
        pairs: Mutex<HashMap<String, CustomerLink>>,
        pointers: Mutex<HashMap<String, String>>,
        locks: Mutex<std::collections::HashSet<String>>,
        /// Every item a lock was taken on, in order.
        locked: Mutex<Vec<String>>,
        notices: Mutex<Vec<CustomerNotice>>,
    }

    fn item(role: Role, id: &str) -> String {
        format!("{}#{id}", role.as_str())
    }

    impl FakeLinks {
        fn save(&self, link: &CustomerLink) {
            self.pointers
                .lock()
                .expect("lock")
                .insert(link.erp_id.clone(), link.crm_id.clone());
            self.pairs
                .lock()
                .expect("lock")
                .insert(link.crm_id.clone(), link.clone());
        }
    }

    impl CustomerLinks for FakeLinks {
        async fn find_link(
            &self,
            role: Role,
            id: &str,
        ) -> Result<Option<CustomerLink>, StoreError> {
            let crm_id = match role {
                Role::Crm => Some(id.to_owned()),
                Role::Erp => self.pointers.lock().expect("lock").get(id).cloned(),
            };
            let pairs = self.pairs.lock().expect("lock");
            Ok(crm_id.and_then(|c| pairs.get(&c).cloned()))
        }
        async fn linked_crm_id(&self, erp_id: &str) -> Result<Option<String>, StoreError> {
            Ok(self.pointers.lock().expect("lock").get(erp_id).cloned())
        }
        async fn lock(
            &self,
            role: Role,
            id: &str,
            _lease: Duration,
        ) -> Result<Result<Locked, Duration>, StoreError> {
            if !self.locks.lock().expect("lock").insert(item(role, id)) {
                return Ok(Err(Duration::from_secs(30)));
            }
            self.locked.lock().expect("lock").push(item(role, id));
            let (link, points_to) = match role {
                Role::Crm => (self.pairs.lock().expect("lock").get(id).cloned(), None),
                Role::Erp => (None, self.pointers.lock().expect("lock").get(id).cloned()),
            };
            let lock = LinkLock {
                role,
                id: id.into(),
                token: "k".into(),
                kept: link.is_some() || points_to.is_some(),
            };
            Ok(Ok(Locked {
                lock,
                link,
                points_to,
            }))
        }
        async fn unlock(&self, lock: &LinkLock) -> Result<(), StoreError> {
            self.locks
                .lock()
                .expect("lock")
                .remove(&item(lock.role, &lock.id));
            Ok(())
        }
        async fn save_link(
            &self,
            link: &CustomerLink,
            new: bool,
            held: &[LinkLock],
        ) -> Result<(), StoreError> {
            let mut written = vec![item(Role::Crm, &link.crm_id)];
            if new {
                written.push(item(Role::Erp, &link.erp_id));
            }
            let mut locks = self.locks.lock().expect("lock");
            for key in &written {
                let ours = held.iter().any(|l| &item(l.role, &l.id) == key);
                if locks.contains(key) && !ours {
                    return Err(StoreError::LeaseLost { key: key.clone() });
                }
            }
            for key in &written {
                locks.remove(key);
            }
            self.save(link);
            Ok(())
        }
        async fn repoint_link(&self, link: &CustomerLink, from: &str) -> Result<(), StoreError> {
            self.pairs.lock().expect("lock").remove(from);
            self.locks
                .lock()
                .expect("lock")
                .remove(&item(Role::Crm, &link.crm_id));
            self.save(link);
            Ok(())
        }
        async fn record_notice(&self, notice: &CustomerNotice) -> Result<bool, StoreError> {
            let mut notices = self.notices.lock().expect("lock");
            let seen = notices
                .iter()
                .any(|n| n.record == notice.record && n.identity == notice.identity);
            if !seen {
                notices.push(notice.clone());
            }
            Ok(!seen)
        }
    }

    /// One side's records by id: fields, last write (ms), and the writes made to it.
    struct FakeSide {
        name: &'static str,
        kind: &'static str,
        records: Mutex<HashMap<String, (CustomerFields, i64)>>,
        writes: Mutex<Vec<(String, SyncFields)>>,
        down: bool,
    }

    impl FakeSide {
        fn new(name: &'static str, kind: &'static str) -> Self {
            Self {
                name,
                kind,
                records: Mutex::new(HashMap::new()),
                writes: Mutex::new(Vec::new()),
                down: false,
            }
        }
        fn put(&self, id: &str, fields: CustomerFields, at_ms: i64) {
            self.records
                .lock()
                .expect("lock")
                .insert(id.into(), (fields, at_ms));
        }
        fn fields(&self, id: &str) -> Option<CustomerFields> {
            self.records
                .lock()
                .expect("lock")
                .get(id)
                .map(|r| r.0.clone())
        }
        fn write_count(&self) -> usize {
            self.writes.lock().expect("lock").len()
        }
    }

    fn apply(fields: &mut CustomerFields, writes: &SyncFields) {
        for (field, value) in writes.iter() {
            *fields.slot(field) = Some(value.to_owned());
        }
    }

    impl CustomerSide for FakeSide {
        fn system(&self) -> System {
            System::named(self.name)
        }
        fn record_kind(&self) -> &'static str {
            self.kind
        }
        async fn read_record(&self, id: &str) -> Result<Option<CustomerRecord>, ConnectorError> {
            if self.down {
                return Err(ConnectorError::Unavailable {
                    system: self.system(),
                    detail: "HTTP 502".into(),
                    source: None,
                });
            }
            let records = self.records.lock().expect("lock");
            Ok(records.get(id).map(|(fields, at)| CustomerRecord {
                id: id.into(),
                fields: fields.clone(),
                modified: Timestamp::from_epoch_millis(*at).expect("time"),
                syncs: true,
            }))
        }
        async fn find_by_origin(&self, origin: &str) -> Result<Option<String>, ConnectorError> {
            let records = self.records.lock().expect("lock");
            Ok(records
                .iter()
                .find(|(_, (f, _))| f.origin.as_deref() == Some(origin))
                .map(|(id, _)| id.clone()))
        }
        async fn create_record(
            &self,
            fields: &SyncFields,
            _kind: CustomerKind,
            origin: &str,
        ) -> Result<String, ConnectorError> {
            let mut records = self.records.lock().expect("lock");
            let id = format!("{}", 100 + records.len());
            let mut created = CustomerFields {
                origin: Some(origin.into()),
                ..CustomerFields::default()
            };
            apply(&mut created, fields);
            records.insert(id.clone(), (created, 10_000));
            self.writes
                .lock()
                .expect("lock")
                .push((id.clone(), fields.clone()));
            Ok(id)
        }
        async fn update_record(&self, id: &str, fields: &SyncFields) -> Result<(), ConnectorError> {
            let mut records = self.records.lock().expect("lock");
            if let Some((record, at)) = records.get_mut(id) {
                apply(record, fields);
                *at += 1000;
            }
            self.writes
                .lock()
                .expect("lock")
                .push((id.into(), fields.clone()));
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

    fn event(source: &str, id: &str, occurred_at_ms: i64) -> ChangeEvent {
        ChangeEvent {
            source: source.into(),
            entity: Entity::Customer,
            subscription_type: "company.propertyChange".into(),
            object_id: id.into(),
            event_id: "1".into(),
            account_id: "62515".into(),
            occurred_at_ms,
            change_source: None,
            merged_ids: Vec::new(),
        }
    }

    fn crm_event(occurred_at_ms: i64) -> ChangeEvent {
        event("crm", "901", occurred_at_ms)
    }

    struct World {
        ledger: FakeLedger,
        links: FakeLinks,
        crm: FakeSide,
        erp: FakeSide,
        rules: CustomerRules,
        ownership: Ownership,
        metrics: Metrics,
    }

    impl World {
        fn new() -> Self {
            let crm = FakeSide::new("crm", "company");
            crm.put("901", fields("900123456-8"), 1_000);
            Self {
                ledger: FakeLedger::default(),
                links: FakeLinks::default(),
                crm,
                erp: FakeSide::new("erp", "partner"),
                rules: CustomerRules::default(),
                ownership: Ownership::default(),
                metrics: Metrics::default(),
            }
        }
        async fn sync_as(&self, e: &ChangeEvent, redriven: bool) -> Result<Synced, SyncError> {
            let flow = CustomerSync {
                ledger: &self.ledger,
                links: &self.links,
                crm: &self.crm,
                erp: &self.erp,
                rules: &self.rules,
                terms: TermsRules {
                    credit_currency: crate::domain::Currency::parse("COP").expect("COP"),
                },
                ownership: &self.ownership,
                breaker: BreakerRules {
                    max_writes: 3,
                    window: Duration::from_secs(600),
                },
                near_miss_window: Duration::from_secs(60),
                metrics: &self.metrics,
            };
            flow.sync(e, Duration::from_secs(60), redriven).await
        }
        async fn sync(&self, e: &ChangeEvent) -> Result<Synced, SyncError> {
            self.sync_as(e, false).await
        }
    }

    #[tokio::test]
    async fn a_new_company_is_created_linked_and_completed() {
        let world = World::new();
        let synced = world.sync(&crm_event(1)).await.expect("synced");
        assert_eq!(
            synced,
            Synced::Created {
                target_id: "100".into()
            }
        );
        let created = world.erp.fields("100").expect("created");
        assert_eq!(created.origin.as_deref(), Some("crm-company-901"));
        assert_eq!(created.tax_id.as_deref(), Some("900123456-8"));
        assert_eq!(
            world.ledger.status("customer#crm#901#1").as_deref(),
            Some("COMPLETED")
        );
        let link = world.links.pairs.lock().expect("lock")["901"].clone();
        assert_eq!(link.erp_id, "100");
        assert!(link.erp.written.is_some());
        assert_eq!(link.crm.version_ms, 1_000);
    }

    #[tokio::test]
    async fn the_same_change_twice_writes_once() {
        let world = World::new();
        world.sync(&crm_event(1)).await.expect("first");
        assert_eq!(
            world.sync(&crm_event(1)).await.expect("second"),
            Synced::Duplicate
        );
        assert_eq!(world.erp.write_count(), 1);
    }

    #[tokio::test]
    async fn a_later_change_with_the_same_values_writes_nothing() {
        let world = World::new();
        world.sync(&crm_event(1)).await.expect("first");
        let synced = world.sync(&crm_event(2_000)).await.expect("second");
        assert_eq!(
            synced,
            Synced::Unchanged {
                target_id: "100".into()
            }
        );
        assert_eq!(world.erp.write_count(), 1);
    }

    #[tokio::test]
    async fn our_write_coming_back_is_an_echo_and_writes_nothing() {
        let world = World::new();
        world.sync(&crm_event(1)).await.expect("created");
        let echo = world
            .sync(&event("erp", "100", 10_000))
            .await
            .expect("echo");
        assert_eq!(echo, Synced::Echo);
        assert_eq!((world.crm.write_count(), world.erp.write_count()), (0, 1));
    }

    #[tokio::test]
    async fn a_repair_restores_an_owned_field_the_other_side_changed_silently() {
        let world = World::new();
        world.sync(&crm_event(1)).await.expect("created");
        // An ERP edit of its own field reaches the CRM: the company now holds what we wrote.
        let mut edited = world.erp.fields("100").expect("partner");
        edited.city = Some("Medellín".into());
        world.erp.put("100", edited, 20_000);
        world
            .sync(&event("erp", "100", 20_000))
            .await
            .expect("to the CRM");
        // Someone renames the partner in the ERP and its webhook is lost.
        let mut renamed = world.erp.fields("100").expect("partner");
        renamed.name = Some("Andina (renamed in the ERP)".into());
        world.erp.put("100", renamed, 30_000);
        let company = world.crm.records.lock().expect("lock")["901"].1;
        // A plain change of the company is our own write coming back...
        assert_eq!(
            world
                .sync(&event("crm", "901", company))
                .await
                .expect("echo"),
            Synced::Echo
        );
        // ...and the reconciler's repair is not.
        let mut repair = event("crm", "901", 30_000);
        repair.subscription_type = crate::domain::event::REPAIR.into();
        let synced = world.sync(&repair).await.expect("repaired");
        assert_eq!(
            synced,
            Synced::Updated {
                target_id: "100".into()
            }
        );
        let partner = world.erp.fields("100").expect("partner");
        assert_eq!(partner.name.as_deref(), Some("Distribuidora Andina SAS"));
        assert_eq!(
            world
                .ledger
                .status("customer#crm#901#30000#repair")
                .as_deref(),
            Some("COMPLETED")
        );
    }

    #[tokio::test]
    async fn an_erp_edit_of_an_erp_field_reaches_the_crm_and_not_a_crm_field() {
        let world = World::new();
        world.sync(&crm_event(1)).await.expect("created");
        let mut edited = world.erp.fields("100").expect("partner");
        edited.city = Some("Medellín".into());
        edited.name = Some("Andina (ERP)".into());
        world.erp.put("100", edited, 20_000);
        let synced = world
            .sync(&event("erp", "100", 20_000))
            .await
            .expect("synced");
        assert_eq!(
            synced,
            Synced::Updated {
                target_id: "901".into()
            }
        );
        let crm = world.crm.fields("901").expect("company");
        assert_eq!(crm.city.as_deref(), Some("Medellín"));
        assert_eq!(crm.name.as_deref(), Some("Distribuidora Andina SAS"));
        // Neither the create nor the update was marked APPLIED: the link records what was
        // written, and the keys went straight to COMPLETED (one DynamoDB write fewer each).
        assert!(world.ledger.marked.lock().expect("lock").is_empty());
        assert_eq!(
            world.ledger.status("customer#erp#100#20000").as_deref(),
            Some("COMPLETED")
        );
    }

    #[tokio::test]
    async fn an_undo_back_to_what_we_wrote_is_an_edit_not_an_echo() {
        let world = World::new();
        let mut andina = fields("900123456-8");
        andina.city = Some("Bogotá".into());
        world.crm.put("901", andina, 1_000);
        world.sync(&crm_event(1)).await.expect("created");
        let written = world.erp.fields("100").expect("partner");
        for (at, city) in [(20_000, "Medellín"), (30_000, "Bogotá")] {
            let mut edited = written.clone();
            edited.city = Some(city.into());
            world.erp.put("100", edited, at);
            let synced = world.sync(&event("erp", "100", at)).await.expect("synced");
            assert_eq!(
                synced,
                Synced::Updated {
                    target_id: "901".into()
                },
                "{city}"
            );
            assert_eq!(
                world.crm.fields("901").and_then(|f| f.city).as_deref(),
                Some(city)
            );
        }
    }

    #[tokio::test]
    async fn a_change_older_than_the_applied_version_is_stale() {
        let world = World::new();
        world.crm.put("901", fields("900123456-8"), 5_000);
        world.sync(&crm_event(5_000)).await.expect("v3");
        assert_eq!(
            world.sync(&crm_event(3_000)).await.expect("v1"),
            Synced::Stale
        );
        assert_eq!(
            world.sync(&crm_event(4_000)).await.expect("v2"),
            Synced::Stale
        );
        assert_eq!(world.erp.write_count(), 1);
    }

    #[tokio::test]
    async fn an_edit_storm_trips_the_breaker_and_quarantines_the_customer() {
        let world = World::new();
        for (i, name) in ["A", "B", "C", "D", "E"].into_iter().enumerate() {
            let at = 1_000 * (i as i64 + 1);
            let mut f = fields("900123456-8");
            f.name = Some(format!("Andina {name}"));
            world.crm.put("901", f, at);
            world.sync(&crm_event(at)).await.expect("synced");
        }
        // Three writes are allowed in the window; the fourth quarantines, the fifth waits.
        assert_eq!(world.erp.write_count(), 3);
        let link = world.links.pairs.lock().expect("lock")["901"].clone();
        assert!(
            link.quarantine
                .expect("quarantined")
                .reason
                .contains("more than 3 writes")
        );
        assert_eq!(
            world.erp.fields("100").and_then(|f| f.name).as_deref(),
            Some("Andina C")
        );
    }

    #[tokio::test]
    async fn a_crm_merge_repoints_the_link_and_deletes_nothing() {
        let world = World::new();
        world.sync(&crm_event(1)).await.expect("created");
        let mut merge = event("crm", "777", 50_000);
        merge.subscription_type = "company.merge".into();
        merge.merged_ids = vec!["901".into()];
        assert_eq!(world.sync(&merge).await.expect("merged"), Synced::Merged);
        let pairs = world.links.pairs.lock().expect("lock");
        assert_eq!(pairs["777"].erp_id, "100");
        assert!(!pairs.contains_key("901"));
        assert!(world.erp.fields("100").is_some());
        assert_eq!(world.links.notices.lock().expect("lock")[0].kind, "merged");
    }

    #[tokio::test]
    async fn an_invalid_nit_fails_the_key_with_field_reasons() {
        let world = World::new();
        world.crm.put("901", fields("900123456-7"), 1_000);
        let err = world.sync(&crm_event(1)).await.expect_err("invalid");
        let SyncError::Rejected { class, fields, .. } = err else {
            panic!("expected a rejection, got {err:?}");
        };
        assert_eq!(class, FailureClass::Invalid);
        assert_eq!(fields[0].field, "tax_id");
        assert_eq!(
            world.ledger.status("customer#crm#901#1").as_deref(),
            Some("FAILED:invalid:crm validate company")
        );
        assert_eq!(world.erp.write_count(), 0);
    }

    #[tokio::test]
    async fn an_unavailable_source_releases_the_key_for_a_retry() {
        let mut world = World::new();
        world.crm.down = true;
        let err = world.sync(&crm_event(1)).await.expect_err("transient");
        assert!(
            err.to_string().starts_with("transient: crm read company:"),
            "{err}"
        );
        let items = world.ledger.items.lock().expect("lock");
        assert!(!items["customer#crm#901#1"].2, "lease released");
    }

    #[tokio::test]
    async fn a_key_held_by_another_invocation_is_retried_later() {
        let world = World::new();
        let digest = digest(&crm_event(1).payload_identity());
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
        let err = world.sync(&crm_event(1)).await.expect_err("busy");
        assert!(matches!(err, SyncError::Busy { .. }), "{err:?}");
        assert_eq!(world.erp.write_count(), 0);
    }

    #[tokio::test]
    async fn the_same_key_with_another_payload_is_a_conflict_and_writes_nothing() {
        let world = World::new();
        world.sync(&crm_event(1)).await.expect("first");
        let mut other_portal = crm_event(1);
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
        assert_eq!(world.erp.write_count(), 1);
    }

    #[tokio::test]
    async fn a_change_without_a_business_key_is_poison_and_claims_nothing() {
        let world = World::new();
        let mut unkeyed = crm_event(1);
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
    async fn a_change_of_a_record_locked_by_another_change_waits_and_writes_nothing() {
        let world = World::new();
        let other = world
            .links
            .lock(Role::Crm, "901", Duration::from_secs(60))
            .await
            .expect("lock")
            .expect("free");
        let err = world.sync(&crm_event(1)).await.expect_err("busy");
        let SyncError::Busy { retry_after } = err else {
            panic!("expected busy, got {err:?}");
        };
        assert!(retry_after <= crate::flows::RECORD_BUSY_RETRY);
        assert_eq!(world.erp.write_count(), 0);
        world.links.unlock(&other.lock).await.expect("unlock");
        world
            .sync(&crm_event(1))
            .await
            .expect("applied once unlocked");
        assert_eq!(world.erp.write_count(), 1);
        assert!(world.links.locks.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_change_from_the_erp_of_a_linked_customer_takes_the_pair_s_one_lock() {
        let world = World::new();
        world.sync(&crm_event(1)).await.expect("created");
        // A change from the CRM holds the pair: it holds the CRM record's item.
        let crm_change = world
            .links
            .lock(Role::Crm, "901", Duration::from_secs(60))
            .await
            .expect("lock")
            .expect("free");
        assert!(crm_change.link.is_some(), "the lock comes with the link");
        let mut edited = world.erp.fields("100").expect("partner");
        edited.city = Some("Medellín".into());
        world.erp.put("100", edited, 20_000);
        let err = world
            .sync(&event("erp", "100", 20_000))
            .await
            .expect_err("busy");
        assert!(matches!(err, SyncError::Busy { .. }), "{err:?}");
        assert_eq!(world.crm.write_count(), 0);
        world.links.unlock(&crm_change.lock).await.expect("unlock");
        world.links.locked.lock().expect("lock").clear();
        let synced = world
            .sync(&event("erp", "100", 20_000))
            .await
            .expect("applied once the pair is free");
        assert_eq!(
            synced,
            Synced::Updated {
                target_id: "901".into()
            }
        );
        // One lock, on the pair's item (the ERP record's pointer was only read), and saving
        // the link gave it back.
        assert_eq!(
            *world.links.locked.lock().expect("lock"),
            vec!["crm#901".to_owned()]
        );
        assert!(world.links.locks.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_failed_change_stays_parked_with_every_copy_until_an_operator_redrives_it() {
        let world = World::new();
        world.crm.put("901", fields("900123456-7"), 1_000);
        world.sync(&crm_event(1)).await.expect_err("invalid");
        let copy = world
            .sync(&crm_event(1))
            .await
            .expect_err("another delivery");
        let SyncError::Rejected { class, reason, .. } = &copy else {
            panic!("expected the copy parked, got {copy:?}");
        };
        assert_eq!(*class, FailureClass::Invalid);
        assert!(
            reason.starts_with("failed earlier, waits for an operator's redrive"),
            "{reason}"
        );
        world.crm.put("901", fields("900123456-8"), 1_000);
        let redriven = world.sync_as(&crm_event(1), true).await.expect("redriven");
        assert_eq!(
            redriven,
            Synced::Created {
                target_id: "100".into()
            }
        );
    }
}
