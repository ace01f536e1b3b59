//! SAP Business One Service Layer JSON shapes, with SAP's field names (`BusinessPartners`,
//! `Invoices`, `IncomingPayments`, `Items`, the OData collection envelope and the error body),
//! and the pure conversions between them and the canonical model.
//!
//! Amounts: SAP sends JSON numbers (`1190000.0`). Each is read with `Money::from_json` in the
//! document's currency (`DocCurrency`; an item price's `Currency`), so a float that is not
//! within noise of the currency's minor unit is a rejection, never a silent rounding. SAP keeps
//! document totals in the company's local currency (`DocTotal`, `VatSum`, `PaidToDate`,
//! `SumApplied`) and repeats them in the document currency (`DocTotalFc`, `VatSumFc`,
//! `PaidToDateFC`, `AppliedFC`, standard DI API names, UNCONFIRMED for the Service Layer) when
//! the two differ, so the readers take the company's local currency and read the fields that
//! are in the document currency. Amounts written go out as JSON numbers computed from the exact
//! minor units (the float nearest the decimal, which serde_json prints as that decimal).
//!
//! Dates: `DocDate`-like fields are read with `Date::parse_iso_date_part` (`2025-03-14` in v2,
//! `2025-03-14T00:00:00Z` in v1, UNCONFIRMED): they are civil dates, so the time and zone are
//! discarded. Dates are written as `2025-03-14`.
//!
//! Rejections name SAP's fields when reading (`DocTotal`, `DocumentLines[2]...`) and the
//! canonical fields when writing (`lines[2].sku`); they never repeat a personal value.

use crate::connectors::json::required_money;
use crate::domain::datetime::TimeOfDay;
use crate::domain::invoice::{InvoiceTotals, PaymentState, SalesInvoice};
use crate::domain::payment::{InvoiceStatus, Payment};
use crate::domain::product::{Product, ProductKind};
use crate::domain::{
    Currency, Customer, Date, ErpId, FieldError, Money, Quantity, Rate, Rejection, Sku, Timestamp,
    ZoneOffset,
};
use crate::mapping::customer::CustomerFields;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const YES: &str = "tYES";
const NO: &str = "tNO";

// ---------------------------------------------------------------------------------------------
// OData envelope and error body
// ---------------------------------------------------------------------------------------------

/// A page of an entity set: `{"value": [...], "odata.nextLink": "BusinessPartners?$skip=20"}`.
/// v1 names the next link `odata.nextLink`, v2 `@odata.nextLink`; both are read. The link is
/// relative to the service root and absent on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection<T> {
    pub value: Vec<T>,
    #[serde(
        rename = "odata.nextLink",
        alias = "@odata.nextLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_link: Option<String>,
}

/// The Service Layer's error body: `{"error":{"code":301,"message":{"lang":"en-us","value":..}}}`.
/// Some versions and gateways send `code` as a string and `message` as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: ErrorMessage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorCode {
    Number(i64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorMessage {
    Localized {
        #[serde(default)]
        lang: String,
        value: String,
    },
    Plain(String),
}

impl ErrorBody {
    /// The code as a number, whether SAP sent `301` or `"301"`.
    pub fn code_number(&self) -> Option<i64> {
        match &self.error.code {
            ErrorCode::Number(n) => Some(*n),
            ErrorCode::Text(text) => text.trim().parse().ok(),
        }
    }

    /// The message text, in whatever language the session uses. It may quote record values
    /// (codes, names): mask it before logging.
    pub fn message(&self) -> &str {
        match &self.error.message {
            ErrorMessage::Localized { value, .. } => value,
            ErrorMessage::Plain(text) => text,
        }
    }

    /// Code 301, "Invalid session or session already timeout." (sent with HTTP 401): log in
    /// again, then replay the request once.
    pub fn is_invalid_session(&self) -> bool {
        self.code_number() == Some(301)
    }
}

// ---------------------------------------------------------------------------------------------
// Field readers shared by the entities
// ---------------------------------------------------------------------------------------------

/// The text of an optional field, `None` when absent, null or blank.
fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A `tYES`/`tNO` field; absent means `None`.
fn yes_no(value: &Option<String>, field: &str, errors: &mut Vec<FieldError>) -> Option<bool> {
    match text(value) {
        None => None,
        Some(YES) => Some(true),
        Some(NO) => Some(false),
        Some(_) => {
            errors.push(FieldError::new(field, "is neither tYES nor tNO"));
            None
        }
    }
}

fn required_text<'a>(
    value: &'a Option<String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    let found = text(value);
    if found.is_none() {
        errors.push(FieldError::new(field, "is required"));
    }
    found
}

/// A key SAP sends as a number (`DocEntry`) or a string (`CardCode`).
fn required_id(value: &Option<Value>, field: &str, errors: &mut Vec<FieldError>) -> Option<ErpId> {
    let raw = match value {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            errors.push(FieldError::new(field, "is required"));
            return None;
        }
        Some(_) => {
            errors.push(FieldError::new(field, "is not an integer or a text key"));
            return None;
        }
    };
    ErpId::parse(&raw)
        .map_err(|e| errors.push(FieldError::new(field, e.to_string())))
        .ok()
}

/// A civil date, `2025-03-14` or `2025-03-14T00:00:00Z`; absent means `None`.
fn optional_date(
    value: &Option<String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Date> {
    text(value).and_then(|raw| {
        Date::parse_iso_date_part(raw)
            .map_err(|e| errors.push(FieldError::new(field, e.to_string())))
            .ok()
    })
}

fn required_date(
    value: &Option<String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Date> {
    if text(value).is_none() {
        errors.push(FieldError::new(field, "is required"));
        return None;
    }
    optional_date(value, field, errors)
}

fn required_currency(
    value: &Option<String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Currency> {
    required_text(value, field, errors).and_then(|code| {
        Currency::parse(code)
            .map_err(|e| errors.push(FieldError::new(field, e.to_string())))
            .ok()
    })
}

/// A JSON number for an amount: the exact minor units scaled down, i.e. the float nearest the
/// decimal (`500000.0`, `1234.56`).
fn money_number(money: Money) -> Value {
    scaled_number(money.minor(), money.currency().minor_units())
}

fn scaled_number(units: i64, digits: u32) -> Value {
    // Correctly rounded division of two exact integers gives the float nearest the decimal.
    let scale = 10f64.powi(i32::try_from(digits).unwrap_or(0));
    Value::from(units as f64 / scale)
}

/// The pair of SAP fields for one amount: local currency and document currency.
struct AmountField<'a> {
    local: (&'static str, &'a Option<Value>),
    document: (&'static str, &'a Option<Value>),
}

impl AmountField<'_> {
    /// Reads the amount in the document currency: the local-currency field when the document
    /// is in the company's local currency, the foreign-currency field otherwise.
    /// `prefix` locates the field in a collection (`PaymentInvoices[2].`).
    fn read(
        &self,
        currency: Currency,
        local: Currency,
        prefix: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<Money> {
        let (field, value) = if currency == local {
            self.local
        } else {
            self.document
        };
        required_money(
            &format!("{prefix}{field}"),
            value.as_ref(),
            currency,
            errors,
        )
    }
}

fn reject<T>(errors: Vec<FieldError>) -> Result<T, Rejection> {
    Err(Rejection(errors))
}

// ---------------------------------------------------------------------------------------------
// BusinessPartners
// ---------------------------------------------------------------------------------------------

/// `CardType` for a customer. UNCONFIRMED: `cSupplier` is seen in public code, `cCustomer` and
/// `cLid` are the standard DI API names.
pub const CARD_TYPE_CUSTOMER: &str = "cCustomer";
const CARD_TYPE_SUPPLIER: &str = "cSupplier";
const CARD_TYPE_LEAD: &str = "cLid";
/// `AddressType` of a billing address.
pub const ADDRESS_TYPE_BILL_TO: &str = "bo_BillTo";

/// What kind of business partner a record is (`CardType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardType {
    Customer,
    Supplier,
    Lead,
}

impl CardType {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            CARD_TYPE_CUSTOMER => Some(Self::Customer),
            CARD_TYPE_SUPPLIER => Some(Self::Supplier),
            CARD_TYPE_LEAD => Some(Self::Lead),
            _ => None,
        }
    }
}

