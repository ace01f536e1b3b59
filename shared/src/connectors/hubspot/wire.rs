//! HubSpot's JSON shapes (webhook events, CRM v3 objects, list/search/batch envelopes, the error
//! body) and the pure conversions between CRM v3 properties and the canonical model: companies,
//! contacts, deals, line items, and the invoice status written back to a deal.
//!
//! HubSpot sends every property value as a string or `null`, and leaves out properties it was
//! not asked for. Reading, a missing, null or blank property is "no value"; a present but
//! invalid one is a field-level rejection that names the property, never its value. Writing,
//! only fields with a value are sent, so a create or update never clears what HubSpot holds.
//! Custom property names (tax id, billing email, the deal's invoice properties) come from
//! configuration.

use crate::config::HubSpotConfig;
use crate::domain::contact::{CompanyRef, Contact};
use crate::domain::deal::DealSummary;
use crate::domain::invoice::{InvoiceLine, PaymentState};
use crate::domain::payment::InvoiceStatus;
use crate::domain::{
    ChangeEvent, Country, CrmId, Currency, Customer, CustomerKind, Date, DecimalStyle, Email,
    Entity, FieldError, Money, MoneyError, Phone, Quantity, Rate, Rejection, Sku, Timestamp,
    ZoneOffset, text,
};
use crate::mapping::customer::CustomerFields;
use crate::mapping::ownership::{CustomerField, SyncFields};
use crate::ports::{CustomerRecord, ShownStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// HubSpot sends ids as JSON numbers; some tools replay them as strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Number(u64),
    Text(String),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Number(n) => n.to_string(),
            Id::Text(s) => s,
        }
    }
}

/// One event of a webhook delivery (the body is a JSON array of these).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub event_id: Id,
    pub subscription_id: Option<Id>,
    pub portal_id: Id,
    pub app_id: Option<Id>,
    pub occurred_at: i64,
    pub subscription_type: String,
    pub attempt_number: Option<u32>,
    pub object_id: Id,
    pub change_source: Option<String>,
    pub change_flag: Option<String>,
    pub source_id: Option<String>,
    pub property_name: Option<String>,
    /// The new value, for `*.propertyChange` (a deal's new stage id, for example).
    pub property_value: Option<String>,
    /// For `*.merge`: the primary record and the ones merged with it, and the record that
    /// survives them (HubSpot now merges into a new record, `newObjectId`, and the old ids
    /// resolve to it; older merges kept the primary's id).
    pub primary_object_id: Option<Id>,
    #[serde(default)]
    pub merged_object_ids: Vec<Id>,
    pub new_object_id: Option<Id>,
}

/// The flow an event's subscription type belongs to (`company.propertyChange` -> customer).
pub fn entity_of(subscription_type: &str) -> Entity {
    match subscription_type.split_once('.').map(|(object, _)| object) {
        Some("company") => Entity::Customer,
        Some("contact") => Entity::Contact,
        Some("deal") => Entity::Deal,
        Some("product") => Entity::Product,
        _ => Entity::Other,
    }
}

impl From<WebhookEvent> for ChangeEvent {
    fn from(e: WebhookEvent) -> Self {
        // A merge's change is the surviving record's; every other record in it is merged away.
        let primary = e.primary_object_id.map(Id::into_string);
        let object_id = e
            .new_object_id
            .map(Id::into_string)
            .or_else(|| primary.clone())
            .unwrap_or_else(|| e.object_id.into_string());
        let merged_ids = primary
            .into_iter()
            .chain(e.merged_object_ids.into_iter().map(Id::into_string))
            .filter(|id| *id != object_id)
            .collect();
        ChangeEvent {
            source: super::SYSTEM.name().to_owned(),
            entity: entity_of(&e.subscription_type),
            subscription_type: e.subscription_type,
            merged_ids,
            object_id,
            event_id: e.event_id.into_string(),
            account_id: e.portal_id.into_string(),
            occurred_at_ms: e.occurred_at,
            change_source: e.change_source,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CRM v3 objects and envelopes
// ---------------------------------------------------------------------------------------------

/// A CRM v3 object: property values come back as strings or null.
#[derive(Debug, Clone, Deserialize)]
pub struct CrmObject {
    pub id: String,
    #[serde(default)]
    pub properties: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub archived: bool,
    /// Associated records by object type (`"companies"`), when asked for with `associations=`.
    #[serde(default)]
    pub associations: BTreeMap<String, AssociationPage>,
}

/// The associated records of one object type, as `GET ...?associations=companies` returns them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AssociationPage {
    #[serde(default)]
    pub results: Vec<AssociatedId>,
    /// Set when there are more than one page of associations (over 100).
    #[serde(default)]
    pub paging: Option<Paging>,
}

/// One associated record: its id and the association type (`"deal_to_company"`).
#[derive(Debug, Clone, Deserialize)]
pub struct AssociatedId {
    pub id: String,
    #[serde(rename = "type", default)]
    pub association_type: Option<String>,
}

/// A page of a list or search: `{"total"?, "results": [...], "paging": {"next": {"after"}}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    /// Search responses only: how many records match (capped by HubSpot at 10,000 readable).
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

impl<T> Page<T> {
    /// The cursor for the next page, `None` on the last one.
    pub fn next_after(&self) -> Option<&str> {
        self.paging
            .as_ref()
            .and_then(|p| p.next.as_ref())
            .map(|n| n.after.as_str())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub next: Option<NextPage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NextPage {
    pub after: String,
    #[serde(default)]
    pub link: Option<String>,
}

/// A batch response (`/batch/read|create|update|upsert`): `status` is `COMPLETE` (or
/// `PENDING`/`PROCESSING`/`CANCELED`); a multi-status (207) answer also lists `errors`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse<T> {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    #[serde(default)]
    pub num_errors: Option<u32>,
    #[serde(default)]
    pub errors: Vec<ErrorBody>,
}

/// HubSpot's error body. HubSpot says to treat every field as optional. `message` and the
/// details' messages can quote the values sent (an email, a tax id): never log them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub sub_category: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
    #[serde(default)]
    pub context: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub links: BTreeMap<String, String>,
}

/// One entry of an error body's `errors`: `{"message", "code": "INVALID_EMAIL", "in": "email"}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    /// The property or parameter the error is about.
    #[serde(rename = "in", default)]
    pub location: Option<String>,
    #[serde(default)]
    pub sub_category: Option<String>,
}

/// The body of a create or update: `{"properties": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct PropertiesInput {
    pub properties: Map<String, Value>,
}

/// Standard company properties the customer flow reads.
pub const COMPANY_PROPERTIES: [&str; 5] = ["name", "phone", "address", "city", "country"];

/// Standard contact properties the contact mapping reads.
pub const CONTACT_PROPERTIES: [&str; 8] = [
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "jobtitle",
    "company",
    "associatedcompanyid",
];

/// Standard deal properties the deal mapping reads.
pub const DEAL_PROPERTIES: [&str; 7] = [
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "deal_currency_code",
    "hs_lastmodifieddate",
];

/// Standard line item properties the line mapping reads.
pub const LINE_ITEM_PROPERTIES: [&str; 9] = [
    "name",
    "quantity",
    "price",
    "amount",
    "hs_product_id",
    "hs_sku",
    "discount",
    "hs_discount_percentage",
    "hs_tax_rate",
];

