//! Which system is the system of record for each customer field, and what one sync may write.
//!
//! Two-way sync without origin control ping-pongs or overwrites good data. Here every field
//! declares one owner, in one table (`Ownership`): the CRM, the ERP, or shared (the most recent
//! source edit wins, the ERP wins ties). A sync writes only the fields its source owns, plus
//! shared fields it won, plus fields the target has no value for when the rule allows filling
//! blanks (so a customer created on one side arrives complete on the other). A source without a
//! value never clears the target: a blank in one system usually means "nobody typed it here".
//!
//! Fields are compared in their canonical text form (`SyncFields`), so `+57 601 234 5678` in
//! one system and `+576012345678` in the other are the same value.

use crate::domain::{Currency, DecimalStyle, FieldError, Money, Rejection, text};
use crate::mapping::customer::{CustomerFields, CustomerRules, to_customer};
use std::collections::BTreeMap;
use std::fmt;

/// The customer fields that sync both ways. The kind (company or person) is written only when a
/// record is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CustomerField {
    Name,
    Email,
    Phone,
    TaxId,
    Street,
    City,
    Country,
    CreditLimit,
    PaymentTerms,
}

impl CustomerField {
    pub const ALL: [CustomerField; 9] = [
        CustomerField::Name,
        CustomerField::Email,
        CustomerField::Phone,
        CustomerField::TaxId,
        CustomerField::Street,
        CustomerField::City,
        CustomerField::Country,
        CustomerField::CreditLimit,
        CustomerField::PaymentTerms,
    ];

    /// The field's name in configuration, logs and conflict records.
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerField::Name => "name",
            CustomerField::Email => "email",
            CustomerField::Phone => "phone",
            CustomerField::TaxId => "tax_id",
            CustomerField::Street => "street",
            CustomerField::City => "city",
            CustomerField::Country => "country",
            CustomerField::CreditLimit => "credit_limit",
            CustomerField::PaymentTerms => "payment_terms",
        }
    }

    pub fn parse(name: &str) -> Option<CustomerField> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for CustomerField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two roles a system plays in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Crm,
    Erp,
}

impl Role {
    pub fn other(self) -> Role {
        match self {
            Role::Crm => Role::Erp,
            Role::Erp => Role::Crm,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Crm => "crm",
            Role::Erp => "erp",
        }
    }
}

/// Who may change a field everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Crm,
    Erp,
    /// Either side; the most recent source edit wins, the ERP wins ties.
    Shared,
}

impl Owner {
    fn owns(self, role: Role) -> bool {
        matches!(
            (self, role),
            (Owner::Crm, Role::Crm) | (Owner::Erp, Role::Erp)
        )
    }
}

/// One field's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRule {
    pub owner: Owner,
    /// Whether the side that does not own the field may fill it where the owner has no value
    /// (a new record, a field nobody typed yet). Never overwrites a value.
    pub fill_blank: bool,
}

/// The system of record of every synced customer field: the one place ownership is declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    rules: BTreeMap<CustomerField, FieldRule>,
}

impl Default for Ownership {
    /// Practice in CRM-ERP integration: sales keeps identity and contact data in the CRM;
    /// accounting keeps the tax id, the fiscal address, the credit limit and the payment terms
    /// in the ERP. Identity, contact, tax id and address may fill blanks both ways (a customer
    /// created on either side arrives complete); credit limit and payment terms are set by
    /// accounting only.
    fn default() -> Self {
        use CustomerField::*;
        let rule = |owner, fill_blank| FieldRule { owner, fill_blank };
        Self {
            rules: BTreeMap::from([
                (Name, rule(Owner::Crm, true)),
                (Email, rule(Owner::Crm, true)),
                (Phone, rule(Owner::Crm, true)),
                (TaxId, rule(Owner::Erp, true)),
                (Street, rule(Owner::Erp, true)),
                (City, rule(Owner::Erp, true)),
                (Country, rule(Owner::Erp, true)),
                (CreditLimit, rule(Owner::Erp, false)),
                (PaymentTerms, rule(Owner::Erp, false)),
            ]),
        }
    }
}