/// A `BusinessPartners` entity as read and written. Fields SAP did not send, and fields puente
/// has no value for, are `None` and left out of a body: a value the source lacks never blanks
/// the ERP. User fields (`U_*`) and anything else not named here stay in `other`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BusinessPartner {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_name: Option<String>,
    /// `cCustomer`, `cSupplier` or `cLid` (see [`CARD_TYPE_CUSTOMER`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_type: Option<String>,
    /// The "foreign name"; may hold puente's reference (see [`ReferenceField`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias_name: Option<String>,
    #[serde(rename = "FederalTaxID", skip_serializing_if = "Option::is_none")]
    pub federal_tax_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone1: Option<String>,
    /// Flat default bill-to street. UNCONFIRMED (DI API name), read only as a fallback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Flat default bill-to city. UNCONFIRMED (DI API name), read only as a fallback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Flat default bill-to country code. UNCONFIRMED, read only as a fallback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(rename = "BPAddresses", default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<BpAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_date: Option<String>,
    /// `"16:02:11"`; a JSON integer `160211` is also read. Both UNCONFIRMED, as is the zone
    /// (server-local time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One entry of `BPAddresses`. `Country`, `County` and `State` are UNCONFIRMED (DI API names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BpAddress {
    /// With `AddressType`, the key SAP matches addresses on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_name: Option<String>,
    /// `bo_BillTo` or `bo_ShipTo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub county: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The business-partner field that holds puente's reference (`hubspot-company-901`): a user
/// field `U_<name>` created in the company (recommended), or `AliasName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceField(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reference field must be AliasName or a user field U_<letters, digits, _>")]
pub struct InvalidReferenceField;

impl ReferenceField {
    pub const ALIAS_NAME: &'static str = "AliasName";

    pub fn parse(name: &str) -> Result<Self, InvalidReferenceField> {
        let name = name.trim();
        let user_field = name.strip_prefix("U_").is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 50
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if name == Self::ALIAS_NAME || user_field {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidReferenceField)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How puente writes business partners in one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerLayout {
    pub reference_field: ReferenceField,
    /// `AddressName` of the bill-to address puente writes, e.g. `"Facturación"`.
    pub bill_to_name: String,
}

/// A business partner read from SAP, ready for `mapping::customer::to_customer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRecord {
    pub id: ErpId,
    pub card_type: Option<CardType>,
    pub fields: CustomerFields,
    /// puente's reference, from the layout's reference field.
    pub reference: Option<String>,
    /// `UpdateDate` + `UpdateTime` in the server's offset; midnight when `UpdateTime` is absent.
    pub updated_at: Option<Timestamp>,
    /// Not `Valid = tNO` and not `Frozen = tYES`.
    pub active: bool,
}

impl BusinessPartner {
    /// The bill-to address of `BPAddresses`: the first `bo_BillTo`, else the first address.
    fn bill_to(&self) -> Option<&BpAddress> {
        self.addresses
            .iter()
            .find(|a| text(&a.address_type) == Some(ADDRESS_TYPE_BILL_TO))
            .or_else(|| self.addresses.first())
    }

    /// The customer's fields as text. Address fields come from the bill-to entry of
    /// `BPAddresses`, each falling back to the flat `Address`, `City` and `Country`.
    pub fn customer_fields(&self) -> CustomerFields {
        let owned = |v: &Option<String>| text(v).map(str::to_owned);
        let bill_to = self.bill_to();
        let from_address = |pick: fn(&BpAddress) -> &Option<String>| {
            bill_to.and_then(|a| text(pick(a))).map(str::to_owned)
        };
        CustomerFields {
            kind: None,
            name: owned(&self.card_name),
            tax_id: owned(&self.federal_tax_id),
            email: owned(&self.email_address),
            phone: owned(&self.phone1),
            street: from_address(|a| &a.street).or_else(|| owned(&self.address)),
            city: from_address(|a| &a.city).or_else(|| owned(&self.city)),
            country: from_address(|a| &a.country).or_else(|| owned(&self.country)),
            ..CustomerFields::default()
        }
    }

    /// The value of `field` (`AliasName` or a `U_*` user field), if it has text.
    pub fn reference(&self, field: &ReferenceField) -> Option<String> {
        if field.as_str() == ReferenceField::ALIAS_NAME {
            return text(&self.alias_name).map(str::to_owned);
        }
        match self.other.get(field.as_str()) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        }
    }