// ---------------------------------------------------------------------------------------------
// Configuration of deal properties
// ---------------------------------------------------------------------------------------------

/// Names of the custom deal properties that carry the ERP invoice's status. HubSpot has no
/// standard ones; each portal creates them, so the names are configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealProperties {
    pub invoice_number: String,
    pub amount_invoiced: String,
    pub amount_paid: String,
    pub amount_outstanding: String,
    /// Written as `YYYY-MM-DD` (a HubSpot date property).
    pub due_date: String,
    /// One of `not_paid`, `partial`, `paid`, `reversed` (an enumeration property's values).
    pub payment_state: String,
    /// `"true"` or `"false"` (a HubSpot boolean checkbox).
    pub overdue: String,
    /// Company property with what the customer owes across its invoices (single-line text:
    /// `1190000.00 COP; 20.00 USD`, `0` when nothing).
    pub company_outstanding: String,
    /// Company property with how many of its invoices are overdue (a number).
    pub company_overdue_invoices: String,
}

impl Default for DealProperties {
    fn default() -> Self {
        Self {
            invoice_number: "erp_invoice_number".into(),
            amount_invoiced: "erp_amount_invoiced".into(),
            amount_paid: "erp_amount_paid".into(),
            amount_outstanding: "erp_amount_outstanding".into(),
            due_date: "erp_due_date".into(),
            payment_state: "erp_payment_state".into(),
            overdue: "erp_overdue".into(),
            company_outstanding: "erp_outstanding".into(),
            company_overdue_invoices: "erp_overdue_invoices".into(),
        }
    }
}

impl DealProperties {
    /// Every configured name, for a request's `properties=` list.
    pub fn names(&self) -> [&str; 7] {
        [
            &self.invoice_number,
            &self.amount_invoiced,
            &self.amount_paid,
            &self.amount_outstanding,
            &self.due_date,
            &self.payment_state,
            &self.overdue,
        ]
    }
}

/// How deal values without an explicit unit are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealRules {
    /// The currency of a deal without `deal_currency_code` (the portal's company currency).
    pub default_currency: Currency,
    /// The offset in which a `closedate` instant is turned into a calendar date (HubSpot
    /// stores date properties as midnight UTC, so UTC keeps the date the user picked).
    pub close_date_offset: ZoneOffset,
}

impl Default for DealRules {
    fn default() -> Self {
        Self {
            default_currency: Currency::COP,
            close_date_offset: ZoneOffset::UTC,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading properties
// ---------------------------------------------------------------------------------------------

/// Field reasons never quote the value: amounts are harmless, but the same helpers read
/// properties that may hold personal data.
fn money_reason(error: &MoneyError) -> String {
    match error {
        MoneyError::UnknownCurrency { .. } => "is not a known ISO 4217 currency".into(),
        MoneyError::TooManyDecimals {
            decimals, currency, ..
        } => match currency.minor_units() {
            0 => format!("has {decimals} decimals but {currency} allows none"),
            n => format!("has {decimals} decimals but {currency} allows {n}"),
        },
        MoneyError::PrecisionExceeded {
            what,
            decimals,
            allowed,
            ..
        } => format!("{what} has {decimals} decimals but at most {allowed} are allowed"),
        MoneyError::Overflow => "is out of range".into(),
        MoneyError::DiscountOutOfRange { .. } => "is outside 0% to 100%".into(),
        MoneyError::CurrencyMismatch { left, right } => {
            format!("mixes {left} and {right}")
        }
        MoneyError::Malformed { .. }
        | MoneyError::NotANumber { .. }
        | MoneyError::FloatTooLarge { .. }
        | MoneyError::NoWeights => {
            format!(
                "is not a plain decimal number like {}",
                DecimalStyle::Plain.example()
            )
        }
    }
}

/// Collects field errors while a record is read, so a rejection lists them all.
#[derive(Debug, Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: &str, reason: impl Into<String>) {
        self.0.push(FieldError::new(field, reason));
    }

    /// `Ok` of the value when nothing failed.
    fn finish<T>(self, value: Option<T>) -> Result<T, Rejection> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(Rejection(self.0)),
        }
    }
}

impl CrmObject {
    fn property(&self, name: &str) -> Option<String> {
        self.properties.get(name).cloned().flatten()
    }

    /// The property's text, cleaned; `None` when absent, null or blank.
    fn text(&self, name: &str) -> Option<String> {
        self.properties
            .get(name)
            .and_then(|v| v.as_deref())
            .and_then(text::clean)
    }

    /// The property's raw value, trimmed; `None` when absent, null or blank.
    fn raw(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .and_then(|v| v.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn money(&self, name: &str, currency: Currency, errors: &mut Errors) -> Option<Money> {
        let raw = self.raw(name)?;
        Money::parse(raw, currency, DecimalStyle::Plain)
            .map_err(|e| errors.push(name, money_reason(&e)))
            .ok()
    }

    fn percent(&self, name: &str, errors: &mut Errors) -> Option<Rate> {
        let raw = self.raw(name)?;
        Rate::parse_percent(raw, DecimalStyle::Plain)
            .map_err(|e| errors.push(name, money_reason(&e)))
            .ok()
    }

    fn date(&self, name: &str, offset: ZoneOffset, errors: &mut Errors) -> Option<Date> {
        let raw = self.raw(name)?;
        read_date(raw, offset)
            .map_err(|reason| errors.push(name, reason))
            .ok()
    }

    /// A company's fields as the customer mapping reads them.
    pub fn company_fields(&self, config: &HubSpotConfig) -> CustomerFields {
        CustomerFields {
            kind: Some(CustomerKind::Company),
            name: self.property("name"),
            tax_id: self.property(&config.tax_id_property),
            email: self.property(&config.email_property),
            phone: self.property("phone"),
            street: self.property("address"),
            city: self.property("city"),
            country: self.property("country"),
            credit_limit: self.property(&config.credit_limit_property),
            payment_terms: self.property(&config.payment_terms_property),
            origin: self.property(&config.erp_ref_property),
        }
    }

    /// The company as one side of the customer sync reads it: its fields, and when it was last
    /// modified.
    pub fn company_record(self, config: &HubSpotConfig) -> Result<CustomerRecord, FieldError> {
        let modified = self.modified()?;
        Ok(CustomerRecord {
            fields: self.company_fields(config),
            id: self.id,
            modified,
            syncs: true,
        })
    }

    /// The company's `hs_lastmodifieddate`, which every company carries.
    pub fn modified(&self) -> Result<Timestamp, FieldError> {
        self.last_modified()?
            .ok_or_else(|| FieldError::new("hs_lastmodifieddate", "is missing from the record"))
    }

    /// `hs_lastmodifieddate` (contacts: `lastmodifieddate`), for windowed changed-since search.
    /// `Ok(None)` when the object has neither.
    pub fn last_modified(&self) -> Result<Option<Timestamp>, FieldError> {
        let Some((name, raw)) = ["hs_lastmodifieddate", "lastmodifieddate"]
            .into_iter()
            .find_map(|name| self.raw(name).map(|raw| (name, raw)))
        else {
            return Ok(None);
        };
        Timestamp::parse_rfc3339(raw)
            .or_else(|_| Timestamp::parse_epoch_millis(raw))
            .map(Some)
            .map_err(|_| {
                FieldError::new(name, "is not an RFC 3339 timestamp or epoch milliseconds")
            })
    }
}

/// A HubSpot date: RFC 3339 (`2025-03-14T00:00:00Z`, as the v3 API returns date and datetime
/// properties) read in `offset`, or a bare `2025-03-14`.
fn read_date(raw: &str, offset: ZoneOffset) -> Result<Date, String> {
    if let Ok(date) = Date::parse_iso(raw) {
        return Ok(date);
    }
    Timestamp::parse_rfc3339(raw)
        .ok()
        .and_then(|t| t.date_in(offset).ok())
        .ok_or_else(|| "is not an RFC 3339 timestamp or a yyyy-mm-dd date".to_owned())
}

/// The writes of a create or update: only fields that have a value.
#[derive(Debug, Default)]
struct Properties(Map<String, Value>);

impl Properties {
    fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_owned(), Value::String(value.into()));
    }