impl Ownership {
    /// The defaults changed by `overrides`, a comma-separated list of `field=owner` where owner
    /// is `crm`, `erp` or `shared`, optionally followed by `+fill` or `-fill` (whether the other
    /// side may fill blanks): `phone=shared,credit_limit=erp+fill`.
    pub fn with_overrides(overrides: &str) -> Result<Self, String> {
        let mut ownership = Self::default();
        for item in overrides
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (field, rule) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}` is not field=owner"))?;
            let field = CustomerField::parse(field.trim()).ok_or_else(|| {
                format!(
                    "`{}` is not a customer field (one of {})",
                    field.trim(),
                    CustomerField::ALL.map(CustomerField::as_str).join(", ")
                )
            })?;
            let rule = rule.trim();
            let (owner, fill) = match rule.find(['+', '-']) {
                Some(at) => (&rule[..at], Some(&rule[at..])),
                None => (rule, None),
            };
            let owner = match owner {
                "crm" => Owner::Crm,
                "erp" => Owner::Erp,
                "shared" => Owner::Shared,
                other => return Err(format!("`{other}` is not an owner (crm, erp or shared)")),
            };
            let current = ownership.rule(field);
            let fill_blank = match fill {
                None => current.fill_blank,
                Some("+fill") => true,
                Some("-fill") => false,
                Some(other) => return Err(format!("`{other}` is not +fill or -fill")),
            };
            ownership
                .rules
                .insert(field, FieldRule { owner, fill_blank });
        }
        Ok(ownership)
    }

    pub fn rule(&self, field: CustomerField) -> FieldRule {
        self.rules.get(&field).copied().unwrap_or(FieldRule {
            owner: Owner::Shared,
            fill_blank: false,
        })
    }

    /// Every field with its rule, in field order.
    pub fn rules(&self) -> impl Iterator<Item = (CustomerField, FieldRule)> + '_ {
        self.rules.iter().map(|(f, r)| (*f, *r))
    }

    /// What a sync from `source` (a record of `from`) to `target` may write, given the values
    /// both sides agreed on after the last sync (`agreed`, hashes by field; empty before the
    /// first) and whether the source's last edit is more recent than the target's.
    ///
    /// Per field, where source and target differ and the source has a value:
    /// - a field both sides changed since they last agreed is a conflict, reported whatever
    ///   wins; the owner wins an owned field, the more recent edit a shared one (the ERP on a
    ///   tie, which the caller folds into `source_is_newer`);
    /// - a shared field only the target changed is left: the target's own change carries it;
    /// - a field the target has no value for is filled when the rule allows it.
    pub fn plan(
        &self,
        from: Role,
        source: &SyncFields,
        target: &SyncFields,
        agreed: &BTreeMap<CustomerField, String>,
        source_is_newer: bool,
    ) -> Plan {
        let mut plan = Plan::default();
        for (field, rule) in self.rules() {
            let Some(wanted) = source.get(field) else {
                continue;
            };
            let current = target.get(field);
            if current == Some(wanted) {
                continue;
            }
            let agreed = agreed.get(&field).map(String::as_str);
            let source_changed = agreed != Some(value_hash(Some(wanted)).as_str());
            let target_changed = agreed != Some(value_hash(current).as_str());
            let both_changed = agreed.is_some() && source_changed && target_changed;
            if both_changed {
                plan.conflicts.push(field);
            }
            let write = if current.is_none() && rule.fill_blank {
                true
            } else {
                match rule.owner {
                    owner if owner.owns(from) => true,
                    Owner::Shared if both_changed || agreed.is_none() => source_is_newer,
                    Owner::Shared => !target_changed,
                    _ => false,
                }
            };
            if write {
                plan.writes.set(field, wanted.to_owned());
            }
        }
        plan
    }
}

/// What one sync writes to the target, and the fields found edited on both sides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub writes: SyncFields,
    pub conflicts: Vec<CustomerField>,
}

/// A customer's synced fields in canonical text form; a field without a value is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncFields(BTreeMap<CustomerField, String>);

impl SyncFields {
    pub fn get(&self, field: CustomerField) -> Option<&str> {
        self.0.get(&field).map(String::as_str)
    }

    pub fn set(&mut self, field: CustomerField, value: String) {
        self.0.insert(field, value);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (CustomerField, &str)> {
        self.0.iter().map(|(f, v)| (*f, v.as_str()))
    }

    /// The field names, for logs (never the values: they are personal data).
    pub fn names(&self) -> Vec<&'static str> {
        self.0.keys().map(|f| f.as_str()).collect()
    }

    /// These fields with `writes` applied over them: what the target holds after the write.
    #[must_use]
    pub fn overlaid(&self, writes: &SyncFields) -> SyncFields {
        let mut merged = self.clone();
        for (field, value) in writes.iter() {
            merged.set(field, value.to_owned());
        }
        merged
    }

    /// A digest of every field and value: equal digests, equal field sets.
    pub fn digest(&self) -> String {
        let parts: Vec<String> = CustomerField::ALL
            .iter()
            .map(|f| format!("{}={}", f.as_str(), self.get(*f).unwrap_or_default()))
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        crate::flows::digest(&parts)
    }

    /// Per field, the hash of its value: what both sides hold once they agree.
    pub fn value_hashes(&self) -> BTreeMap<CustomerField, String> {
        CustomerField::ALL
            .iter()
            .map(|f| (*f, value_hash(self.get(*f))))
            .collect()
    }
}

/// A short hash of one field's value (`None`: no value). Values are personal data; the state
/// table keeps only these.
pub fn value_hash(value: Option<&str>) -> String {
    let digest = crate::flows::digest(&[value.unwrap_or("\u{0}")]);
    digest[..12].to_owned()
}

/// The rules that read the two ERP-only fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermsRules {
    /// The currency the ERP keeps credit limits in (its company currency).
    pub credit_currency: Currency,
}

/// Validates a source record into its synced fields, or lists every field that is wrong: the
/// customer mapping's checks (tax id check digits, email, phone, country) plus the credit limit
/// (a non-negative amount in `terms.credit_currency`) and the payment terms (text).
pub fn sync_fields(
    fields: &CustomerFields,
    rules: &CustomerRules,
    terms: TermsRules,
) -> Result<SyncFields, Rejection> {
    let mut errors = Vec::new();
    let customer = to_customer(fields, rules)
        .map_err(|r| errors.extend(r.0))
        .ok();
    let credit = fields
        .credit_limit
        .as_deref()
        .and_then(text::clean)
        .and_then(
            |raw| match Money::parse(&raw, terms.credit_currency, DecimalStyle::Plain) {
                Ok(m) if m.minor() < 0 => {
                    errors.push(FieldError::new("credit_limit", "is negative"));
                    None
                }
                Ok(m) => Some(m.to_decimal_string()),
                Err(e) => {
                    errors.push(FieldError::new("credit_limit", e.to_string()));
                    None
                }
            },
        );
    let terms_name = fields.payment_terms.as_deref().and_then(text::clean);
    let Some(customer) = customer.filter(|_| errors.is_empty()) else {
        return Err(Rejection(errors));
    };
    let mut synced = SyncFields::default();
    let mut put = |field, value: Option<String>| {
        if let Some(value) = value {
            synced.set(field, value);
        }
    };
    put(CustomerField::Name, Some(customer.name));
    put(CustomerField::Email, customer.email.map(|e| e.to_string()));
    put(CustomerField::Phone, customer.phone.map(|p| p.to_string()));
    put(CustomerField::TaxId, customer.tax_id.map(|t| t.storage()));
    put(CustomerField::Street, customer.address.street);
    put(CustomerField::City, customer.address.city);
    put(
        CustomerField::Country,
        customer.address.country.map(|c| c.code().to_owned()),
    );
    put(CustomerField::CreditLimit, credit);
    put(CustomerField::PaymentTerms, terms_name);
    Ok(synced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(CustomerField, &str)]) -> SyncFields {
        let mut synced = SyncFields::default();
        for (field, value) in pairs {
            synced.set(*field, (*value).to_owned());
        }
        synced
    }

    /// The fields each direction writes when both sides hold a different value for every field
    /// and have agreed on nothing yet.
    fn written(ownership: &Ownership, from: Role) -> Vec<CustomerField> {
        let source = fields(&CustomerField::ALL.map(|f| (f, "source")));
        let target = fields(&CustomerField::ALL.map(|f| (f, "target")));
        let agreed = fields(&CustomerField::ALL.map(|f| (f, "before"))).value_hashes();
        let plan = ownership.plan(from, &source, &target, &agreed, true);
        plan.writes.iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn no_field_is_written_in_both_directions_unless_it_is_shared() {
        for ownership in [
            Ownership::default(),
            Ownership::with_overrides("phone=shared,tax_id=crm-fill,name=erp").expect("valid"),
        ] {
            let to_erp = written(&ownership, Role::Crm);
            let to_crm = written(&ownership, Role::Erp);
            for (field, rule) in ownership.rules() {
                let both = to_erp.contains(&field) && to_crm.contains(&field);
                assert_eq!(both, rule.owner == Owner::Shared, "{field} under {rule:?}");
            }
        }
    }

    #[test]
    fn the_defaults_give_identity_to_the_crm_and_fiscal_data_to_the_erp() {
        use CustomerField::*;
        let ownership = Ownership::default();
        assert_eq!(written(&ownership, Role::Crm), [Name, Email, Phone]);
        assert_eq!(
            written(&ownership, Role::Erp),
            [TaxId, Street, City, Country, CreditLimit, PaymentTerms]
        );
    }

    #[test]
    fn blanks_are_filled_only_where_the_rule_allows_and_never_cleared() {
        use CustomerField::*;
        let ownership = Ownership::default();
        let crm = fields(&[(Name, "Andina"), (TaxId, "900123456-8"), (CreditLimit, "5")]);
        let erp = fields(&[(Name, "Andina")]);
        let plan = ownership.plan(Role::Crm, &crm, &erp, &BTreeMap::new(), false);
        assert_eq!(plan.writes, fields(&[(TaxId, "900123456-8")]));
        // The ERP lost its tax id: an empty source never clears the target.
        let plan = ownership.plan(Role::Erp, &erp, &crm, &BTreeMap::new(), true);
        assert!(plan.writes.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_shared_field_goes_to_the_newer_edit_and_both_edits_are_a_conflict() {
        use CustomerField::*;
        let ownership = Ownership::with_overrides("phone=shared").expect("valid");
        let agreed = fields(&[(Phone, "+571")]).value_hashes();
        let crm = fields(&[(Phone, "+572")]);
        let erp = fields(&[(Phone, "+573")]);
        // Both changed: the newer source writes, the older does not, both see the conflict.
        let newer = ownership.plan(Role::Erp, &erp, &crm, &agreed, true);
        assert_eq!(newer.writes, fields(&[(Phone, "+573")]));
        assert_eq!(newer.conflicts, [Phone]);
        let older = ownership.plan(Role::Crm, &crm, &erp, &agreed, false);
        assert!(older.writes.is_empty());
        assert_eq!(older.conflicts, [Phone]);
        // Only the source changed: it writes even when the target's record is newer.
        let unchanged_erp = fields(&[(Phone, "+571")]);
        let plan = ownership.plan(Role::Crm, &crm, &unchanged_erp, &agreed, false);
        assert_eq!(plan.writes, crm);
        assert!(plan.conflicts.is_empty());
        // Only the target changed: its own change carries it, the source writes nothing.
        let plan = ownership.plan(Role::Crm, &unchanged_erp, &erp, &agreed, true);
        assert!(plan.writes.is_empty());
    }

    #[test]
    fn an_owned_field_edited_on_both_sides_keeps_the_owners_value_and_reports_it() {
        use CustomerField::*;
        let ownership = Ownership::default();
        let agreed = fields(&[(Name, "Andina")]).value_hashes();
        let crm = fields(&[(Name, "Andina SAS")]);
        let erp = fields(&[(Name, "Andina S.A.S.")]);
        let from_crm = ownership.plan(Role::Crm, &crm, &erp, &agreed, false);
        assert_eq!(from_crm.writes, crm);
        assert_eq!(from_crm.conflicts, [Name]);
        let from_erp = ownership.plan(Role::Erp, &erp, &crm, &agreed, true);
        assert!(from_erp.writes.is_empty());
        assert_eq!(from_erp.conflicts, [Name]);
    }

    #[test]
    fn overrides_are_parsed_and_mistakes_named() {
        let ownership =
            Ownership::with_overrides(" phone = shared , credit_limit=erp+fill").expect("valid");
        assert_eq!(
            ownership.rule(CustomerField::Phone),
            FieldRule {
                owner: Owner::Shared,
                fill_blank: true
            }
        );
        assert!(ownership.rule(CustomerField::CreditLimit).fill_blank);
        for (bad, says) in [
            ("vat=erp", "`vat` is not a customer field"),
            ("name", "is not field=owner"),
            ("name=sales", "`sales` is not an owner"),
            ("name=crm*fill", "`crm*fill` is not an owner"),
        ] {
            let error = Ownership::with_overrides(bad).expect_err(bad);
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn synced_fields_are_canonical_and_every_bad_field_is_named() {
        let rules = CustomerRules::default();
        let terms = TermsRules {
            credit_currency: Currency::parse("COP").expect("COP"),
        };
        let raw = CustomerFields {
            name: Some(" Distribuidora  Andina ".into()),
            tax_id: Some("900.123.456-8".into()),
            phone: Some("601 234 5678".into()),
            credit_limit: Some("15000000".into()),
            payment_terms: Some(" 30 Días ".into()),
            ..CustomerFields::default()
        };
        let synced = sync_fields(&raw, &rules, terms).expect("valid");
        assert_eq!(
            synced.get(CustomerField::Name),
            Some("Distribuidora Andina")
        );
        assert_eq!(synced.get(CustomerField::TaxId), Some("900123456-8"));
        assert_eq!(synced.get(CustomerField::Phone), Some("+576012345678"));
        assert_eq!(synced.get(CustomerField::Country), Some("CO"));
        assert_eq!(synced.get(CustomerField::CreditLimit), Some("15000000.00"));
        assert_eq!(synced.get(CustomerField::PaymentTerms), Some("30 Días"));
        let bad = CustomerFields {
            tax_id: Some("900123456-7".into()),
            credit_limit: Some("-5".into()),
            ..raw
        };
        let rejection = sync_fields(&bad, &rules, terms).expect_err("invalid");
        let named: Vec<&str> = rejection
            .fields()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(named, ["tax_id", "credit_limit"]);
    }

    #[test]
    fn digests_change_with_any_value_and_hashes_hide_values() {
        use CustomerField::*;
        let a = fields(&[(Name, "Andina"), (City, "Bogotá")]);
        let b = fields(&[(Name, "Andina"), (City, "Bogota")]);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), a.clone().digest());
        assert_eq!(a.overlaid(&fields(&[(City, "Bogota")])), b);
        let hash = value_hash(Some("900123456-8"));
        assert_eq!(hash.len(), 12);
        assert!(!hash.contains("900123456"));
        assert_ne!(value_hash(None), value_hash(Some("")));
    }
}