    /// `UpdateDate` + `UpdateTime` as an instant, reading the wall clock in `offset` (the SAP
    /// server's). Midnight of `UpdateDate` when `UpdateTime` is absent, so a changed-since
    /// window that overlaps by a day still catches the record; `None` without `UpdateDate`.
    pub fn updated_at(&self, offset: ZoneOffset) -> Result<Option<Timestamp>, FieldError> {
        let Some(raw_date) = text(&self.update_date) else {
            return Ok(None);
        };
        let date = Date::parse_iso_date_part(raw_date)
            .map_err(|e| FieldError::new("UpdateDate", e.to_string()))?;
        let time = match &self.update_time {
            None | Some(Value::Null) => return Ok(Some(date.at_start_of_day(offset))),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Ok(Some(date.at_start_of_day(offset)));
            }
            Some(Value::String(s)) => TimeOfDay::parse_hh_mm_ss(s.trim()),
            Some(Value::Number(n)) if n.is_u64() => TimeOfDay::parse_hhmmss_digits(&n.to_string()),
            Some(_) => {
                return Err(FieldError::new(
                    "UpdateTime",
                    "is not hh:mm:ss or an hhmmss number",
                ));
            }
        }
        .map_err(|e| FieldError::new("UpdateTime", e.to_string()))?;
        date.at_time(time, offset)
            .map(Some)
            .map_err(|e| FieldError::new("UpdateTime", e.to_string()))
    }

    /// Reads the record's key, type, status, audit time and reference, listing every failing
    /// field. The customer fields themselves are validated by `mapping::customer::to_customer`.
    pub fn to_record(
        &self,
        offset: ZoneOffset,
        reference_field: &ReferenceField,
    ) -> Result<PartnerRecord, Rejection> {
        let mut errors = Vec::new();
        let id = required_id(
            &self.card_code.clone().map(Value::String),
            "CardCode",
            &mut errors,
        );
        let card_type = text(&self.card_type).and_then(|raw| {
            let parsed = CardType::parse(raw);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "CardType",
                    "is not cCustomer, cSupplier or cLid",
                ));
            }
            parsed
        });
        let valid = yes_no(&self.valid, "Valid", &mut errors);
        let frozen = yes_no(&self.frozen, "Frozen", &mut errors);
        let updated_at = self
            .updated_at(offset)
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        match id {
            Some(id) if errors.is_empty() => Ok(PartnerRecord {
                id,
                card_type,
                fields: self.customer_fields(),
                reference: self.reference(reference_field),
                updated_at,
                active: valid != Some(false) && frozen != Some(true),
            }),
            _ => reject(errors),
        }
    }

    /// The `POST /BusinessPartners` body: `card_code` chosen by the caller (e.g. derived from
    /// the CRM id), `CardType = cCustomer`, and `reference` in the layout's reference field.
    pub fn create_body(
        customer: &Customer,
        card_code: &ErpId,
        reference: &str,
        layout: &PartnerLayout,
    ) -> BusinessPartner {
        BusinessPartner {
            card_code: Some(card_code.as_str().to_owned()),
            card_type: Some(CARD_TYPE_CUSTOMER.to_owned()),
            ..Self::update_body(customer, reference, layout)
        }
    }

    /// The `PATCH /BusinessPartners('<CardCode>')` body: the create body without the key and
    /// the type. Only fields with a value are written.
    pub fn update_body(
        customer: &Customer,
        reference: &str,
        layout: &PartnerLayout,
    ) -> BusinessPartner {
        let address = &customer.address;
        let has_address =
            address.street.is_some() || address.city.is_some() || address.country.is_some();
        let mut body = BusinessPartner {
            card_name: Some(customer.name.clone()),
            federal_tax_id: customer.tax_id.as_ref().map(|t| t.storage()),
            email_address: customer.email.as_ref().map(|e| e.to_string()),
            phone1: customer.phone.as_ref().map(|p| p.to_string()),
            addresses: if has_address {
                vec![BpAddress {
                    address_name: Some(layout.bill_to_name.clone()),
                    address_type: Some(ADDRESS_TYPE_BILL_TO.to_owned()),
                    street: address.street.clone(),
                    city: address.city.clone(),
                    country: address.country.map(|c| c.code().to_owned()),
                    ..BpAddress::default()
                }]
            } else {
                Vec::new()
            },
            ..BusinessPartner::default()
        };
        let field = layout.reference_field.as_str();
        if field == ReferenceField::ALIAS_NAME {
            body.alias_name = Some(reference.to_owned());
        } else {
            body.other
                .insert(field.to_owned(), Value::String(reference.to_owned()));
        }
        body
    }
}

// ---------------------------------------------------------------------------------------------
// Invoices (marketing documents)
// ---------------------------------------------------------------------------------------------

/// The `POST /Invoices` body for a canonical sales invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvoiceBody {
    pub card_code: String,
    pub doc_date: String,
    /// Left out when the invoice has none: SAP derives it from the payment terms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_due_date: Option<String>,
    /// The ISO code. UNCONFIRMED: a company may define its own currency codes (e.g. `$`).
    pub doc_currency: String,
    /// puente's reference, the key a retry filters on before posting again.
    pub num_at_card: String,
    pub document_lines: Vec<InvoiceLineBody>,
}

/// One of `DocumentLines`. The price is `UnitPrice` (before the line discount) with
/// `DiscountPercent`; `Price` (after the discount, UNCONFIRMED) is not written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvoiceLineBody {
    pub item_code: String,
    pub item_description: String,
    pub quantity: Value,
    pub unit_price: Value,
    pub discount_percent: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<String>,
}

impl InvoiceBody {
    /// Builds the body. `tax_code` maps a line's tax rates to the company's SAP tax code (tax
    /// codes are per company, e.g. `IVA19`); it is asked for every line, taxed or not, and a
    /// line it has no code for is rejected, as is a line without a SKU (an item document needs
    /// an `ItemCode`).
    pub fn from_invoice(
        invoice: &SalesInvoice,
        tax_code: impl Fn(&[Rate]) -> Option<String>,
    ) -> Result<InvoiceBody, Rejection> {
        let mut errors = Vec::new();
        let mut lines = Vec::with_capacity(invoice.lines.len());
        for (index, line) in invoice.lines.iter().enumerate() {
            let at = index + 1;
            let Some(sku) = &line.sku else {
                errors.push(FieldError::new(
                    format!("lines[{at}].sku"),
                    "is required: an SAP item line needs an ItemCode",
                ));
                continue;
            };
            let code = tax_code(&line.taxes);
            if code.is_none() {
                let rates = line
                    .taxes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" + ");
                let rates = if rates.is_empty() {
                    "no tax".to_owned()
                } else {
                    rates
                };
                errors.push(FieldError::new(
                    format!("lines[{at}].taxes"),
                    format!("no SAP tax code is configured for {rates}"),
                ));
            }
            lines.push(InvoiceLineBody {
                item_code: sku.as_str().to_owned(),
                item_description: line.description.clone(),
                quantity: scaled_number(line.quantity.micros(), Quantity::DECIMALS),
                unit_price: money_number(line.unit_price),
                discount_percent: scaled_number(line.discount.millionths(), Rate::PERCENT_DECIMALS),
                tax_code: code,
            });
        }
        if !errors.is_empty() {
            return reject(errors);
        }
        Ok(InvoiceBody {
            card_code: invoice.customer.as_str().to_owned(),
            doc_date: invoice.issue_date.format_iso(),
            doc_due_date: invoice.due_date.map(Date::format_iso),
            doc_currency: invoice.currency.code().to_owned(),
            num_at_card: invoice.reference.clone(),
            document_lines: lines,
        })
    }
}

/// An `Invoices` entity as read (totals and status; lines are not read back).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Document {
    pub doc_entry: Option<Value>,
    pub doc_num: Option<Value>,
    pub card_code: Option<String>,
    pub num_at_card: Option<String>,
    pub doc_date: Option<String>,
    pub doc_due_date: Option<String>,
    pub doc_currency: Option<String>,
    /// Local currency. The `…Fc`/`…FC` fields are in the document currency (UNCONFIRMED names).
    pub doc_total: Option<Value>,
    pub doc_total_fc: Option<Value>,
    /// UNCONFIRMED.
    pub vat_sum: Option<Value>,
    pub vat_sum_fc: Option<Value>,
    /// UNCONFIRMED.
    #[serde(rename = "PaidToDate")]
    pub paid_to_date: Option<Value>,
    #[serde(rename = "PaidToDateFC")]
    pub paid_to_date_fc: Option<Value>,
    /// `bost_Open` or `bost_Close`. UNCONFIRMED.
    pub document_status: Option<String>,
    /// `tYES` or `tNO`.
    pub cancelled: Option<String>,
}

const DOCUMENT_OPEN: &str = "bost_Open";
const DOCUMENT_CLOSED: &str = "bost_Close";