    fn set_some(&mut self, name: &str, value: Option<impl Into<String>>) {
        if let Some(value) = value {
            self.set(name, value);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Companies (ERP -> CRM)
// ---------------------------------------------------------------------------------------------

/// A canonical customer as company `properties` for a create or update: name, phone, address,
/// city, country (ISO code), and the configured tax id (storage form, `900123456-8`) and email
/// properties. Fields without a value are left out, so an update never clears HubSpot's.
pub fn company_properties(customer: &Customer, config: &HubSpotConfig) -> Map<String, Value> {
    let mut properties = Properties::default();
    properties.set("name", customer.name.as_str());
    properties.set_some("phone", customer.phone.as_ref().map(Phone::as_str));
    properties.set_some("address", customer.address.street.as_deref());
    properties.set_some("city", customer.address.city.as_deref());
    properties.set_some(
        "country",
        customer.address.country.as_ref().map(Country::code),
    );
    properties.set_some(
        &config.tax_id_property,
        customer.tax_id.as_ref().map(|t| t.storage()),
    );
    properties.set_some(
        &config.email_property,
        customer.email.as_ref().map(Email::as_str),
    );
    properties.0
}

/// Synced customer fields as company `properties`: the same names as `company_properties`,
/// plus the configured credit limit and payment terms properties. Exactly the given fields.
pub fn company_writes(fields: &SyncFields, config: &HubSpotConfig) -> Map<String, Value> {
    let mut properties = Properties::default();
    for (field, value) in fields.iter() {
        let name = match field {
            CustomerField::Name => "name",
            CustomerField::Email => &config.email_property,
            CustomerField::Phone => "phone",
            CustomerField::TaxId => &config.tax_id_property,
            CustomerField::Street => "address",
            CustomerField::City => "city",
            CustomerField::Country => "country",
            CustomerField::CreditLimit => &config.credit_limit_property,
            CustomerField::PaymentTerms => &config.payment_terms_property,
        };
        properties.set(name, value);
    }
    properties.0
}

/// Every company property the two-way customer sync reads.
pub fn company_read_properties(config: &HubSpotConfig) -> Vec<&str> {
    let mut names: Vec<&str> = COMPANY_PROPERTIES.to_vec();
    names.extend([
        config.tax_id_property.as_str(),
        config.email_property.as_str(),
        config.credit_limit_property.as_str(),
        config.payment_terms_property.as_str(),
        config.erp_ref_property.as_str(),
        "hs_lastmodifieddate",
    ]);
    names
}

/// Every deal property the invoice reconciliation reads: its stage and what it shows of its
/// invoice.
pub fn deal_read_properties(names: &DealProperties) -> Vec<&str> {
    vec![
        "dealstage",
        "deal_currency_code",
        "hs_lastmodifieddate",
        names.invoice_number.as_str(),
        names.amount_invoiced.as_str(),
        names.amount_paid.as_str(),
        names.amount_outstanding.as_str(),
        names.due_date.as_str(),
        names.payment_state.as_str(),
        names.overdue.as_str(),
    ]
}

// ---------------------------------------------------------------------------------------------
// Contacts
// ---------------------------------------------------------------------------------------------

const MAX_NAME_CHARS: usize = 255;

impl CrmObject {
    /// A contact validated into the canonical model, or every property that failed.
    ///
    /// A contact with a single name (only `firstname`) keeps it as its last name. The phone is
    /// `phone`, else `mobilephone`, read as a national number of `default_country` when it has
    /// no country code. The company is `associatedcompanyid`, else the first associated
    /// company; the free-text `company` name is not a reference and is not read.
    pub fn contact(&self, default_country: Option<Country>) -> Result<Contact, Rejection> {
        let mut errors = Errors::default();
        let name = |property: &str, errors: &mut Errors| match self.text(property) {
            Some(n) if n.chars().count() > MAX_NAME_CHARS => {
                errors.push(property, "is longer than 255 characters");
                None
            }
            other => other,
        };
        let first = name("firstname", &mut errors);
        let last = name("lastname", &mut errors);
        let (first_name, last_name) = match (first, last) {
            (first, Some(last)) => (first, Some(last)),
            (Some(single), None) => (None, Some(single)),
            (None, None) => {
                if !errors.0.iter().any(|e| e.field.ends_with("name")) {
                    errors.push("lastname", "is required (or firstname)");
                }
                (None, None)
            }
        };
        let job_title = name("jobtitle", &mut errors);

        let email = self.raw("email").and_then(|raw| {
            Email::parse(raw)
                .map_err(|e| errors.push("email", e.to_string()))
                .ok()
        });

        let phone = ["phone", "mobilephone"]
            .into_iter()
            .find_map(|property| self.raw(property).map(|raw| (property, raw)))
            .and_then(|(property, raw)| {
                Phone::parse(raw, default_country)
                    .map_err(|e| errors.push(property, e.to_string()))
                    .ok()
            });

        let company = match self.raw("associatedcompanyid") {
            Some(raw) => CrmId::parse(raw)
                .map_err(|e| errors.push("associatedcompanyid", e.to_string()))
                .ok(),
            None => self.associated("companies"),
        }
        .map(CompanyRef::Crm);

        errors.finish(last_name.map(|last_name| Contact {
            first_name,
            last_name,
            email,
            phone,
            job_title,
            company,
        }))
    }

    /// Every associated record of `object_type`, in HubSpot's order, and whether HubSpot has
    /// more than it returned. v3 names an association by the object type's plural label, which
    /// is `"line items"` for line items; the API name (`line_items`) is accepted too.
    pub fn associated_ids(&self, object_type: &str) -> (Vec<String>, bool) {
        let label = object_type.replace('_', " ");
        match self
            .associations
            .get(&label)
            .or_else(|| self.associations.get(object_type))
        {
            None => (Vec::new(), false),
            Some(page) => (
                page.results.iter().map(|a| a.id.clone()).collect(),
                page.paging.as_ref().is_some_and(|p| p.next.is_some()),
            ),
        }
    }

    /// The first associated record of `object_type` with a usable id.
    fn associated(&self, object_type: &str) -> Option<CrmId> {
        self.associations
            .get(object_type)?
            .results
            .iter()
            .find_map(|a| CrmId::parse(&a.id).ok())
    }
}

/// A canonical contact as contact `properties` for a create or update; fields without a value
/// are left out. A company known by its CRM id is written as `associatedcompanyid`; one known
/// only by its ERP id has no HubSpot property and is left for the association step.
pub fn contact_properties(contact: &Contact) -> Map<String, Value> {
    let mut properties = Properties::default();
    properties.set_some("firstname", contact.first_name.as_deref());
    properties.set("lastname", contact.last_name.as_str());
    properties.set_some("email", contact.email.as_ref().map(Email::as_str));
    properties.set_some("phone", contact.phone.as_ref().map(Phone::as_str));
    properties.set_some("jobtitle", contact.job_title.as_deref());
    if let Some(CompanyRef::Crm(id)) = &contact.company {
        properties.set("associatedcompanyid", id.as_str());
    }
    properties.0
}

// ---------------------------------------------------------------------------------------------
// Deals
// ---------------------------------------------------------------------------------------------

impl CrmObject {
    /// The deal's currency: `deal_currency_code`, else the configured default.
    pub fn deal_currency(&self, rules: &DealRules) -> Result<Currency, FieldError> {
        match self.raw("deal_currency_code") {
            None => Ok(rules.default_currency),
            Some(code) => Currency::parse(code)
                .map_err(|e| FieldError::new("deal_currency_code", money_reason(&e))),
        }
    }

    /// A deal validated into a `DealSummary`, or every property that failed. `dealname` and
    /// `dealstage` are required; `amount` is read in the deal's currency and may not have more
    /// decimals than it; `closedate` becomes a date in `rules.close_date_offset`. The company is
    /// the first associated company, when the object was read with `associations=companies`.
    /// `pipeline` and `hs_lastmodifieddate` are not part of the summary (see `last_modified`).
    pub fn deal_summary(&self, rules: &DealRules) -> Result<DealSummary, Rejection> {
        let mut errors = Errors::default();
        let id = CrmId::parse(&self.id)
            .map_err(|e| errors.push("id", e.to_string()))
            .ok();
        let name = self.text("dealname");
        if name.is_none() {
            errors.push("dealname", "is required");
        }
        let stage = self.raw("dealstage").map(str::to_owned);
        if stage.is_none() {
            errors.push("dealstage", "is required");
        }
        let currency = self.deal_currency(rules).map_err(|e| errors.0.push(e)).ok();
        let amount = currency.and_then(|c| self.money("amount", c, &mut errors));
        let close_date = self.date("closedate", rules.close_date_offset, &mut errors);
        let company = self.associated("companies");
        let summary = match (id, name, stage) {
            (Some(id), Some(name), Some(stage)) => Some(DealSummary {
                id,
                name,
                stage,
                amount,
                close_date,
                company,
            }),
            _ => None,
        };
        errors.finish(summary)
    }
}

// ---------------------------------------------------------------------------------------------
// Line items
// ---------------------------------------------------------------------------------------------

impl CrmObject {
    /// A line item validated into an invoice line in `currency` (the deal's), or every property
    /// that failed.
    ///
    /// - `name` (the description), `quantity` and `price` are required.
    /// - The discount is `hs_discount_percentage`, else `discount` (HubSpot's amount off each
    ///   unit) converted to the rate it is of `price` when that is exact to 0.0001%; both set,
    ///   or a rate outside 0% to 100%, is an error.
    /// - `hs_tax_rate`, when present, is the line's one tax (a percent).
    /// - `amount`, when present, is HubSpot's line total: it must equal quantity × price less
    ///   the discount, rounded once, so the invoice never disagrees with the deal.
    /// - `hs_sku` becomes the SKU; `hs_product_id` is HubSpot's own product id and is not read.
    pub fn invoice_line(&self, currency: Currency) -> Result<InvoiceLine, Rejection> {
        let mut errors = Errors::default();
        let description = self.text("name");
        if description.is_none() {
            errors.push("name", "is required");
        }
        let quantity = match self.raw("quantity") {
            None => {
                errors.push("quantity", "is required");
                None
            }
            Some(raw) => Quantity::parse(raw, DecimalStyle::Plain)
                .map_err(|e| errors.push("quantity", money_reason(&e)))
                .ok(),
        };
        let price = self.money("price", currency, &mut errors);
        if price.is_none() && self.raw("price").is_none() {
            errors.push("price", "is required");
        }
        let sku = self.raw("hs_sku").and_then(|raw| {
            Sku::parse(raw)
                .map_err(|e| errors.push("hs_sku", e.to_string()))
                .ok()
        });
        let percentage = self
            .percent("hs_discount_percentage", &mut errors)
            .filter(|r| *r != Rate::ZERO);
        let amount_off = self
            .money("discount", currency, &mut errors)
            .filter(|m| !m.is_zero());
        let discount = match (percentage, amount_off) {
            (Some(_), Some(_)) => {
                errors.push(
                    "discount",
                    "is set together with hs_discount_percentage; keep one",
                );
                None
            }
            (Some(rate), None) => Some(rate),
            (None, Some(off)) => price.and_then(|price| {
                discount_rate(off, price)
                    .map_err(|reason| errors.push("discount", reason))
                    .ok()
            }),
            (None, None) => Some(Rate::ZERO),
        };
        if let Some(rate) = discount
            && !(0..=1_000_000).contains(&rate.millionths())
        {
            errors.push(
                if percentage.is_some() {
                    "hs_discount_percentage"
                } else {
                    "discount"
                },
                "is outside 0% to 100%",
            );
        }
        let taxes: Vec<Rate> = self
            .percent("hs_tax_rate", &mut errors)
            .into_iter()
            .collect();
        let stated_total = self.money("amount", currency, &mut errors);

        let line = match (description, quantity, price, discount) {
            (Some(description), Some(quantity), Some(unit_price), Some(discount)) => {
                Some(InvoiceLine {
                    sku,
                    description,
                    quantity,
                    unit_price,
                    discount,
                    taxes,
                })
            }
            _ => None,
        };
        if let Some(line) = &line
            && errors.0.is_empty()
        {
            match line.subtotal() {
                Err(e) => errors.push("amount", money_reason(&e)),
                Ok(total) if stated_total.is_some_and(|stated| stated != total) => {
                    errors.push("amount", "differs from quantity × price less the discount")
                }
                Ok(_) => {}
            }
        }
        errors.finish(line)
    }
}

/// The rate an amount off each unit is of the unit price, exact to `Rate`'s precision.
fn discount_rate(off: Money, price: Money) -> Result<Rate, String> {
    if price.is_zero() {
        return Err("cannot be taken off a price of zero".into());
    }
    let scaled = i128::from(off.minor()) * 1_000_000;
    let price = i128::from(price.minor());
    if scaled % price != 0 {
        return Err("is not an exact percentage of the price; use hs_discount_percentage".into());
    }
    i64::try_from(scaled / price)
        .map(Rate::from_millionths)
        .map_err(|_| "is out of range".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Invoice status (ERP -> CRM deal)
// ---------------------------------------------------------------------------------------------

/// How a payment state is spelled in the deal's enumeration property.
pub fn payment_state_value(state: PaymentState) -> &'static str {
    match state {
        PaymentState::NotPaid => "not_paid",
        PaymentState::Partial => "partial",
        PaymentState::Paid => "paid",
        PaymentState::Reversed => "reversed",
    }
}

fn parse_payment_state(value: &str) -> Option<PaymentState> {
    [
        PaymentState::NotPaid,
        PaymentState::Partial,
        PaymentState::Paid,
        PaymentState::Reversed,
    ]
    .into_iter()
    .find(|state| payment_state_value(*state) == value)
}

/// An invoice's status as deal `properties` under the configured names: invoice number,
/// invoiced, paid and outstanding amounts (plain decimals with the currency's digits), due date
/// (`YYYY-MM-DD`, left out when there is none), payment state, and whether it is overdue on
/// `today`. Fails only when the amounts are in different currencies or overflow.
pub fn invoice_status_properties(
    status: &InvoiceStatus,
    today: Date,
    names: &DealProperties,
) -> Result<Map<String, Value>, MoneyError> {
    let paid = status.paid()?;
    let mut properties = Properties::default();
    properties.set(&names.invoice_number, status.invoice_number.as_str());
    properties.set(&names.amount_invoiced, status.invoiced.to_decimal_string());
    properties.set(&names.amount_paid, paid.to_decimal_string());
    properties.set(
        &names.amount_outstanding,
        status.outstanding.to_decimal_string(),
    );
    properties.set_some(&names.due_date, status.due_date.map(Date::format_iso));
    properties.set(&names.payment_state, payment_state_value(status.state));
    properties.set(
        &names.overdue,
        if status.overdue(today) {
            "true"
        } else {
            "false"
        },
    );
    Ok(properties.0)
}

impl CrmObject {
    /// The invoice status a deal carries under the configured names, amounts in `currency`,
    /// or every property that failed. The paid amount, when present, must equal invoiced minus
    /// outstanding; the overdue flag is derived, not read.
    pub fn invoice_status(
        &self,
        names: &DealProperties,
        currency: Currency,
    ) -> Result<InvoiceStatus, Rejection> {
        let mut errors = Errors::default();
        let required_money = |name: &str, errors: &mut Errors| {
            let money = self.money(name, currency, errors);
            if self.raw(name).is_none() {
                errors.push(name, "is required");
            }
            money
        };
        let invoiced = required_money(&names.amount_invoiced, &mut errors);
        let outstanding = required_money(&names.amount_outstanding, &mut errors);
        let paid = self.money(&names.amount_paid, currency, &mut errors);
        let invoice_number = self.text(&names.invoice_number);
        if invoice_number.is_none() {
            errors.push(&names.invoice_number, "is required");
        }
        let due_date = self.date(&names.due_date, ZoneOffset::UTC, &mut errors);
        let state = match self.raw(&names.payment_state) {
            None => {
                errors.push(&names.payment_state, "is required");
                None
            }
            Some(raw) => {
                let state = parse_payment_state(raw);
                if state.is_none() {
                    errors.push(
                        &names.payment_state,
                        "is not one of not_paid, partial, paid, reversed",
                    );
                }
                state
            }
        };
        if let (Some(invoiced), Some(outstanding), Some(paid)) = (invoiced, outstanding, paid)
            && invoiced.checked_sub(outstanding) != Ok(paid)
        {
            errors.push(
                &names.amount_paid,
                "differs from invoiced minus outstanding",
            );
        }
        let status = match (invoice_number, invoiced, outstanding, state) {
            (Some(invoice_number), Some(invoiced), Some(outstanding), Some(state)) => {
                Some(InvoiceStatus {
                    invoice_number,
                    invoiced,
                    outstanding,
                    due_date,
                    state,
                })
            }
            _ => None,
        };
        errors.finish(status)
    }

    /// What the deal shows of its invoice, in the deal's currency: `None` when it shows no
    /// payment status (no amounts and no payment state written).
    pub fn shown_status(
        &self,
        names: &DealProperties,
        rules: &DealRules,
    ) -> Option<Result<ShownStatus, Rejection>> {
        let written = [
            &names.amount_invoiced,
            &names.amount_outstanding,
            &names.payment_state,
        ];
        if written.iter().all(|name| self.raw(name).is_none()) {
            return None;
        }
        let currency = match self.deal_currency(rules) {
            Ok(currency) => currency,
            Err(e) => return Some(Err(Rejection(vec![e]))),
        };
        Some(
            self.invoice_status(names, currency)
                .map(|status| ShownStatus {
                    status,
                    overdue: self.raw(&names.overdue) == Some("true"),
                }),
        )
    }

    /// Builds an object from a `properties` map as written, as HubSpot would read it back
    /// (every value a string). For tests and simulators.
    pub fn from_properties(id: &str, properties: &Map<String, Value>) -> Self {
        CrmObject {
            id: id.to_owned(),
            properties: properties
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    (k.clone(), text)
                })
                .collect(),
            archived: false,
            associations: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_company_event_becomes_a_customer_change() {
        let json = r#"{"eventId":100,"subscriptionId":2001,"portalId":62515,"appId":54321,
            "occurredAt":1704067199000,"subscriptionType":"company.propertyChange",
            "attemptNumber":0,"objectId":901,"propertyName":"name","propertyValue":"X",
            "changeSource":"CRM_UI"}"#;
        let event: ChangeEvent = serde_json::from_str::<WebhookEvent>(json)
            .expect("parse")
            .into();
        assert_eq!(event.entity, Entity::Customer);
        assert_eq!(event.object_id, "901");
        assert_eq!(event.event_id, "100");
        assert_eq!(event.account_id, "62515");
        assert_eq!(event.occurred_at_ms, 1_704_067_199_000);
        assert_eq!(event.change_source.as_deref(), Some("CRM_UI"));
        assert_eq!(event.source, "hubspot");
    }

    #[test]
    fn a_merge_is_the_surviving_records_change_with_every_other_record_merged() {
        let old: WebhookEvent = serde_json::from_value(json!({"eventId": 5, "portalId": 62515,
            "occurredAt": 1, "subscriptionType": "company.merge", "objectId": 901,
            "primaryObjectId": 901, "mergedObjectIds": [902]}))
        .expect("event");
        let event = ChangeEvent::from(old);
        assert_eq!(
            (event.object_id.as_str(), event.merged_ids),
            ("901", vec!["902".to_owned()])
        );
        let new: WebhookEvent = serde_json::from_value(json!({"eventId": 6, "portalId": 62515,
            "occurredAt": 1, "subscriptionType": "company.merge", "objectId": 901,
            "primaryObjectId": 901, "mergedObjectIds": [902], "newObjectId": 950}))
        .expect("event");
        let event = ChangeEvent::from(new);
        assert_eq!(event.object_id, "950");
        assert_eq!(event.merged_ids, ["901", "902"]);
    }

    #[test]
    fn subscription_types_route_by_object() {
        assert_eq!(entity_of("company.creation"), Entity::Customer);
        assert_eq!(entity_of("deal.propertyChange"), Entity::Deal);
        assert_eq!(entity_of("object.creation"), Entity::Other);
        assert_eq!(entity_of("garbage"), Entity::Other);
    }

    use crate::mapping::customer::{CustomerRules, to_customer};
    use serde_json::json;

    fn object(json: Value) -> CrmObject {
        serde_json::from_value(json).expect("a CRM object")
    }

    fn failed(rejection: &Rejection) -> Vec<&str> {
        rejection
            .fields()
            .iter()
            .map(|e| e.field.as_str())
            .collect()
    }

    fn config() -> HubSpotConfig {
        HubSpotConfig {
            base_url: "https://api.hubapi.com".into(),
            tax_id_property: "nit".into(),
            email_property: "billing_email".into(),
            erp_ref_property: "puente_erp_ref".into(),
            credit_limit_property: "puente_credit_limit".into(),
            payment_terms_property: "puente_payment_terms".into(),
        }
    }

    fn andina() -> Customer {
        let fields = CustomerFields {
            kind: None,
            name: Some("Distribuidora Andina SAS".into()),
            tax_id: Some("900.123.456-8".into()),
            email: Some("Compras@Andina.co".into()),
            phone: Some("601 234 5678".into()),
            street: Some("Cra 7 # 71-21".into()),
            city: Some("Bogotá".into()),
            country: Some("Colombia".into()),
            ..CustomerFields::default()
        };
        to_customer(&fields, &CustomerRules::default()).expect("valid customer")
    }

    fn cop(minor: i64) -> Money {
        Money::from_minor(minor, Currency::COP)
    }

    fn date(y: u16, m: u8, d: u8) -> Date {
        Date::from_ymd(y, m, d).expect("date")
    }

    #[test]
    fn a_customer_becomes_company_properties_with_the_configured_names() {
        let properties = company_properties(&andina(), &config());
        assert_eq!(
            Value::Object(properties),
            json!({
                "name": "Distribuidora Andina SAS",
                "phone": "+576012345678",
                "address": "Cra 7 # 71-21",
                "city": "Bogotá",
                "country": "CO",
                "nit": "900123456-8",
                "billing_email": "compras@andina.co",
            })
        );
    }

    #[test]
    fn company_properties_leave_out_fields_without_a_value() {
        let customer = Customer {
            tax_id: None,
            email: None,
            phone: None,
            address: Default::default(),
            ..andina()
        };
        let properties = company_properties(&customer, &config());
        assert_eq!(
            Value::Object(properties),
            json!({"name": "Distribuidora Andina SAS"})
        );
    }

    #[test]
    fn a_customer_round_trips_through_company_properties() {
        let customer = andina();
        let properties = company_properties(&customer, &config());
        let back = CrmObject::from_properties("901", &properties).company_fields(&config());
        assert_eq!(
            to_customer(&back, &CustomerRules::default()).expect("valid"),
            customer
        );
    }

    #[test]
    fn contacts_are_read_from_hubspot_payloads() {
        let ana = |first: Option<&str>, last: &str| Contact {
            first_name: first.map(str::to_owned),
            last_name: last.to_owned(),
            email: None,
            phone: None,
            job_title: None,
            company: None,
        };
        let cases: Vec<(Value, Contact)> = vec![
            (
                json!({"id": "51", "properties": {
                    "firstname": "Ana María", "lastname": " Gómez ", "email": "Ana@Andina.co",
                    "phone": "300 123 4567", "mobilephone": null, "jobtitle": "Compras",
                    "company": "Andina", "associatedcompanyid": "901"}}),
                Contact {
                    email: Some(Email::parse("ana@andina.co").expect("email")),
                    phone: Some(Phone::parse("+573001234567", None).expect("phone")),
                    job_title: Some("Compras".into()),
                    company: Some(CompanyRef::Crm(CrmId::parse("901").expect("id"))),
                    ..ana(Some("Ana María"), "Gómez")
                },
            ),
            (
                json!({"id": "52", "properties": {"firstname": "Ana", "lastname": null}}),
                ana(None, "Ana"),
            ),
            (
                json!({"id": "53", "properties": {
                    "lastname": "Gómez", "phone": "", "mobilephone": "+56 9 6123 4567"}}),
                Contact {
                    phone: Some(Phone::parse("+56961234567", None).expect("phone")),
                    ..ana(None, "Gómez")
                },
            ),
            (
                json!({"id": "54", "properties": {"lastname": "Gómez"},
                    "associations": {"companies": {"results": [
                        {"id": "902", "type": "contact_to_company"}]}}}),
                Contact {
                    company: Some(CompanyRef::Crm(CrmId::parse("902").expect("id"))),
                    ..ana(None, "Gómez")
                },
            ),
        ];
        for (payload, expected) in cases {
            let contact = object(payload.clone()).contact(Some(Country::CO));
            assert_eq!(contact, Ok(expected), "{payload}");
        }
    }

    #[test]
    fn a_contact_lists_every_failing_property_without_its_value() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"id": "1", "properties": {}}), vec!["lastname"]),
            (
                json!({"id": "2", "properties": {"firstname": " ", "lastname": null}}),
                vec!["lastname"],
            ),
            (
                json!({"id": "3", "properties": {
                    "lastname": "Gómez", "email": "ana@@andina.co", "phone": "abc",
                    "associatedcompanyid": " "}}),
                vec!["email", "phone"],
            ),
            (
                json!({"id": "4", "properties": {
                    "lastname": "x".repeat(256), "mobilephone": "123"}}),
                vec!["lastname", "mobilephone"],
            ),
        ];
        for (payload, fields) in cases {
            let rejection = object(payload.clone())
                .contact(Some(Country::CO))
                .expect_err("invalid");
            assert_eq!(failed(&rejection), fields, "{payload}");
            let text = rejection.to_string();
            assert!(!text.contains("andina") && !text.contains("abc"), "{text}");
        }
    }

    #[test]
    fn a_contact_round_trips_through_its_properties() {
        let contact = Contact {
            first_name: Some("Ana María".into()),
            last_name: "Gómez".into(),
            email: Some(Email::parse("ana@andina.co").expect("email")),
            phone: Some(Phone::parse("+573001234567", None).expect("phone")),
            job_title: Some("Jefe de compras".into()),
            company: Some(CompanyRef::Crm(CrmId::parse("901").expect("id"))),
        };
        let properties = contact_properties(&contact);
        assert_eq!(properties.len(), 6);
        let back = CrmObject::from_properties("51", &properties).contact(None);
        assert_eq!(back, Ok(contact));

        let bare = Contact {
            first_name: None,
            last_name: "Gómez".into(),
            email: None,
            phone: None,
            job_title: None,
            company: Some(CompanyRef::Erp(
                crate::domain::ErpId::parse("7").expect("id"),
            )),
        };
        let properties = contact_properties(&bare);
        assert_eq!(Value::Object(properties), json!({"lastname": "Gómez"}));
    }

    #[test]
    fn deals_are_read_with_their_currency_and_close_date() {
        let bogota = DealRules {
            default_currency: Currency::COP,
            close_date_offset: ZoneOffset::from_hours_minutes(-5, 0).expect("offset"),
        };
        let usd = |minor| Money::from_minor(minor, Currency::USD);
        let cases: Vec<(Value, DealRules, Option<Money>, Option<Date>)> = vec![
            (
                json!({"dealname": "Licencias Andina 2025", "amount": "1000000",
                    "dealstage": "closedwon", "closedate": "2025-03-14T00:00:00Z",
                    "deal_currency_code": "COP", "hs_lastmodifieddate": "2025-03-14T16:02:11.356Z"}),
                DealRules::default(),
                Some(cop(100_000_000)),
                Some(date(2025, 3, 14)),
            ),
            (
                json!({"dealname": "Soporte", "amount": "1500.5", "dealstage": "closedwon",
                    "deal_currency_code": "USD", "closedate": null}),
                DealRules::default(),
                Some(usd(150_050)),
                None,
            ),
            (
                json!({"dealname": "Soporte", "amount": "", "dealstage": "closedwon",
                    "closedate": "2025-03-15T03:00:00Z"}),
                bogota,
                None,
                Some(date(2025, 3, 14)),
            ),
            (
                json!({"dealname": "Soporte", "amount": "2500", "dealstage": "closedwon",
                    "closedate": "2025-03-15"}),
                DealRules {
                    default_currency: Currency::CLP,
                    ..bogota
                },
                Some(Money::from_minor(2_500, Currency::CLP)),
                Some(date(2025, 3, 15)),
            ),
        ];
        for (properties, rules, amount, close_date) in cases {
            let deal = object(json!({"id": "5512", "properties": properties}))
                .deal_summary(&rules)
                .expect("valid deal");
            assert_eq!(deal.id.as_str(), "5512");
            assert_eq!(deal.stage, "closedwon");
            assert_eq!((deal.amount, deal.close_date), (amount, close_date));
        }
    }

    #[test]
    fn a_deal_lists_every_failing_property() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({}), vec!["dealname", "dealstage"]),
            (
                json!({"dealname": "X", "dealstage": "s", "amount": "1500.505",
                    "deal_currency_code": "USD"}),
                vec!["amount"],
            ),
            (
                json!({"dealname": "X", "dealstage": "s", "amount": "1500.5",
                    "deal_currency_code": "CLP", "closedate": "14/03/2025"}),
                vec!["amount", "closedate"],
            ),
            (
                json!({"dealname": "X", "dealstage": "s", "amount": "1,500",
                    "deal_currency_code": "XXX"}),
                vec!["deal_currency_code"],
            ),
            (
                json!({"dealname": "X", "dealstage": "s", "amount": "1,500"}),
                vec!["amount"],
            ),
        ];
        for (properties, fields) in cases {
            let rejection = object(json!({"id": "5512", "properties": properties}))
                .deal_summary(&DealRules::default())
                .expect_err("invalid");
            assert_eq!(failed(&rejection), fields, "{rejection}");
        }
        let clp = object(json!({"id": "1", "properties": {
            "dealname": "X", "dealstage": "s", "amount": "1500.5", "deal_currency_code": "CLP"}}))
        .deal_summary(&DealRules::default())
        .expect_err("CLP has no decimals");
        assert_eq!(
            clp.to_string(),
            "amount: has 1 decimals but CLP allows none"
        );
    }

    #[test]
    fn a_deal_takes_its_company_from_the_associations() {
        let deal = object(json!({"id": "5512",
            "properties": {"dealname": "X", "dealstage": "s"},
            "associations": {"companies": {"results": [{"id": "901", "type": "deal_to_company"}]}}}))
        .deal_summary(&DealRules::default())
        .expect("valid");
        assert_eq!(deal.company.map(String::from).as_deref(), Some("901"));
    }

    #[test]
    fn the_last_modified_date_is_read_for_changed_since_windows() {
        let modified = |properties: Value| {
            object(json!({"id": "1", "properties": properties})).last_modified()
        };
        assert_eq!(
            modified(json!({"hs_lastmodifieddate": "2025-03-14T16:02:11.356Z"}))
                .expect("valid")
                .map(Timestamp::epoch_millis),
            Some(1_741_968_131_356)
        );
        assert_eq!(
            modified(json!({"lastmodifieddate": "1741968000000"}))
                .expect("valid")
                .map(Timestamp::epoch_millis),
            Some(1_741_968_000_000)
        );
        assert_eq!(modified(json!({})), Ok(None));
        assert!(modified(json!({"hs_lastmodifieddate": "yesterday"})).is_err());
    }

    fn line_item(properties: Value) -> CrmObject {
        object(json!({"id": "777", "properties": properties}))
    }

    #[test]
    fn line_items_become_invoice_lines() {
        let cases: Vec<(Value, InvoiceLine)> = vec![
            (
                json!({"name": "Licencia anual ERP", "quantity": "2", "price": "500000",
                    "amount": "1000000.00", "hs_product_id": "1234", "hs_sku": "LIC-ERP",
                    "discount": null, "hs_discount_percentage": null, "hs_tax_rate": "19"}),
                InvoiceLine {
                    sku: Some(Sku::parse("LIC-ERP").expect("sku")),
                    description: "Licencia anual ERP".into(),
                    quantity: Quantity::from_units(2),
                    unit_price: cop(50_000_000),
                    discount: Rate::ZERO,
                    taxes: vec![Rate::from_percent(19)],
                },
            ),
            (
                json!({"name": "Soporte", "quantity": "3", "price": "333.33",
                    "hs_discount_percentage": "10", "amount": "899.99"}),
                InvoiceLine {
                    sku: None,
                    description: "Soporte".into(),
                    quantity: Quantity::from_units(3),
                    unit_price: cop(33_333),
                    discount: Rate::from_percent(10),
                    taxes: vec![],
                },
            ),
            (
                json!({"name": "Horas", "quantity": "1.5", "price": "200", "discount": "50"}),
                InvoiceLine {
                    sku: None,
                    description: "Horas".into(),
                    quantity: Quantity::from_micros(1_500_000),
                    unit_price: cop(20_000),
                    discount: Rate::from_percent(25),
                    taxes: vec![],
                },
            ),
            (
                json!({"name": "Horas", "quantity": "1", "price": "30000", "discount": "1.23"}),
                InvoiceLine {
                    sku: None,
                    description: "Horas".into(),
                    quantity: Quantity::ONE,
                    unit_price: cop(3_000_000),
                    // 1.23 of 30 000 is 0.0041%, exact at a rate's precision.
                    discount: Rate::from_millionths(41),
                    taxes: vec![],
                },
            ),
            (
                json!({"name": "Horas", "quantity": "1", "price": "200", "discount": "0",
                    "hs_discount_percentage": "0"}),
                InvoiceLine {
                    sku: None,
                    description: "Horas".into(),
                    quantity: Quantity::ONE,
                    unit_price: cop(20_000),
                    discount: Rate::ZERO,
                    taxes: vec![],
                },
            ),
        ];
        for (properties, expected) in cases {
            let line = line_item(properties.clone()).invoice_line(Currency::COP);
            assert_eq!(line, Ok(expected), "{properties}");
        }
    }

    #[test]
    fn a_line_item_lists_every_failing_property() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({}), vec!["name", "quantity", "price"]),
            (
                json!({"name": "X", "quantity": "1.1234567", "price": "10.001"}),
                vec!["quantity", "price"],
            ),
            (
                json!({"name": "X", "quantity": "1", "price": "10",
                    "discount": "1", "hs_discount_percentage": "5"}),
                vec!["discount"],
            ),
            (
                json!({"name": "X", "quantity": "1", "price": "3", "discount": "1"}),
                vec!["discount"],
            ),
            (
                json!({"name": "X", "quantity": "1", "price": "10",
                    "hs_discount_percentage": "120"}),
                vec!["hs_discount_percentage"],
            ),
            (
                json!({"name": "X", "quantity": "2", "price": "10", "amount": "25"}),
                vec!["amount"],
            ),
            (
                json!({"name": "X", "quantity": "1", "price": "10", "hs_tax_rate": "diez",
                    "hs_sku": " "}),
                vec!["hs_tax_rate"],
            ),
        ];
        for (properties, fields) in cases {
            let rejection = line_item(properties.clone())
                .invoice_line(Currency::COP)
                .expect_err("invalid");
            assert_eq!(failed(&rejection), fields, "{properties}: {rejection}");
        }
    }

    fn status() -> InvoiceStatus {
        InvoiceStatus {
            invoice_number: "FE-1024".into(),
            invoiced: cop(119_000_000),
            outstanding: cop(19_000_050),
            due_date: Some(date(2025, 4, 13)),
            state: PaymentState::Partial,
        }
    }

    #[test]
    fn an_invoice_status_becomes_deal_properties() {
        let properties =
            invoice_status_properties(&status(), date(2025, 4, 14), &DealProperties::default())
                .expect("one currency");
        assert_eq!(
            Value::Object(properties),
            json!({
                "erp_invoice_number": "FE-1024",
                "erp_amount_invoiced": "1190000.00",
                "erp_amount_paid": "999999.50",
                "erp_amount_outstanding": "190000.50",
                "erp_due_date": "2025-04-13",
                "erp_payment_state": "partial",
                "erp_overdue": "true",
            })
        );
        let paid = InvoiceStatus {
            outstanding: cop(0),
            due_date: None,
            state: PaymentState::Paid,
            ..status()
        };
        let names = DealProperties {
            overdue: "factura_vencida".into(),
            ..DealProperties::default()
        };
        let properties =
            invoice_status_properties(&paid, date(2025, 4, 14), &names).expect("one currency");
        assert_eq!(properties.get("factura_vencida"), Some(&json!("false")));
        assert!(!properties.contains_key("erp_due_date"));
        assert!(!properties.contains_key("erp_overdue"));
    }

    #[test]
    fn an_invoice_status_in_two_currencies_is_an_error() {
        let mixed = InvoiceStatus {
            outstanding: Money::from_minor(1, Currency::USD),
            ..status()
        };
        assert!(
            invoice_status_properties(&mixed, date(2025, 4, 14), &DealProperties::default())
                .is_err()
        );
    }

    #[test]
    fn an_invoice_status_round_trips_through_deal_properties() {
        let names = DealProperties::default();
        let clp = InvoiceStatus {
            invoiced: Money::from_minor(1_190_000, Currency::CLP),
            outstanding: Money::from_minor(0, Currency::CLP),
            due_date: None,
            state: PaymentState::Paid,
            ..status()
        };
        for (original, currency) in [(status(), Currency::COP), (clp, Currency::CLP)] {
            let properties = invoice_status_properties(&original, date(2025, 4, 1), &names)
                .expect("one currency");
            let back = CrmObject::from_properties("5512", &properties)
                .invoice_status(&names, currency)
                .expect("valid");
            assert_eq!(back, original);
        }
    }

    #[test]
    fn an_inconsistent_invoice_status_is_rejected() {
        let names = DealProperties::default();
        let deal = object(json!({"id": "5512", "properties": {
            "erp_invoice_number": "FE-1", "erp_amount_invoiced": "100.00",
            "erp_amount_outstanding": "40.00", "erp_amount_paid": "50.00",
            "erp_payment_state": "partially", "erp_due_date": "13/04/2025"}}));
        let rejection = deal
            .invoice_status(&names, Currency::COP)
            .expect_err("invalid");
        assert_eq!(
            failed(&rejection),
            ["erp_due_date", "erp_payment_state", "erp_amount_paid"]
        );
        let empty = object(json!({"id": "5512", "properties": {}}))
            .invoice_status(&names, Currency::COP)
            .expect_err("invalid");
        assert_eq!(
            failed(&empty),
            [
                "erp_amount_invoiced",
                "erp_amount_outstanding",
                "erp_invoice_number",
                "erp_payment_state"
            ]
        );
    }

    #[test]
    fn search_pages_carry_the_next_cursor() {
        let page: Page<CrmObject> = serde_json::from_str(
            r#"{"total": 2, "results": [{"id": "5512", "properties": {"dealname": "Licencias Andina 2025",
            "amount": "1000000", "hs_object_id": "5512"}, "createdAt": "2025-02-01T12:00:00.000Z",
            "updatedAt": "2025-03-14T16:02:11.356Z", "archived": false}],
            "paging": {"next": {"after": "1", "link": "https://api.hubapi.com/x?after=1"}}}"#,
        )
        .expect("a page");
        assert_eq!(page.total, Some(2));
        assert_eq!(page.results.len(), 1);
        assert_eq!(page.next_after(), Some("1"));
        let last: Page<CrmObject> =
            serde_json::from_str(r#"{"results": []}"#).expect("a last page");
        assert_eq!(last.next_after(), None);
    }

    #[test]
    fn batch_responses_and_error_bodies_are_read() {
        let batch: BatchResponse<CrmObject> = serde_json::from_str(
            r#"{"status": "COMPLETE", "results": [{"id": "901", "properties": {"name": null}}],
            "numErrors": 1, "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some COMPANY objects", "context": {"ids": ["902"]}}],
            "startedAt": "2025-03-14T16:02:11.356Z", "completedAt": "2025-03-14T16:02:11.400Z"}"#,
        )
        .expect("a batch");
        assert_eq!(batch.status.as_deref(), Some("COMPLETE"));
        assert_eq!(batch.results[0].properties.get("name"), Some(&None));
        assert_eq!(
            batch.errors[0].context.get("ids"),
            Some(&vec!["902".to_owned()])
        );

        let error: ErrorBody = serde_json::from_str(
            r#"{"status": "error", "message": "Property values were not valid",
            "correlationId": "3a1f0c54-6a0b-4d2f-9c1e-9d1f3e6b2a77", "category": "VALIDATION_ERROR",
            "subCategory": "x", "errors": [{"message": "Email address is invalid",
            "code": "INVALID_EMAIL", "in": "email", "context": {}}],
            "links": {"knowledge-base": "https://example.com"}}"#,
        )
        .expect("an error body");
        assert_eq!(error.category.as_deref(), Some("VALIDATION_ERROR"));
        assert_eq!(
            error.correlation_id.as_deref(),
            Some("3a1f0c54-6a0b-4d2f-9c1e-9d1f3e6b2a77")
        );
        assert_eq!(error.errors[0].code.as_deref(), Some("INVALID_EMAIL"));
        assert_eq!(error.errors[0].location.as_deref(), Some("email"));
        let sparse: ErrorBody = serde_json::from_str("{}").expect("every field is optional");
        assert!(sparse.errors.is_empty());
    }
}