impl Document {
    fn total(&self) -> AmountField<'_> {
        AmountField {
            local: ("DocTotal", &self.doc_total),
            document: ("DocTotalFc", &self.doc_total_fc),
        }
    }

    fn vat(&self) -> AmountField<'_> {
        AmountField {
            local: ("VatSum", &self.vat_sum),
            document: ("VatSumFc", &self.vat_sum_fc),
        }
    }

    fn paid(&self) -> AmountField<'_> {
        AmountField {
            local: ("PaidToDate", &self.paid_to_date),
            document: ("PaidToDateFC", &self.paid_to_date_fc),
        }
    }

    /// What SAP says the invoice adds up to, in `DocCurrency`: `DocTotal`, `VatSum`, and the
    /// untaxed amount derived as their difference (so it also holds freight and rounding, if
    /// the document has them). `local` is the company's local currency.
    pub fn totals(&self, local: Currency) -> Result<InvoiceTotals, Rejection> {
        let mut errors = Vec::new();
        let currency = required_currency(&self.doc_currency, "DocCurrency", &mut errors);
        let (total, tax) = match currency {
            Some(c) => (
                self.total().read(c, local, "", &mut errors),
                self.vat().read(c, local, "", &mut errors),
            ),
            None => (None, None),
        };
        match (total, tax) {
            (Some(total), Some(tax)) if errors.is_empty() => match total.checked_sub(tax) {
                Ok(untaxed) => Ok(InvoiceTotals {
                    untaxed,
                    tax,
                    total,
                }),
                Err(e) => reject(vec![FieldError::new("VatSum", e.to_string())]),
            },
            _ => reject(errors),
        }
    }

    /// Where the invoice stands: `DocNum`, `DocTotal`, outstanding `DocTotal - PaidToDate`,
    /// `DocDueDate`. The state is `Reversed` when `Cancelled = tYES` or when the document is
    /// closed with an amount still outstanding (closed by a credit note or by hand, an
    /// interpretation to confirm); otherwise it follows the amounts. A reversed invoice owes
    /// nothing.
    pub fn status(&self, local: Currency) -> Result<InvoiceStatus, Rejection> {
        let mut errors = Vec::new();
        let number = match &self.doc_num {
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => {
                errors.push(FieldError::new("DocNum", "is required"));
                None
            }
        };
        let currency = required_currency(&self.doc_currency, "DocCurrency", &mut errors);
        let (total, paid) = match currency {
            Some(c) => (
                self.total().read(c, local, "", &mut errors),
                self.paid().read(c, local, "", &mut errors),
            ),
            None => (None, None),
        };
        let due_date = optional_date(&self.doc_due_date, "DocDueDate", &mut errors);
        let cancelled = yes_no(&self.cancelled, "Cancelled", &mut errors);
        let closed = match text(&self.document_status) {
            None | Some(DOCUMENT_OPEN) => false,
            Some(DOCUMENT_CLOSED) => true,
            Some(_) => {
                errors.push(FieldError::new(
                    "DocumentStatus",
                    "is neither bost_Open nor bost_Close",
                ));
                false
            }
        };
        let (Some(number), Some(total), Some(paid)) = (number, total, paid) else {
            return reject(errors);
        };
        if !errors.is_empty() {
            return reject(errors);
        }
        let outstanding = total
            .checked_sub(paid)
            .map_err(|e| Rejection(vec![FieldError::new("PaidToDate", e.to_string())]))?;
        let owes = outstanding.minor() > 0;
        let state = if cancelled == Some(true) || (closed && owes) {
            PaymentState::Reversed
        } else if !owes {
            PaymentState::Paid
        } else if paid.minor() > 0 {
            PaymentState::Partial
        } else {
            PaymentState::NotPaid
        };
        Ok(InvoiceStatus {
            invoice_number: number,
            invoiced: total,
            outstanding: if state == PaymentState::Reversed {
                Money::zero(total.currency())
            } else {
                outstanding
            },
            due_date,
            state,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// IncomingPayments
// ---------------------------------------------------------------------------------------------

/// An `IncomingPayments` entity as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncomingPayment {
    pub doc_entry: Option<Value>,
    pub doc_num: Option<Value>,
    /// `rCustomer` for a customer receipt.
    pub doc_type: Option<String>,
    pub card_code: Option<String>,
    pub doc_date: Option<String>,
    pub doc_currency: Option<String>,
    /// UNCONFIRMED name.
    pub cash_sum: Option<Value>,
    pub transfer_sum: Option<Value>,
    pub transfer_reference: Option<String>,
    /// UNCONFIRMED name.
    pub counter_reference: Option<String>,
    pub cancelled: Option<String>,
    #[serde(default)]
    pub payment_invoices: Vec<PaymentInvoice>,
}

/// One of `PaymentInvoices`: an invoice (or credit note) the payment is applied to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentInvoice {
    pub line_num: Option<Value>,
    /// The invoice's `DocEntry`.
    pub doc_entry: Option<Value>,
    /// Local currency.
    pub sum_applied: Option<Value>,
    /// Document currency. UNCONFIRMED name (DI API).
    #[serde(rename = "AppliedFC")]
    pub applied_fc: Option<Value>,
    /// `it_Invoice` or `it_CredItnote`.
    pub invoice_type: Option<String>,
}

const INVOICE_TYPE_INVOICE: &str = "it_Invoice";

impl IncomingPayment {
    /// `Cancelled = tYES`: the payment no longer counts.
    pub fn is_cancelled(&self) -> bool {
        text(&self.cancelled) == Some(YES)
    }

    /// One canonical payment per invoice the receipt is applied to (`PaymentInvoices` lines of
    /// type `it_Invoice`, or without a type): the id is the receipt's `DocEntry`, the amount
    /// its `SumApplied` (`AppliedFC` when `DocCurrency` is not `local`), the date `DocDate`, the
    /// reference `CounterReference`, else `TransferReference`. Credit-note lines are skipped; a
    /// receipt on account gives none. Check `is_cancelled` before counting them.
    pub fn to_payments(&self, local: Currency) -> Result<Vec<Payment>, Rejection> {
        let mut errors = Vec::new();
        let id = required_id(&self.doc_entry, "DocEntry", &mut errors);
        let date = required_date(&self.doc_date, "DocDate", &mut errors);
        let currency = required_currency(&self.doc_currency, "DocCurrency", &mut errors);
        yes_no(&self.cancelled, "Cancelled", &mut errors);
        let reference = text(&self.counter_reference)
            .or_else(|| text(&self.transfer_reference))
            .map(str::to_owned);
        let mut applied = Vec::new();
        for (index, line) in self.payment_invoices.iter().enumerate() {
            let is_invoice = match text(&line.invoice_type) {
                None | Some(INVOICE_TYPE_INVOICE) => true,
                Some(_) => false,
            };
            if !is_invoice {
                continue;
            }
            let at = |field: &str| format!("PaymentInvoices[{}].{field}", index + 1);
            let invoice = required_id(&line.doc_entry, &at("DocEntry"), &mut errors);
            let amount = currency.and_then(|c| {
                AmountField {
                    local: ("SumApplied", &line.sum_applied),
                    document: ("AppliedFC", &line.applied_fc),
                }
                .read(c, local, &at(""), &mut errors)
            });
            applied.push((invoice, amount));
        }
        let (Some(id), Some(date)) = (id, date) else {
            return reject(errors);
        };
        if !errors.is_empty() {
            return reject(errors);
        }
        Ok(applied
            .into_iter()
            .filter_map(|(invoice, amount)| {
                Some(Payment {
                    id: id.clone(),
                    invoice: invoice?,
                    amount: amount?,
                    date,
                    reference: reference.clone(),
                })
            })
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Items
// ---------------------------------------------------------------------------------------------

/// An `Items` entity as read. None of these names is in the reference's field tables: they are
/// the standard DI API names, UNCONFIRMED for the Service Layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Item {
    pub item_code: Option<String>,
    pub item_name: Option<String>,
    /// `itItems`, `itLabor`, `itTravel` or `itFixedAssets`.
    pub item_type: Option<String>,
    /// `tYES` when the item can be sold.
    pub sales_item: Option<String>,
    pub valid: Option<String>,
    pub frozen: Option<String>,
    #[serde(default)]
    pub item_prices: Vec<ItemPrice>,
}

/// One of `ItemPrices`: the item's price in one price list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemPrice {
    pub price_list: Option<i64>,
    pub price: Option<Value>,
    pub currency: Option<String>,
}

impl Item {
    /// The canonical product: `ItemCode` is the SKU, `ItemName` the name, `ItemType` the kind
    /// (`itItems` and `itFixedAssets` goods, `itLabor` and `itTravel` services), the price the
    /// entry of `price_list` in `ItemPrices` in that entry's `Currency`. Active unless
    /// `Valid = tNO`, `Frozen = tYES` or `SalesItem = tNO`. Taxes are left empty: SAP keeps a
    /// tax group per item, not a rate.
    pub fn to_product(&self, price_list: i64) -> Result<Product, Rejection> {
        let mut errors = Vec::new();
        let sku = required_text(&self.item_code, "ItemCode", &mut errors).and_then(|code| {
            Sku::parse(code)
                .map_err(|e| errors.push(FieldError::new("ItemCode", e.to_string())))
                .ok()
        });
        let name = required_text(&self.item_name, "ItemName", &mut errors).map(str::to_owned);
        let kind = match text(&self.item_type) {
            Some("itItems" | "itFixedAssets") => Some(ProductKind::Goods),
            Some("itLabor" | "itTravel") => Some(ProductKind::Service),
            None => {
                errors.push(FieldError::new("ItemType", "is required"));
                None
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "ItemType",
                    "is not itItems, itLabor, itTravel or itFixedAssets",
                ));
                None
            }
        };
        let sales_item = yes_no(&self.sales_item, "SalesItem", &mut errors);
        let valid = yes_no(&self.valid, "Valid", &mut errors);
        let frozen = yes_no(&self.frozen, "Frozen", &mut errors);
        let price = match self
            .item_prices
            .iter()
            .position(|p| p.price_list == Some(price_list))
        {
            None => {
                errors.push(FieldError::new(
                    "ItemPrices",
                    format!("has no entry for price list {price_list}"),
                ));
                None
            }
            Some(index) => {
                let entry = &self.item_prices[index];
                let at = |field: &str| format!("ItemPrices[{}].{field}", index + 1);
                required_currency(&entry.currency, &at("Currency"), &mut errors).and_then(|c| {
                    required_money(&at("Price"), entry.price.as_ref(), c, &mut errors)
                })
            }
        };
        match (sku, name, kind, price) {
            (Some(sku), Some(name), Some(kind), Some(list_price)) if errors.is_empty() => {
                Ok(Product {
                    sku,
                    name,
                    kind,
                    list_price,
                    taxes: Vec::new(),
                    active: valid != Some(false)
                        && frozen != Some(true)
                        && sales_item != Some(false),
                })
            }
            _ => reject(errors),
        }
    }
}

// Sample payloads below are written from the documented field names (reference §2.8); they are
// not captured from a real tenant. Names, ids and amounts are invented.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invoice::InvoiceLine;
    use crate::domain::{Address, Country, CustomerKind, Email, Phone, TaxId};
    use crate::mapping::customer::{CustomerRules, to_customer};
    use serde_json::json;

    const COP: Currency = Currency::COP;

    /// A table row's expected outcome: the value, or the fields a rejection names.
    type Expected<T, E = Vec<&'static str>> = Result<T, E>;
    /// `UpdateDate`, `UpdateTime`, the instant (RFC 3339) or the failing field.
    type TimeRow = (Value, Value, Expected<Option<&'static str>, &'static str>);
    /// Fields patched into the created invoice, local currency, (untaxed, tax, total) minor units.
    type TotalsRow = (Value, Currency, Expected<(i64, i64, i64)>);
    /// Fields patched into the item, price list, (kind, price, active).
    type ItemRow = (Value, i64, Expected<(ProductKind, Money, bool)>);

    fn cop(minor: i64) -> Money {
        Money::from_minor(minor, COP)
    }

    fn bogota() -> ZoneOffset {
        ZoneOffset::from_hours_minutes(-5, 0).expect("offset")
    }

    fn date(y: u16, m: u8, d: u8) -> Date {
        Date::from_ymd(y, m, d).expect("date")
    }

    fn u_field() -> ReferenceField {
        ReferenceField::parse("U_SYNC_EXT_ID").expect("valid field")
    }

    fn partner(value: Value) -> BusinessPartner {
        serde_json::from_value(value).expect("a BusinessPartners payload")
    }

    fn field_names(rejection: &Rejection) -> Vec<&str> {
        rejection
            .fields()
            .iter()
            .map(|e| e.field.as_str())
            .collect()
    }

    #[test]
    fn error_bodies_are_read_in_every_documented_shape() {
        let cases = [
            (
                json!({"error": {"code": 301, "message": {"lang": "en-us",
                    "value": "Invalid session or session already timeout."}}}),
                Some(301),
                "Invalid session or session already timeout.",
                true,
            ),
            (
                json!({"error": {"code": "301", "message": "Invalid session or session already timeout."}}),
                Some(301),
                "Invalid session or session already timeout.",
                true,
            ),
            (
                json!({"error": {"code": -10, "message": {"lang": "en-us", "value": "1320000126 - exists"}}}),
                Some(-10),
                "1320000126 - exists",
                false,
            ),
            (
                json!({"error": {"code": "E_ODBC", "message": "No matching records found (ODBC -2028)"}}),
                None,
                "No matching records found (ODBC -2028)",
                false,
            ),
            (
                json!({"error": {"code": -2028, "message": {"value": "No matching records found"}}}),
                Some(-2028),
                "No matching records found",
                false,
            ),
        ];
        for (body, code, message, invalid_session) in cases {
            let parsed: ErrorBody = serde_json::from_value(body.clone()).expect("error body");
            assert_eq!(parsed.code_number(), code, "{body}");
            assert_eq!(parsed.message(), message, "{body}");
            assert_eq!(parsed.is_invalid_session(), invalid_session, "{body}");
        }
    }

    #[test]
    fn collections_read_the_next_link_of_both_versions() {
        let cases = [
            (
                json!({"odata.metadata": "x", "value": [{"CardCode": "C1"}],
                       "odata.nextLink": "BusinessPartners?$skip=20"}),
                Some("BusinessPartners?$skip=20"),
            ),
            (
                json!({"@odata.context": "x", "value": [{"CardCode": "C1"}],
                       "@odata.nextLink": "BusinessPartners?$skip=20"}),
                Some("BusinessPartners?$skip=20"),
            ),
            (json!({"value": [{"CardCode": "C1"}]}), None),
        ];
        for (body, next) in cases {
            let page: Collection<BusinessPartner> =
                serde_json::from_value(body.clone()).expect("collection");
            assert_eq!(page.next_link.as_deref(), next, "{body}");
            assert_eq!(page.value[0].card_code.as_deref(), Some("C1"));
        }
    }

    fn andina_payload() -> Value {
        json!({
            "CardCode": "C-HS-901", "CardName": "Distribuidora Andina SAS", "CardType": "cCustomer",
            "FederalTaxID": "900123456-8", "EmailAddress": "compras@andina.co",
            "Phone1": "601 234 5678", "Valid": "tYES", "Frozen": "tNO",
            "Address": "Calle vieja 1", "City": "Cali", "Country": "CO",
            "BPAddresses": [
                {"AddressName": "Bodega", "AddressType": "bo_ShipTo", "Street": "Km 5", "City": "Funza"},
                {"AddressName": "Facturación", "AddressType": "bo_BillTo", "Street": "Cra 7 # 71-21",
                 "City": "Bogotá", "ZipCode": "110231", "Country": "CO"}
            ],
            "UpdateDate": "2025-03-14", "UpdateTime": "16:02:11",
            "U_SYNC_EXT_ID": "hubspot-company-901"
        })
    }

    #[test]
    fn business_partners_read_into_customer_fields() {
        let mut flat_only = andina_payload();
        flat_only["BPAddresses"] = json!([]);
        let cases = [
            (andina_payload(), "Cra 7 # 71-21", "Bogotá"),
            (flat_only, "Calle vieja 1", "Cali"),
        ];
        for (payload, street, city) in cases {
            let record = partner(payload)
                .to_record(bogota(), &u_field())
                .expect("valid record");
            assert_eq!(record.id.as_str(), "C-HS-901");
            assert_eq!(record.card_type, Some(CardType::Customer));
            assert_eq!(record.reference.as_deref(), Some("hubspot-company-901"));
            assert!(record.active);
            assert_eq!(
                record.updated_at.map(Timestamp::format_rfc3339).as_deref(),
                Some("2025-03-14T21:02:11.000Z")
            );
            let fields = record.fields;
            assert_eq!(fields.name.as_deref(), Some("Distribuidora Andina SAS"));
            assert_eq!(fields.tax_id.as_deref(), Some("900123456-8"));
            assert_eq!(fields.email.as_deref(), Some("compras@andina.co"));
            assert_eq!(fields.phone.as_deref(), Some("601 234 5678"));
            assert_eq!(fields.street.as_deref(), Some(street));
            assert_eq!(fields.city.as_deref(), Some(city));
            assert_eq!(fields.country.as_deref(), Some("CO"));
        }
    }

    #[test]
    fn update_date_and_time_become_an_instant_in_the_server_offset() {
        let cases: &[TimeRow] = &[
            (
                json!("2025-03-14"),
                json!("16:02:11"),
                Ok(Some("2025-03-14T21:02:11.000Z")),
            ),
            (
                json!("2025-03-14T00:00:00Z"),
                json!("16:02"),
                Ok(Some("2025-03-14T21:02:00.000Z")),
            ),
            (
                json!("2022-02-18T08:00:12"),
                json!(80012),
                Ok(Some("2022-02-18T13:00:12.000Z")),
            ),
            (
                json!("2025-03-14"),
                Value::Null,
                Ok(Some("2025-03-14T05:00:00.000Z")),
            ),
            (Value::Null, Value::Null, Ok(None)),
            (json!("14/03/2025"), json!("16:02:11"), Err("UpdateDate")),
            (json!("2025-03-14"), json!("25:00:00"), Err("UpdateTime")),
            (json!("2025-03-14"), json!(true), Err("UpdateTime")),
        ];
        for (update_date, update_time, expected) in cases {
            let bp = partner(json!({"UpdateDate": update_date, "UpdateTime": update_time}));
            let got = bp
                .updated_at(bogota())
                .map(|t| t.map(Timestamp::format_rfc3339))
                .map_err(|e| e.field);
            let expected = expected
                .map(|t| t.map(str::to_owned))
                .map_err(str::to_owned);
            assert_eq!(got, expected, "{update_date} {update_time}");
        }
    }

    #[test]
    fn a_business_partner_that_cannot_be_read_lists_every_field() {
        let bp = partner(json!({
            "CardName": "Ana Pérez", "CardType": "cEmployee", "Valid": "yes",
            "Frozen": "tNO", "UpdateDate": "2025-13-01", "EmailAddress": "ana@example.co"
        }));
        let rejection = bp.to_record(bogota(), &u_field()).expect_err("invalid");
        assert_eq!(
            field_names(&rejection),
            ["CardCode", "CardType", "Valid", "UpdateDate"]
        );
        let text = rejection.to_string();
        assert!(!text.contains("Ana") && !text.contains("ana@"), "{text}");
    }

    #[test]
    fn frozen_or_invalid_partners_are_inactive() {
        for (valid, frozen, active) in [
            ("tYES", "tNO", true),
            ("tNO", "tNO", false),
            ("tYES", "tYES", false),
        ] {
            let bp = partner(json!({"CardCode": "C1", "Valid": valid, "Frozen": frozen}));
            let record = bp.to_record(ZoneOffset::UTC, &u_field()).expect("valid");
            assert_eq!(record.active, active, "{valid} {frozen}");
        }
    }

    #[test]
    fn reference_fields_are_alias_name_or_user_fields() {
        for (name, ok) in [
            ("U_SYNC_EXT_ID", true),
            ("AliasName", true),
            (" U_X1 ", true),
            ("U_", false),
            ("CardName", false),
            ("U_bad-name", false),
            ("", false),
        ] {
            assert_eq!(ReferenceField::parse(name).is_ok(), ok, "{name:?}");
        }
    }

    fn andina() -> Customer {
        Customer {
            kind: CustomerKind::Company,
            name: "Distribuidora Andina SAS".into(),
            tax_id: TaxId::parse("900123456-8", Some(Country::CO)).ok(),
            email: Email::parse("compras@andina.co").ok(),
            phone: Phone::parse("601 234 5678", Some(Country::CO)).ok(),
            address: Address {
                street: Some("Cra 7 # 71-21".into()),
                city: Some("Bogotá".into()),
                country: Some(Country::CO),
            },
        }
    }

    fn layout(field: &str) -> PartnerLayout {
        PartnerLayout {
            reference_field: ReferenceField::parse(field).expect("valid field"),
            bill_to_name: "Facturación".into(),
        }
    }

    #[test]
    fn the_create_body_carries_the_card_code_type_and_reference() {
        let code = ErpId::parse("C-HS-901").expect("id");
        let body = BusinessPartner::create_body(
            &andina(),
            &code,
            "hubspot-company-901",
            &layout("U_SYNC_EXT_ID"),
        );
        assert_eq!(
            serde_json::to_value(&body).expect("serializes"),
            json!({
                "CardCode": "C-HS-901", "CardName": "Distribuidora Andina SAS",
                "CardType": "cCustomer", "FederalTaxID": "900123456-8",
                "EmailAddress": "compras@andina.co", "Phone1": "+576012345678",
                "BPAddresses": [{"AddressName": "Facturación", "AddressType": "bo_BillTo",
                    "Street": "Cra 7 # 71-21", "City": "Bogotá", "Country": "CO"}],
                "U_SYNC_EXT_ID": "hubspot-company-901"
            })
        );
        let update = BusinessPartner::update_body(
            &Customer {
                email: None,
                address: Address::default(),
                ..andina()
            },
            "hubspot-company-901",
            &layout("AliasName"),
        );
        assert_eq!(
            serde_json::to_value(&update).expect("serializes"),
            json!({
                "CardName": "Distribuidora Andina SAS", "AliasName": "hubspot-company-901",
                "FederalTaxID": "900123456-8", "Phone1": "+576012345678"
            })
        );
    }

    #[test]
    fn customers_round_trip_through_the_business_partner_body() {
        let code = ErpId::parse("C-HS-901").expect("id");
        let minimal = Customer {
            tax_id: None,
            email: None,
            phone: None,
            address: Address {
                country: Some(Country::CO),
                ..Address::default()
            },
            ..andina()
        };
        for customer in [andina(), minimal] {
            for field in ["U_SYNC_EXT_ID", "AliasName"] {
                let layout = layout(field);
                let body = BusinessPartner::create_body(&customer, &code, "ref-1", &layout);
                let wire = serde_json::to_string(&body).expect("serializes");
                let read: BusinessPartner = serde_json::from_str(&wire).expect("reads back");
                let record = read
                    .to_record(bogota(), &layout.reference_field)
                    .expect("valid record");
                assert_eq!(record.id, code);
                assert_eq!(record.reference.as_deref(), Some("ref-1"), "{field}");
                let back =
                    to_customer(&record.fields, &CustomerRules::default()).expect("valid customer");
                assert_eq!(back, customer, "{field}");
            }
        }
    }

    fn line(sku: Option<&str>, quantity: Quantity, price: i64, discount: Rate) -> InvoiceLine {
        InvoiceLine {
            sku: sku.map(|s| Sku::parse(s).expect("sku")),
            description: "Licencia anual ERP".into(),
            quantity,
            unit_price: cop(price),
            discount,
            taxes: vec![Rate::from_percent(19)],
        }
    }

    fn invoice(lines: Vec<InvoiceLine>) -> SalesInvoice {
        SalesInvoice::new(
            "HS-DEAL-5512".into(),
            ErpId::parse("C-HS-901").expect("id"),
            COP,
            date(2025, 3, 14),
            Some(date(2025, 4, 13)),
            lines,
        )
        .expect("valid invoice")
    }

    fn iva19(rates: &[Rate]) -> Option<String> {
        (rates == [Rate::from_percent(19)]).then(|| "IVA19".to_owned())
    }

    #[test]
    fn a_sales_invoice_becomes_the_documented_create_body() {
        let body = InvoiceBody::from_invoice(
            &invoice(vec![
                line(
                    Some("LIC-ERP-ANUAL"),
                    Quantity::from_units(2),
                    50_000_000,
                    Rate::ZERO,
                ),
                line(
                    Some("SOPORTE"),
                    Quantity::from_micros(2_500_000),
                    33_333,
                    Rate::from_basis_points(1_250),
                ),
            ]),
            iva19,
        )
        .expect("maps");
        assert_eq!(
            serde_json::to_value(&body).expect("serializes"),
            json!({
                "CardCode": "C-HS-901", "DocDate": "2025-03-14", "DocDueDate": "2025-04-13",
                "DocCurrency": "COP", "NumAtCard": "HS-DEAL-5512",
                "DocumentLines": [
                    {"ItemCode": "LIC-ERP-ANUAL", "ItemDescription": "Licencia anual ERP",
                     "Quantity": 2.0, "UnitPrice": 500000.0, "DiscountPercent": 0.0, "TaxCode": "IVA19"},
                    {"ItemCode": "SOPORTE", "ItemDescription": "Licencia anual ERP",
                     "Quantity": 2.5, "UnitPrice": 333.33, "DiscountPercent": 12.5, "TaxCode": "IVA19"}
                ]
            })
        );
        // The numbers written read back as the same canonical amounts.
        let wire = serde_json::to_string(&body).expect("serializes");
        let read: InvoiceBody = serde_json::from_str(&wire).expect("reads back");
        let second = &read.document_lines[1];
        assert_eq!(Money::from_json(&second.unit_price, COP), Ok(cop(33_333)));
        assert_eq!(
            Quantity::from_json(&second.quantity),
            Ok(Quantity::from_micros(2_500_000))
        );
        assert_eq!(
            Rate::percent_from_json(&second.discount_percent),
            Ok(Rate::from_basis_points(1_250))
        );
    }

    #[test]
    fn invoice_lines_without_sku_or_tax_code_are_all_reported() {
        let mut untaxed = line(Some("X"), Quantity::ONE, 100, Rate::ZERO);
        untaxed.taxes = vec![Rate::from_percent(5)];
        let rejection = InvoiceBody::from_invoice(
            &invoice(vec![
                line(None, Quantity::ONE, 100, Rate::ZERO),
                line(Some("OK"), Quantity::ONE, 100, Rate::ZERO),
                untaxed,
            ]),
            iva19,
        )
        .expect_err("rejected");
        assert_eq!(field_names(&rejection), ["lines[1].sku", "lines[3].taxes"]);
        assert!(rejection.to_string().contains("for 5%"), "{rejection}");
    }

    /// The reference's `201 Created` example for `POST /Invoices`.
    fn created_invoice() -> Value {
        json!({"DocEntry": 3051, "DocNum": 10451, "CardCode": "C-HS-901", "DocDate": "2025-03-14",
            "DocDueDate": "2025-04-13", "NumAtCard": "HS-DEAL-5512", "DocCurrency": "COP",
            "DocTotal": 1190000.0, "VatSum": 190000.0, "PaidToDate": 0.0, "Cancelled": "tNO",
            "DocumentStatus": "bost_Open",
            "DocumentLines": [{"LineNum": 0, "ItemCode": "LIC-ERP-ANUAL", "Quantity": 2.0,
                "UnitPrice": 500000.0, "TaxCode": "IVA19"}]})
    }

    fn document(patch: Value) -> Document {
        let mut value = created_invoice();
        if let (Value::Object(base), Value::Object(patch)) = (&mut value, patch) {
            base.extend(patch);
        }
        serde_json::from_value(value).expect("a Documents payload")
    }

    #[test]
    fn invoice_totals_are_read_in_the_document_currency() {
        let cases: &[TotalsRow] = &[
            (json!({}), COP, Ok((100_000_000, 19_000_000, 119_000_000))),
            (
                json!({"DocCurrency": "USD", "DocTotal": 4_760_000.0, "VatSum": 760_000.0,
                       "DocTotalFc": 1190.0, "VatSumFc": 190.0}),
                COP,
                Ok((100_000, 19_000, 119_000)),
            ),
            (
                json!({"DocTotal": 12.345, "VatSum": null}),
                COP,
                Err(vec!["DocTotal", "VatSum"]),
            ),
            (json!({"DocCurrency": "XYZ"}), COP, Err(vec!["DocCurrency"])),
            (
                json!({"DocCurrency": "USD"}),
                COP,
                Err(vec!["DocTotalFc", "VatSumFc"]),
            ),
        ];
        for (patch, local, expected) in cases {
            let got = document(patch.clone())
                .totals(*local)
                .map(|t| (t.untaxed.minor(), t.tax.minor(), t.total.minor()));
            match (got, expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{patch}"),
                (Err(rejection), Err(fields)) => {
                    assert_eq!(field_names(&rejection), *fields, "{patch}");
                }
                (got, _) => panic!("{patch}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn invoice_status_follows_paid_amount_status_and_cancellation() {
        use PaymentState::*;
        let cases: &[(Value, PaymentState, i64)] = &[
            (json!({}), NotPaid, 119_000_000),
            (json!({"PaidToDate": 500000}), Partial, 69_000_000),
            (
                json!({"PaidToDate": 1190000.0, "DocumentStatus": "bost_Close"}),
                Paid,
                0,
            ),
            (
                json!({"Cancelled": "tYES", "DocumentStatus": "bost_Close"}),
                Reversed,
                0,
            ),
            (json!({"DocumentStatus": "bost_Close"}), Reversed, 0),
        ];
        for (patch, state, outstanding) in cases {
            let status = document(patch.clone()).status(COP).expect("valid");
            assert_eq!(status.state, *state, "{patch}");
            assert_eq!(status.outstanding, cop(*outstanding), "{patch}");
            assert_eq!(status.invoice_number, "10451");
            assert_eq!(status.invoiced, cop(119_000_000));
            assert_eq!(status.due_date, Some(date(2025, 4, 13)));
        }
        let rejection = document(json!({"DocNum": null, "Cancelled": "maybe",
            "DocumentStatus": "open", "DocDueDate": "13/04/2025"}))
        .status(COP)
        .expect_err("invalid");
        assert_eq!(
            field_names(&rejection),
            ["DocNum", "DocDueDate", "Cancelled", "DocumentStatus"]
        );
    }

    /// The reference's `POST /IncomingPayments` example, as read back.
    fn receipt(patch: Value) -> IncomingPayment {
        let mut value = json!({"DocEntry": 812, "DocNum": 5001, "DocType": "rCustomer",
            "CardCode": "C-HS-901", "DocDate": "2025-03-20T00:00:00Z", "DocCurrency": "COP",
            "TransferAccount": "11100505", "TransferSum": 1190000.0, "TransferDate": "2025-03-20",
            "TransferReference": "PSE-88812345", "Cancelled": "tNO",
            "PaymentInvoices": [{"LineNum": 0, "DocEntry": 3051, "SumApplied": 1190000.0,
                "InvoiceType": "it_Invoice"}]});
        if let (Value::Object(base), Value::Object(patch)) = (&mut value, patch) {
            base.extend(patch);
        }
        serde_json::from_value(value).expect("an IncomingPayments payload")
    }

    #[test]
    fn incoming_payments_become_one_payment_per_invoice() {
        let payments = receipt(json!({})).to_payments(COP).expect("valid");
        assert_eq!(
            payments,
            [Payment {
                id: ErpId::parse("812").expect("id"),
                invoice: ErpId::parse("3051").expect("id"),
                amount: cop(119_000_000),
                date: date(2025, 3, 20),
                reference: Some("PSE-88812345".into()),
            }]
        );

        let split = receipt(json!({"CounterReference": "REC-77", "PaymentInvoices": [
            {"LineNum": 0, "DocEntry": 3051, "SumApplied": 1000000, "InvoiceType": "it_Invoice"},
            {"LineNum": 1, "DocEntry": 3052, "SumApplied": 290000.0},
            {"LineNum": 2, "DocEntry": 90, "SumApplied": -100000, "InvoiceType": "it_CredItnote"}
        ]}))
        .to_payments(COP)
        .expect("valid");
        let summary: Vec<(&str, i64, Option<&str>)> = split
            .iter()
            .map(|p| (p.invoice.as_str(), p.amount.minor(), p.reference.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("3051", 100_000_000, Some("REC-77")),
                ("3052", 29_000_000, Some("REC-77"))
            ]
        );

        let foreign = receipt(json!({"DocCurrency": "USD", "PaymentInvoices": [
            {"DocEntry": 3051, "SumApplied": 4760000.0, "AppliedFC": 1190.0}]}))
        .to_payments(COP)
        .expect("valid");
        assert_eq!(foreign[0].amount, Money::from_minor(119_000, Currency::USD));
        assert!(receipt(json!({"Cancelled": "tYES"})).is_cancelled());
    }

    #[test]
    fn an_incoming_payment_that_cannot_be_read_lists_every_field() {
        let rejection = receipt(json!({"DocEntry": null, "DocDate": "20/03/2025",
            "PaymentInvoices": [{"DocEntry": 3051, "SumApplied": 0.001},
                                {"SumApplied": 10}]}))
        .to_payments(COP)
        .expect_err("invalid");
        assert_eq!(
            field_names(&rejection),
            [
                "DocEntry",
                "DocDate",
                "PaymentInvoices[1].SumApplied",
                "PaymentInvoices[2].DocEntry"
            ]
        );
    }

    #[test]
    fn items_become_products_priced_from_the_chosen_list() {
        let item = |patch: Value| -> Item {
            let mut value = json!({"ItemCode": "LIC-ERP-ANUAL", "ItemName": "Licencia anual ERP",
                "ItemType": "itItems", "SalesItem": "tYES", "Valid": "tYES", "Frozen": "tNO",
                "ItemPrices": [{"PriceList": 1, "Price": 500000.0, "Currency": "COP"},
                               {"PriceList": 2, "Price": 125.5, "Currency": "USD"}]});
            if let (Value::Object(base), Value::Object(patch)) = (&mut value, patch) {
                base.extend(patch);
            }
            serde_json::from_value(value).expect("an Items payload")
        };
        let cases: &[ItemRow] = &[
            (
                json!({}),
                1,
                Ok((ProductKind::Goods, cop(50_000_000), true)),
            ),
            (
                json!({"ItemType": "itLabor"}),
                2,
                Ok((
                    ProductKind::Service,
                    Money::from_minor(12_550, Currency::USD),
                    true,
                )),
            ),
            (
                json!({"Frozen": "tYES"}),
                1,
                Ok((ProductKind::Goods, cop(50_000_000), false)),
            ),
            (
                json!({"SalesItem": "tNO"}),
                1,
                Ok((ProductKind::Goods, cop(50_000_000), false)),
            ),
            (json!({}), 9, Err(vec!["ItemPrices"])),
            (
                json!({"ItemCode": " ", "ItemType": "itOther", "Valid": "Y",
                       "ItemPrices": [{"PriceList": 1, "Price": 1.005, "Currency": "COP"}]}),
                1,
                Err(vec!["ItemCode", "ItemType", "Valid", "ItemPrices[1].Price"]),
            ),
        ];
        for (patch, list, expected) in cases {
            let got = item(patch.clone()).to_product(*list);
            match (got, expected) {
                (Ok(product), Ok((kind, price, active))) => {
                    assert_eq!(product.sku.as_str(), "LIC-ERP-ANUAL");
                    assert_eq!(product.name, "Licencia anual ERP");
                    assert_eq!(
                        (product.kind, product.list_price, product.active),
                        (*kind, *price, *active),
                        "{patch}"
                    );
                }
                (Err(rejection), Err(fields)) => {
                    assert_eq!(field_names(&rejection), *fields, "{patch}");
                }
                (got, _) => panic!("{patch}: unexpected {got:?}"),
            }
        }
    }
}
