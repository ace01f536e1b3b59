//! Siigo API JSON shapes, with Siigo's field names, and the pure conversions between them and the
//! canonical model: customers (terceros), sales invoices, payment receipts (recibos de caja),
//! products, the error body and the paginated list envelope. Field names follow
//! `connector-protocols.md` §3; those it marks UNCONFIRMED are marked here too.
//!
//! Amounts arrive as JSON numbers and go through `Money::from_json`, which never rounds: an
//! amount (or a price, which Siigo allows with up to 6 decimals) with more decimals than its
//! currency is a field error in the `Rejection`, not a silently rounded value. Amounts are sent
//! as JSON numbers written from their exact decimal text. Dates are `yyyy-MM-dd`, metadata
//! timestamps RFC 3339. A `Rejection` names every failing field and never repeats personal
//! values (names, identifications, emails, phones).

use crate::connectors::json::required_money;
use crate::domain::invoice::{InvoiceTotals, PaymentState, SalesInvoice};
use crate::domain::payment::{InvoiceStatus, Payment};
use crate::domain::product::{Product, ProductKind};
use crate::domain::{
    Country, Currency, Customer, CustomerKind, Date, ErpId, FieldError, Money, Nit, Phone, Rate,
    Rejection, Sku, TaxId, Timestamp,
};
use crate::mapping::customer::CustomerFields;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// A value Siigo may send as a JSON string or a JSON number (`check_digit`, ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Integer(i64),
}

impl Scalar {
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Text(text) => text.trim().to_owned(),
            Scalar::Integer(n) => n.to_string(),
        }
    }
}

/// `metadata.{created, last_updated}` on customers, invoices, vouchers and products.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub last_updated: Option<String>,
}

impl Metadata {
    /// `created` as an instant; `None` when absent or null.
    pub fn created_at(&self) -> Result<Option<Timestamp>, FieldError> {
        parse_timestamp("metadata.created", self.created.as_deref())
    }

    /// `last_updated` as an instant; `None` when absent or null (never updated).
    pub fn last_updated_at(&self) -> Result<Option<Timestamp>, FieldError> {
        parse_timestamp("metadata.last_updated", self.last_updated.as_deref())
    }
}

fn parse_timestamp(field: &str, raw: Option<&str>) -> Result<Option<Timestamp>, FieldError> {
    match raw.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => Timestamp::parse_rfc3339(text)
            .map(Some)
            .map_err(|_| FieldError::new(field, "is not an RFC 3339 timestamp")),
    }
}

fn parse_date(field: &str, raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Date> {
    match raw.map(str::trim).filter(|t| !t.is_empty()) {
        None => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(text) => Date::parse_iso(text)
            .map_err(|_| errors.push(FieldError::new(field, "is not a date like 2025-03-14")))
            .ok(),
    }
}

/// An exact decimal text (`500000.00`, `2.5`) as a JSON number, without trailing zeros.
fn decimal_number(text: &str) -> Value {
    let trimmed = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    };
    trimmed
        .parse::<Number>()
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(trimmed.to_owned()))
}

fn money_number(money: Money) -> Value {
    decimal_number(&money.to_decimal_string())
}

fn blank_to_none(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Errors and pagination (§3.4, §3.6)
// ---------------------------------------------------------------------------------------------

/// Siigo's error body: `{"Status": 400, "Errors": [{"Code", "Message", "Params", "Detail"}]}`.
/// The live casing (`Errors` vs `errors`) is UNCONFIRMED, so both are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "Status", alias = "status", default)]
    pub status: Option<u16>,
    #[serde(rename = "Errors", alias = "errors", default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorItem {
    #[serde(rename = "Code", alias = "code", default)]
    pub code: String,
    #[serde(rename = "Message", alias = "message", default)]
    pub message: String,
    #[serde(rename = "Params", alias = "params", default)]
    pub params: Vec<String>,
    #[serde(rename = "Detail", alias = "detail", default)]
    pub detail: Option<String>,
}

impl ErrorBody {
    /// The error codes, in order (`parameter_required`, `requests_limit`, ...).
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().map(|e| e.code.as_str())
    }

    /// Whether any code is one §3.4 lists as worth retrying (the HTTP status decides too).
    pub fn is_retryable(&self) -> bool {
        self.codes().any(|code| {
            matches!(
                code,
                "requests_limit"
                    | "request_timeout"
                    | "service_unavailable"
                    | "documents_service"
                    | "payment_types_service"
                    | "general_service"
            )
        })
    }
}

/// A list response: `{"pagination": {...}, "results": [...], "_links": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub pagination: Pagination,
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    #[serde(rename = "_links", default)]
    pub links: Links,
}

impl<T> Page<T> {
    /// The next page's URL, when there is one.
    pub fn next_href(&self) -> Option<&str> {
        self.links.next.as_ref().map(|link| link.href.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    pub page: u32,
    pub page_size: u32,
    pub total_results: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Link>,
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub this: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
}

// ---------------------------------------------------------------------------------------------
// Customers (terceros, §3.8)
// ---------------------------------------------------------------------------------------------

/// `id_type` for a NIT, the only identification `customer_create_body` sends.
pub const ID_TYPE_NIT: &str = "31";
/// `id_type` for a cédula de ciudadanía.
pub const ID_TYPE_CEDULA: &str = "13";
/// `fiscal_responsibilities[].code` sent by default: `R-99-PN`, "no aplica" (as in §3.8's example).
pub const DEFAULT_FISCAL_RESPONSIBILITY: &str = "R-99-PN";

/// Foreign identification types (cédula/tarjeta de extranjería, pasaporte, documento extranjero,
/// NIT de otro país, PEP, PPT): read as a foreign id under the address country.
const FOREIGN_ID_TYPES: [&str; 7] = ["21", "22", "41", "42", "50", "47", "48"];

/// `id_type` is a code (`"13"`) on input and `{"code", "name"}` on output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IdType {
    Code(String),
    Described {
        code: String,
        #[serde(default)]
        name: Option<String>,
    },
}

impl IdType {
    pub fn code(&self) -> &str {
        match self {
            IdType::Code(code) | IdType::Described { code, .. } => code.trim(),
        }
    }
}

/// `address.city`: DANE codes. The `*_name` members are read when Siigo sends them on output
/// (UNCONFIRMED: §3.8 documents only the codes) and never sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct City {
    pub country_code: String,
    pub state_code: String,
    pub city_code: String,
    #[serde(default, skip_serializing)]
    pub city_name: Option<String>,
}

/// The codes Siigo wants for a city, e.g. `CO`/`11`/`11001` for Bogotá.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CityCode {
    pub country_code: String,
    pub state_code: String,
    pub city_code: String,
}

/// The caller's city table (DANE codes), in both directions.
pub trait CityCodes {
    /// The codes of a city name (as the canonical customer holds it) in a country.
    fn codes_of(&self, city: &str, country: Country) -> Option<CityCode>;
    /// The city name for Siigo's codes.
    fn name_of(&self, code: &CityCode) -> Option<String>;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiigoAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<City>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiigoPhone {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicative: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

impl SiigoPhone {
    /// `+<indicative> <number>`, or the number alone (read under the record's country).
    fn as_text(&self) -> Option<String> {
        let number = blank_to_none(self.number.as_deref())?;
        Some(match blank_to_none(self.indicative.as_deref()) {
            Some(indicative) => format!("+{} {number}", indicative.trim_start_matches('+')),
            None => number,
        })
    }

    /// Splits an E.164 number into Siigo's indicative and national number.
    fn from_phone(phone: &Phone) -> Option<SiigoPhone> {
        let parsed = phonenumber::parse(None, phone.as_str()).ok()?;
        let national = parsed.national();
        let zeros = "0".repeat(usize::from(national.zeros()));
        Some(SiigoPhone {
            indicative: Some(parsed.code().value().to_string()),
            number: Some(format!("{zeros}{}", national.value())),
            extension: None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiigoContact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<SiigoPhone>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    pub code: String,
}

/// A customer as `GET /v1/customers` returns it (only the fields the sync reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerOut {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type", default)]
    pub role: Option<String>,
    #[serde(default)]
    pub person_type: Option<String>,
    #[serde(default)]
    pub id_type: Option<IdType>,
    #[serde(default)]
    pub identification: Option<String>,
    #[serde(default)]
    pub check_digit: Option<Scalar>,
    #[serde(default)]
    pub name: Vec<String>,
    #[serde(default)]
    pub commercial_name: Option<String>,
    #[serde(default)]
    pub branch_office: Option<u32>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub address: Option<SiigoAddress>,
    #[serde(default)]
    pub phones: Vec<SiigoPhone>,
    #[serde(default)]
    pub contacts: Vec<SiigoContact>,
    #[serde(default)]
    pub comments: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// The body of `POST /v1/customers` (and `PUT`, which replaces the whole record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerIn {
    #[serde(rename = "type")]
    pub role: String,
    pub person_type: String,
    pub id_type: String,
    pub identification: String,
    pub check_digit: String,
    pub name: Vec<String>,
    pub branch_office: u32,
    pub active: bool,
    pub vat_responsible: bool,
    pub fiscal_responsibilities: Vec<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SiigoAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<SiigoPhone>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<SiigoContact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

/// Reads a Siigo customer into text fields for `mapping::customer::to_customer`.
///
/// - `name` joins the array with spaces (company `["Andina SAS"]`, person `["Marcos",
///   "Castillo"]`).
/// - A NIT (`31`) or cédula (`13`) becomes `number-check_digit`; when `check_digit` is missing
///   it is computed with the DIAN algorithm (Siigo computes it the same way). Foreign document
///   types pass through as a foreign id and need a non-Colombian address country; any other
///   type is rejected, since the canonical `TaxId` cannot hold it.
/// - The email is the first contact's with one; the phone is `phones[0]`, else a contact's.
/// - The city comes from `city_name` when sent, else from `cities`; an unknown code is an error.
pub fn customer_fields(
    customer: &CustomerOut,
    cities: &impl CityCodes,
) -> Result<CustomerFields, Rejection> {
    let mut errors = Vec::new();

    let kind = match customer.person_type.as_deref().map(str::trim) {
        Some("Company") => Some(CustomerKind::Company),
        Some("Person") => Some(CustomerKind::Person),
        None | Some("") => None,
        Some(_) => {
            errors.push(FieldError::new("person_type", "must be Company or Person"));
            None
        }
    };

    let name = {
        let parts: Vec<&str> = customer
            .name
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    };

    let address = customer.address.clone().unwrap_or_default();
    let country = address
        .city
        .as_ref()
        .and_then(|c| blank_to_none(Some(c.country_code.as_str())));
    let city = match &address.city {
        None => None,
        Some(city) if city.city_code.trim().is_empty() => blank_to_none(city.city_name.as_deref()),
        Some(city) => blank_to_none(city.city_name.as_deref()).or_else(|| {
            let code = CityCode {
                country_code: city.country_code.clone(),
                state_code: city.state_code.clone(),
                city_code: city.city_code.clone(),
            };
            let name = cities.name_of(&code);
            if name.is_none() {
                errors.push(FieldError::new(
                    "address.city.city_code",
                    "is not in the city table",
                ));
            }
            name
        }),
    };

    let identification = blank_to_none(customer.identification.as_deref());
    let id_type = customer.id_type.as_ref().map(IdType::code);
    let tax_id = match (identification, id_type) {
        (None, _) => None,
        (Some(number), Some(ID_TYPE_NIT | ID_TYPE_CEDULA) | None) => {
            let dv = customer.check_digit.as_ref().map(Scalar::to_text);
            match dv.filter(|d| !d.is_empty()) {
                Some(dv) => Some(format!("{number}-{dv}")),
                None if number.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(format!("{number}-{}", Nit::check_digit_of(&number)))
                }
                None => {
                    errors.push(FieldError::new("identification", "must be digits"));
                    None
                }
            }
        }
        (Some(number), Some(code)) if FOREIGN_ID_TYPES.contains(&code) => {
            let colombian = country
                .as_deref()
                .and_then(Country::parse)
                .is_none_or(|c| c == Country::CO);
            if colombian {
                errors.push(FieldError::new(
                    "id_type",
                    format!("foreign document type {code} needs a non-Colombian address country"),
                ));
                None
            } else {
                Some(number)
            }
        }
        (Some(_), Some(code)) => {
            errors.push(FieldError::new(
                "id_type",
                format!("document type {code} cannot be represented as a tax id"),
            ));
            None
        }
    };

    let email = customer
        .contacts
        .iter()
        .find_map(|c| blank_to_none(c.email.as_deref()));
    let phone = customer
        .phones
        .iter()
        .find_map(SiigoPhone::as_text)
        .or_else(|| {
            customer
                .contacts
                .iter()
                .find_map(|c| c.phone.as_ref().and_then(SiigoPhone::as_text))
        });

    if !errors.is_empty() {
        return Err(Rejection(errors));
    }
    Ok(CustomerFields {
        kind,
        name,
        tax_id,
        email,
        phone,
        street: blank_to_none(address.address.as_deref()),
        city,
        country,
        ..CustomerFields::default()
    })
}

/// The create body for a canonical customer: `person_type` from its kind, `id_type` `31` with
/// the NIT's number and check digit, the name as one element (company) or first word and the
/// rest (person), city codes from `cities`, a contact holding the email, `phones[0]` from the
/// phone, `fiscal_responsibilities` `R-99-PN`, and `comments` (our reference, if any).
///
/// Rejected: no tax id or one that is not a Colombian NIT (`tax_id`), a street or city without
/// city codes (`address.city`), a name part over Siigo's 100 characters (`name`).
pub fn customer_create_body(
    customer: &Customer,
    cities: &impl CityCodes,
    comments: Option<&str>,
) -> Result<CustomerIn, Rejection> {
    let mut errors = Vec::new();

    let nit = match &customer.tax_id {
        Some(TaxId::Nit(nit)) => Some(nit),
        Some(_) => {
            errors.push(FieldError::new(
                "tax_id",
                "must be a Colombian NIT for Siigo (other identification types are not mapped)",
            ));
            None
        }
        None => {
            errors.push(FieldError::new("tax_id", "is required by Siigo"));
            None
        }
    };

    let name = match customer.kind {
        CustomerKind::Company => vec![customer.name.clone()],
        CustomerKind::Person => match customer.name.split_once(' ') {
            Some((first, last)) => vec![first.to_owned(), last.to_owned()],
            None => vec![customer.name.clone()],
        },
    };
    if name.iter().any(|part| part.chars().count() > 100) {
        errors.push(FieldError::new(
            "name",
            "has a part longer than Siigo's 100 characters",
        ));
    }

    let street = customer.address.street.clone();
    let city = match &customer.address.city {
        None if street.is_some() => {
            errors.push(FieldError::new(
                "address.city",
                "is required with a street (Siigo needs the city codes)",
            ));
            None
        }
        None => None,
        Some(city) => {
            let country = customer.address.country.unwrap_or(Country::CO);
            match cities.codes_of(city, country) {
                Some(code) => Some(City {
                    country_code: code.country_code,
                    state_code: code.state_code,
                    city_code: code.city_code,
                    city_name: None,
                }),
                None => {
                    errors.push(FieldError::new("address.city", "is not in the city table"));
                    None
                }
            }
        }
    };
    let address = (street.is_some() || city.is_some()).then_some(SiigoAddress {
        address: street,
        city,
        postal_code: None,
    });

    let phones: Vec<SiigoPhone> = customer
        .phone
        .as_ref()
        .and_then(SiigoPhone::from_phone)
        .into_iter()
        .collect();

    let contacts = match &customer.email {
        None => Vec::new(),
        Some(email) => {
            let (first, last) = match customer.kind {
                CustomerKind::Person => match name.as_slice() {
                    [first, last] => (first.clone(), Some(last.clone())),
                    _ => (customer.name.clone(), None),
                },
                CustomerKind::Company => (customer.name.clone(), None),
            };
            vec![SiigoContact {
                first_name: Some(first),
                last_name: last,
                email: Some(email.as_str().to_owned()),
                phone: phones.first().cloned(),
            }]
        }
    };

    match nit {
        Some(nit) if errors.is_empty() => Ok(CustomerIn {
            role: "Customer".to_owned(),
            person_type: match customer.kind {
                CustomerKind::Company => "Company",
                CustomerKind::Person => "Person",
            }
            .to_owned(),
            id_type: ID_TYPE_NIT.to_owned(),
            identification: nit.number().to_owned(),
            check_digit: nit.check_digit().to_string(),
            name,
            branch_office: 0,
            active: true,
            vat_responsible: false,
            fiscal_responsibilities: vec![Code {
                code: DEFAULT_FISCAL_RESPONSIBILITY.to_owned(),
            }],
            address,
            phones,
            contacts,
            comments: comments.map(str::to_owned),
        }),
        _ => Err(Rejection(errors)),
    }
}

// ---------------------------------------------------------------------------------------------
// Invoices (facturas de venta, §3.9)
// ---------------------------------------------------------------------------------------------

/// The longest `Idempotency-Key` sent: the intro says 30, the error section 32; §3.5 says use 30.
pub const IDEMPOTENCY_KEY_MAX: usize = 30;

/// The `Idempotency-Key` for our reference: the reference itself when it is ASCII alphanumeric
/// and at most 30 characters (Siigo allows no separators), otherwise `H` and the first 29 hex
/// digits of its SHA-256 (116 bits: collisions are not a practical concern), always the same
/// for the same reference.
pub fn idempotency_key(reference: &str) -> String {
    if !reference.is_empty()
        && reference.len() <= IDEMPOTENCY_KEY_MAX
        && reference.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return reference.to_owned();
    }
    let digest = Sha256::digest(reference.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("H{}", &hex[..IDEMPOTENCY_KEY_MAX - 1])
}

/// Per-company ids from configuration (`/v1/document-types?type=FV`, `/v1/users`,
/// `/v1/payment-types?document_type=FV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvoiceSettings {
    pub document_id: i64,
    pub seller_id: i64,
    pub payment_type_id: i64,
}

/// Who the invoice is for, as Siigo identifies customers on documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerKey {
    pub identification: String,
    #[serde(default)]
    pub branch_office: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyIn {
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceItemIn {
    pub code: String,
    pub description: String,
    pub quantity: Value,
    pub price: Value,
    pub discount: Value,
    pub taxes: Vec<IdRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoicePaymentIn {
    pub id: i64,
    pub value: Value,
    pub due_date: String,
}

/// The body of `POST /v1/invoices`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceIn {
    pub document: IdRef,
    pub date: String,
    pub customer: CustomerKey,
    pub seller: i64,
    /// Only for foreign currency; the exchange rate is not sent (UNCONFIRMED whether Siigo
    /// fills it in), so foreign-currency invoices are rejected by `invoice_create_body` for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<CurrencyIn>,
    pub observations: String,
    pub items: Vec<InvoiceItemIn>,
    pub payments: Vec<InvoicePaymentIn>,
}

/// The create body for an invoice. `tax_id_of` gives the Siigo tax id (`/v1/taxes`) for a rate.
/// `observations` carries our reference; one payment of the invoice total (Siigo requires the
/// payments to add up to it) with the due date, or the issue date when there is none.
///
/// Each line's `discount` is sent as a percentage: whether Siigo reads it as a percentage or a
/// value is UNCONFIRMED. Rejected: a line without SKU (`lines[i].sku`, Siigo's `code` is
/// required), a rate without a Siigo tax (`lines[i].taxes`), more than 3 taxes on a line, more
/// than 500 lines, a currency other than COP, totals that overflow.
pub fn invoice_create_body(
    invoice: &SalesInvoice,
    customer: &CustomerKey,
    settings: &InvoiceSettings,
    tax_id_of: impl Fn(Rate) -> Option<i64>,
) -> Result<InvoiceIn, Rejection> {
    let mut errors = Vec::new();
    if invoice.currency != Currency::COP {
        errors.push(FieldError::new(
            "currency",
            "only COP invoices are mapped to Siigo (exchange rate handling is not built)",
        ));
    }
    if invoice.lines.len() > 500 {
        errors.push(FieldError::new("lines", "Siigo allows at most 500 lines"));
    }
    let mut items = Vec::new();
    for (i, line) in invoice.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{i}].{name}");
        let code = match &line.sku {
            Some(sku) => sku.as_str().to_owned(),
            None => {
                errors.push(FieldError::new(
                    field("sku"),
                    "is required by Siigo (item code)",
                ));
                String::new()
            }
        };
        if line.taxes.len() > 3 {
            errors.push(FieldError::new(
                field("taxes"),
                "Siigo allows at most 3 per line",
            ));
        }
        let mut taxes = Vec::new();
        for rate in &line.taxes {
            match tax_id_of(*rate) {
                Some(id) => taxes.push(IdRef { id }),
                None => errors.push(FieldError::new(
                    field("taxes"),
                    format!(
                        "no Siigo tax is configured for {}%",
                        rate.to_percent_string()
                    ),
                )),
            }
        }
        items.push(InvoiceItemIn {
            code,
            description: line.description.clone(),
            quantity: decimal_number(&line.quantity.to_decimal_string()),
            price: money_number(line.unit_price),
            discount: decimal_number(&line.discount.to_percent_string()),
            taxes,
        });
    }
    let total = invoice
        .totals()
        .map_err(|e| errors.push(FieldError::new("lines", e.to_string())))
        .ok();

    match total {
        Some(totals) if errors.is_empty() => Ok(InvoiceIn {
            document: IdRef {
                id: settings.document_id,
            },
            date: invoice.issue_date.format_iso(),
            customer: customer.clone(),
            seller: settings.seller_id,
            currency: None,
            observations: invoice.reference.clone(),
            items,
            payments: vec![InvoicePaymentIn {
                id: settings.payment_type_id,
                value: money_number(totals.total),
                due_date: invoice.due_date.unwrap_or(invoice.issue_date).format_iso(),
            }],
        }),
        _ => Err(Rejection(errors)),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxOut {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub percentage: Option<Value>,
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceItemOut {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub taxes: Vec<TaxOut>,
    #[serde(default)]
    pub total: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoicePaymentOut {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub due_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyOut {
    pub code: String,
}

/// An invoice as Siigo returns it (create response or `GET /v1/invoices/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceOut {
    pub id: String,
    #[serde(default)]
    pub number: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub currency: Option<CurrencyOut>,
    #[serde(default)]
    pub total: Option<Value>,
    #[serde(default)]
    pub balance: Option<Value>,
    #[serde(default)]
    pub items: Vec<InvoiceItemOut>,
    #[serde(default)]
    pub payments: Vec<InvoicePaymentOut>,
    #[serde(default)]
    pub observations: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

impl InvoiceOut {
    fn currency(&self, errors: &mut Vec<FieldError>) -> Currency {
        match &self.currency {
            None => Currency::COP,
            Some(c) => Currency::parse(&c.code).unwrap_or_else(|_| {
                errors.push(FieldError::new("currency.code", "is not a known currency"));
                Currency::COP
            }),
        }
    }
}

/// What Siigo says the invoice adds up to: `total`, the tax as the sum of the lines'
/// `taxes[].value` (withholdings included as Siigo signs them), the untaxed amount as the
/// difference.
pub fn invoice_totals(invoice: &InvoiceOut) -> Result<InvoiceTotals, Rejection> {
    let mut errors = Vec::new();
    let currency = invoice.currency(&mut errors);
    let total = required_money("total", invoice.total.as_ref(), currency, &mut errors);
    let mut taxes = Vec::new();
    for (i, item) in invoice.items.iter().enumerate() {
        for (j, tax) in item.taxes.iter().enumerate() {
            let field = format!("items[{i}].taxes[{j}].value");
            taxes.extend(required_money(
                &field,
                tax.value.as_ref(),
                currency,
                &mut errors,
            ));
        }
    }
    let tax = Money::sum(currency, taxes)
        .map_err(|e| errors.push(FieldError::new("items", e.to_string())))
        .ok();
    match (total, tax) {
        (Some(total), Some(tax)) if errors.is_empty() => match total.checked_sub(tax) {
            Ok(untaxed) => Ok(InvoiceTotals {
                untaxed,
                tax,
                total,
            }),
            Err(e) => Err(Rejection(vec![FieldError::new("total", e.to_string())])),
        },
        _ => Err(Rejection(errors)),
    }
}

/// Where the invoice stands: `name` (`FV-1-318`, else the number), `total`, `balance`, the
/// latest `payments[].due_date`, and the state from the balance (zero: paid; the total: not
/// paid; else partial). Annulment is not read (its field is UNCONFIRMED), so `Reversed` never
/// comes from here.
pub fn invoice_status(invoice: &InvoiceOut) -> Result<InvoiceStatus, Rejection> {
    let mut errors = Vec::new();
    let currency = invoice.currency(&mut errors);
    let invoice_number =
        blank_to_none(invoice.name.as_deref()).or_else(|| invoice.number.map(|n| n.to_string()));
    if invoice_number.is_none() {
        errors.push(FieldError::new("name", "is required"));
    }
    let invoiced = required_money("total", invoice.total.as_ref(), currency, &mut errors);
    let outstanding = required_money("balance", invoice.balance.as_ref(), currency, &mut errors);
    let mut due_date = None;
    for (i, payment) in invoice.payments.iter().enumerate() {
        if payment
            .due_date
            .as_deref()
            .is_some_and(|d| !d.trim().is_empty())
        {
            let field = format!("payments[{i}].due_date");
            let date = parse_date(&field, payment.due_date.as_deref(), &mut errors);
            due_date = due_date.max(date);
        }
    }
    match (invoice_number, invoiced, outstanding) {
        (Some(invoice_number), Some(invoiced), Some(outstanding)) if errors.is_empty() => {
            let state = if outstanding.is_zero() || outstanding.is_negative() {
                PaymentState::Paid
            } else if outstanding == invoiced {
                PaymentState::NotPaid
            } else {
                PaymentState::Partial
            };
            Ok(InvoiceStatus {
                invoice_number,
                invoiced,
                outstanding,
                due_date,
                state,
            })
        }
        _ => Err(Rejection(errors)),
    }
}

// ---------------------------------------------------------------------------------------------
// Payments (recibos de caja, §3.10)
// ---------------------------------------------------------------------------------------------

/// `items[].due`: the invoice a payment line settles, by prefix and consecutive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    pub prefix: String,
    pub consecutive: i64,
    #[serde(default)]
    pub quote: Option<i64>,
    #[serde(default)]
    pub date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoucherItemOut {
    #[serde(default)]
    pub due: Option<Due>,
    #[serde(default)]
    pub value: Option<Value>,
}

/// A payment receipt as `GET /v1/payment-receipts` (or the `POST /v1/vouchers` response)
/// returns it. §3.10 documents the input fields and says the output adds `id`, `number`,
/// `name`, `balance`, `metadata`; that the output repeats `items[].due` and `date` is
/// UNCONFIRMED, as is the list endpoint's exact shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoucherOut {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub currency: Option<CurrencyOut>,
    #[serde(default)]
    pub items: Vec<VoucherItemOut>,
    #[serde(default)]
    pub observations: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// One canonical payment per invoice the receipt settles. The invoice is identified by its
/// Siigo name, `prefix-consecutive` (`FV-1-318`), because the receipt names no invoice GUID;
/// the payment id is the receipt's id, with `/n` (1-based) appended when it settles several
/// invoices. The reference is `observations` (the bank reference we write), else the receipt's
/// name. An advance payment (no items) settles nothing and gives no payments.
pub fn payments_from_voucher(voucher: &VoucherOut) -> Result<Vec<Payment>, Rejection> {
    let mut errors = Vec::new();
    let currency = match &voucher.currency {
        None => Currency::COP,
        Some(c) => Currency::parse(&c.code).unwrap_or_else(|_| {
            errors.push(FieldError::new("currency.code", "is not a known currency"));
            Currency::COP
        }),
    };
    let date = parse_date("date", voucher.date.as_deref(), &mut errors);
    let reference = blank_to_none(voucher.observations.as_deref())
        .or_else(|| blank_to_none(voucher.name.as_deref()));
    let several = voucher.items.len() > 1;
    let mut payments = Vec::new();
    for (i, item) in voucher.items.iter().enumerate() {
        let field = |name: &str| format!("items[{i}].{name}");
        let invoice = match &item.due {
            None => {
                errors.push(FieldError::new(field("due"), "is required"));
                None
            }
            Some(due) => ErpId::parse(&format!("{}-{}", due.prefix.trim(), due.consecutive))
                .map_err(|e| errors.push(FieldError::new(field("due.prefix"), e.to_string())))
                .ok(),
        };
        let amount = required_money(&field("value"), item.value.as_ref(), currency, &mut errors);
        let id = if several {
            format!("{}/{}", voucher.id, i + 1)
        } else {
            voucher.id.clone()
        };
        let id = ErpId::parse(&id)
            .map_err(|e| errors.push(FieldError::new("id", e.to_string())))
            .ok();
        if let (Some(id), Some(invoice), Some(amount), Some(date)) = (id, invoice, amount, date) {
            payments.push(Payment {
                id,
                invoice,
                amount,
                date,
                reference: reference.clone(),
            });
        }
    }
    if errors.is_empty() {
        Ok(payments)
    } else {
        Err(Rejection(errors))
    }
}

// ---------------------------------------------------------------------------------------------
// Products (§3.7, §3.11)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceListEntry {
    #[serde(default)]
    pub position: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductPrice {
    pub currency_code: String,
    #[serde(default)]
    pub price_list: Vec<PriceListEntry>,
}

/// A product as `GET /v1/products` (or a product webhook) sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductOut {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub taxes: Vec<TaxOut>,
    #[serde(default)]
    pub prices: Vec<ProductPrice>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// A canonical product: `code` as SKU, `type` `Product` as goods and `Service` as a service
/// (any other type, such as a combo, is rejected), the price in `currency` from the price list
/// at position 1 (else the first), the taxes' percentages, `active` (true when absent).
///
/// Siigo prices may carry up to 6 decimals; a price with more decimals than `currency` allows
/// (COP: 2) is rejected with the field named, never rounded.
pub fn product_from_wire(product: &ProductOut, currency: Currency) -> Result<Product, Rejection> {
    let mut errors = Vec::new();
    let sku = match blank_to_none(product.code.as_deref()) {
        None => {
            errors.push(FieldError::new("code", "is required"));
            None
        }
        Some(code) => Sku::parse(&code)
            .map_err(|e| errors.push(FieldError::new("code", e.to_string())))
            .ok(),
    };
    let name = blank_to_none(product.name.as_deref());
    if name.is_none() {
        errors.push(FieldError::new("name", "is required"));
    }
    let kind = match product.kind.as_deref().map(str::trim) {
        Some("Product") => Some(ProductKind::Goods),
        Some("Service") => Some(ProductKind::Service),
        _ => {
            errors.push(FieldError::new("type", "must be Product or Service"));
            None
        }
    };
    let price = product
        .prices
        .iter()
        .enumerate()
        .find(|(_, p)| p.currency_code.trim().eq_ignore_ascii_case(currency.code()));
    let list_price = match price {
        None => {
            errors.push(FieldError::new(
                "prices",
                format!("has no price in {currency}"),
            ));
            None
        }
        Some((i, price)) => {
            let entry = price
                .price_list
                .iter()
                .enumerate()
                .find(|(_, e)| e.position == Some(1))
                .or_else(|| price.price_list.iter().enumerate().next());
            match entry {
                None => {
                    errors.push(FieldError::new(
                        format!("prices[{i}].price_list"),
                        "is empty",
                    ));
                    None
                }
                Some((j, entry)) => required_money(
                    &format!("prices[{i}].price_list[{j}].value"),
                    entry.value.as_ref(),
                    currency,
                    &mut errors,
                ),
            }
        }
    };
    let mut taxes = Vec::new();
    for (i, tax) in product.taxes.iter().enumerate() {
        let field = format!("taxes[{i}].percentage");
        match &tax.percentage {
            None | Some(Value::Null) => errors.push(FieldError::new(field, "is required")),
            Some(value) => match Rate::percent_from_json(value) {
                Ok(rate) => taxes.push(rate),
                Err(e) => errors.push(FieldError::new(field, e.to_string())),
            },
        }
    }
    match (sku, name, kind, list_price) {
        (Some(sku), Some(name), Some(kind), Some(list_price)) if errors.is_empty() => Ok(Product {
            sku,
            name,
            kind,
            list_price,
            taxes,
            active: product.active.unwrap_or(true),
        }),
        _ => Err(Rejection(errors)),
    }
}

#[cfg(test)]
mod tests {
    //! Sample payloads are written from the field names in `connector-protocols.md` §3; none was
    //! captured from a real Siigo tenant. Ids, names and amounts are invented.

    use super::*;
    use crate::domain::Email;
    use crate::domain::invoice::InvoiceLine;
    use crate::domain::money::Quantity;
    use crate::mapping::customer::{CustomerRules, to_customer};
    use serde_json::json;

    /// Bogotá and Medellín, the two cities the samples use.
    struct Cities;

    impl CityCodes for Cities {
        fn codes_of(&self, city: &str, country: Country) -> Option<CityCode> {
            let (state, code) = match (country, city) {
                (Country::CO, "Bogotá") => ("11", "11001"),
                (Country::CO, "Medellín") => ("05", "05001"),
                _ => return None,
            };
            Some(CityCode {
                country_code: "CO".into(),
                state_code: state.into(),
                city_code: code.into(),
            })
        }

        fn name_of(&self, code: &CityCode) -> Option<String> {
            match (code.country_code.as_str(), code.city_code.as_str()) {
                ("CO", "11001") => Some("Bogotá".into()),
                ("CO", "05001") => Some("Medellín".into()),
                _ => None,
            }
        }
    }

    fn customer_out(value: Value) -> CustomerOut {
        serde_json::from_value(value).expect("a customer shape")
    }

    fn failed_fields(rejection: &Rejection) -> Vec<&str> {
        rejection
            .fields()
            .iter()
            .map(|e| e.field.as_str())
            .collect()
    }

    fn andina() -> Customer {
        Customer {
            kind: CustomerKind::Company,
            name: "Distribuidora Andina SAS".into(),
            tax_id: Some(TaxId::parse("900123456-8", Some(Country::CO)).expect("valid NIT")),
            email: Some(Email::parse("compras@andina.co").expect("valid email")),
            phone: Some(Phone::parse("+57 601 555 0101", None).expect("valid phone")),
            address: crate::domain::Address {
                street: Some("Cra. 7 # 71-21".into()),
                city: Some("Bogotá".into()),
                country: Some(Country::CO),
            },
        }
    }

    #[test]
    fn customers_read_into_customer_fields() {
        let company = json!({
            "id": "6b6ceb28-b2eb-4b98-b3dd-26648a933c81", "type": "Customer",
            "person_type": "Company", "id_type": {"code": "31", "name": "NIT"},
            "identification": "900123456", "check_digit": "8",
            "name": ["Distribuidora Andina SAS"],
            "address": {"address": "Cra. 7 # 71-21",
                        "city": {"country_code": "CO", "state_code": "11", "city_code": "11001"}},
            "phones": [{"indicative": "57", "number": "6015550101"}],
            "contacts": [{"first_name": "Laura", "last_name": "Gómez", "email": "compras@andina.co"}],
            "metadata": {"created": "2020-06-15T03:33:17.208Z", "last_updated": null}
        });
        let person = json!({
            "person_type": "Person", "id_type": "13", "identification": "1020304050",
            "name": ["Marcos", "Castillo"],
            "address": {"city": {"country_code": "CO", "state_code": "05", "city_code": "05001",
                                 "city_name": "Medellín"}},
            "contacts": [{"first_name": "Marcos", "phone": {"indicative": "57", "number": "3005550101"}}]
        });
        let cases = [
            (
                company,
                CustomerFields {
                    kind: Some(CustomerKind::Company),
                    name: Some("Distribuidora Andina SAS".into()),
                    tax_id: Some("900123456-8".into()),
                    email: Some("compras@andina.co".into()),
                    phone: Some("+57 6015550101".into()),
                    street: Some("Cra. 7 # 71-21".into()),
                    city: Some("Bogotá".into()),
                    country: Some("CO".into()),
                    ..CustomerFields::default()
                },
            ),
            (
                person,
                CustomerFields {
                    kind: Some(CustomerKind::Person),
                    name: Some("Marcos Castillo".into()),
                    // No check digit sent: computed with the DIAN algorithm.
                    tax_id: Some(format!("1020304050-{}", Nit::check_digit_of("1020304050"))),
                    email: None,
                    phone: Some("+57 3005550101".into()),
                    street: None,
                    city: Some("Medellín".into()),
                    country: Some("CO".into()),
                    ..CustomerFields::default()
                },
            ),
        ];
        for (payload, expected) in cases {
            let fields = customer_fields(&customer_out(payload), &Cities).expect("maps");
            assert_eq!(fields, expected);
        }
    }

    #[test]
    fn unmappable_customers_list_every_field_without_values() {
        let payload = json!({
            "person_type": "Cooperative", "id_type": "11", "identification": "99887766",
            "name": ["Ana"],
            "address": {"city": {"country_code": "CO", "state_code": "99", "city_code": "99999"}}
        });
        let rejection = customer_fields(&customer_out(payload), &Cities).expect_err("rejected");
        assert_eq!(
            failed_fields(&rejection),
            ["person_type", "address.city.city_code", "id_type"]
        );
        let text = rejection.to_string();
        assert!(
            !text.contains("99887766") && !text.contains("Ana"),
            "{text}"
        );

        let foreign_in_colombia = json!({
            "person_type": "Person", "id_type": "41", "identification": "AB123456",
            "name": ["Ana", "Silva"]
        });
        let rejection =
            customer_fields(&customer_out(foreign_in_colombia), &Cities).expect_err("rejected");
        assert_eq!(failed_fields(&rejection), ["id_type"]);
    }

    #[test]
    fn a_customer_becomes_a_create_body() {
        let body =
            customer_create_body(&andina(), &Cities, Some("hubspot-company-901")).expect("maps");
        let expected = json!({
            "type": "Customer", "person_type": "Company", "id_type": "31",
            "identification": "900123456", "check_digit": "8",
            "name": ["Distribuidora Andina SAS"], "branch_office": 0, "active": true,
            "vat_responsible": false, "fiscal_responsibilities": [{"code": "R-99-PN"}],
            "address": {"address": "Cra. 7 # 71-21",
                        "city": {"country_code": "CO", "state_code": "11", "city_code": "11001"}},
            "phones": [{"indicative": "57", "number": "6015550101"}],
            "contacts": [{"first_name": "Distribuidora Andina SAS", "email": "compras@andina.co",
                          "phone": {"indicative": "57", "number": "6015550101"}}],
            "comments": "hubspot-company-901"
        });
        assert_eq!(serde_json::to_value(&body).expect("serializes"), expected);
    }

    #[test]
    fn customers_siigo_cannot_take_are_rejected() {
        let cases = [
            (
                Customer {
                    tax_id: None,
                    ..andina()
                },
                vec!["tax_id"],
            ),
            (
                Customer {
                    tax_id: Some(TaxId::parse("GODE561231GR8", Some(Country::MX)).expect("RFC")),
                    address: crate::domain::Address {
                        city: Some("Atlantis".into()),
                        ..andina().address
                    },
                    ..andina()
                },
                vec!["tax_id", "address.city"],
            ),
            (
                Customer {
                    address: crate::domain::Address {
                        city: None,
                        ..andina().address
                    },
                    ..andina()
                },
                vec!["address.city"],
            ),
        ];
        for (customer, expected) in cases {
            let rejection = customer_create_body(&customer, &Cities, None).expect_err("rejected");
            assert_eq!(failed_fields(&rejection), expected);
            assert!(!rejection.to_string().contains("900123456"));
        }
    }

    #[test]
    fn customers_round_trip_through_siigo() {
        let person = Customer {
            kind: CustomerKind::Person,
            name: "Marcos Castillo Ruiz".into(),
            email: Some(Email::parse("marcos@example.co").expect("valid email")),
            phone: Some(Phone::parse("300 555 0101", Some(Country::CO)).expect("valid phone")),
            address: crate::domain::Address {
                street: None,
                city: Some("Medellín".into()),
                country: Some(Country::CO),
            },
            ..andina()
        };
        for customer in [andina(), person] {
            let body = customer_create_body(&customer, &Cities, None).expect("create body");
            let json = serde_json::to_value(&body).expect("serializes");
            let read: CustomerOut = serde_json::from_value(json).expect("reads as output");
            let fields = customer_fields(&read, &Cities).expect("fields");
            let back = to_customer(&fields, &CustomerRules::default()).expect("valid");
            assert_eq!(back, customer);
        }
    }

    fn cop(minor: i64) -> Money {
        Money::from_minor(minor, Currency::COP)
    }

    fn sales_invoice(reference: &str, lines: Vec<InvoiceLine>) -> SalesInvoice {
        SalesInvoice::new(
            reference.into(),
            ErpId::parse("6b6ceb28-b2eb-4b98-b3dd-26648a933c81").expect("id"),
            Currency::COP,
            Date::from_ymd(2025, 3, 14).expect("date"),
            Date::from_ymd(2025, 4, 13).ok(),
            lines,
        )
        .expect("valid invoice")
    }

    fn licence_line() -> InvoiceLine {
        InvoiceLine {
            sku: Some(Sku::parse("LIC-ERP-ANUAL").expect("sku")),
            description: "Licencia anual ERP".into(),
            quantity: Quantity::from_units(2),
            unit_price: cop(50_000_000),
            discount: Rate::ZERO,
            taxes: vec![Rate::from_percent(19)],
        }
    }

    const SETTINGS: InvoiceSettings = InvoiceSettings {
        document_id: 24446,
        seller_id: 629,
        payment_type_id: 5636,
    };

    fn siigo_tax(rate: Rate) -> Option<i64> {
        (rate == Rate::from_percent(19)).then_some(13156)
    }

    fn andina_key() -> CustomerKey {
        CustomerKey {
            identification: "900123456".into(),
            branch_office: 0,
        }
    }

    #[test]
    fn an_invoice_becomes_a_create_body() {
        let mut half = licence_line();
        half.sku = Some(Sku::parse("SOPORTE-HORA").expect("sku"));
        half.description = "Hora de soporte".into();
        half.quantity = Quantity::from_micros(1_500_000);
        half.unit_price = cop(8_333_333);
        half.discount = Rate::from_percent(10);
        let invoice = sales_invoice("hubspot-deal-5512", vec![licence_line(), half]);
        let body =
            invoice_create_body(&invoice, &andina_key(), &SETTINGS, siigo_tax).expect("maps");
        // Line 2: 1.5 × 83 333.33 × 0.9 = 112 499.9955 -> 112 500.00; IVA 21 375.00.
        let expected = json!({
            "document": {"id": 24446}, "date": "2025-03-14",
            "customer": {"identification": "900123456", "branch_office": 0},
            "seller": 629, "observations": "hubspot-deal-5512",
            "items": [
                {"code": "LIC-ERP-ANUAL", "description": "Licencia anual ERP", "quantity": 2,
                 "price": 500000, "discount": 0, "taxes": [{"id": 13156}]},
                {"code": "SOPORTE-HORA", "description": "Hora de soporte", "quantity": 1.5,
                 "price": 83333.33, "discount": 10, "taxes": [{"id": 13156}]}
            ],
            "payments": [{"id": 5636, "value": 1323875, "due_date": "2025-04-13"}]
        });
        assert_eq!(serde_json::to_value(&body).expect("serializes"), expected);
    }

    #[test]
    fn invoices_siigo_cannot_take_list_every_line() {
        let mut no_sku = licence_line();
        no_sku.sku = None;
        let mut unknown_tax = licence_line();
        unknown_tax.taxes = vec![Rate::from_percent(5)];
        let invoice = sales_invoice("x", vec![no_sku, unknown_tax]);
        let rejection = invoice_create_body(&invoice, &andina_key(), &SETTINGS, siigo_tax)
            .expect_err("rejected");
        assert_eq!(
            failed_fields(&rejection),
            ["lines[0].sku", "lines[1].taxes"]
        );
    }

    #[test]
    fn idempotency_keys_fit_siigo_and_are_stable() {
        assert_eq!(idempotency_key("HSDEAL5512INV1"), "HSDEAL5512INV1");
        for reference in [
            "hubspot-deal-5512",
            "HSDEAL5512INV1HSDEAL5512INV1HSD",
            "",
            "factura ñandú",
        ] {
            let key = idempotency_key(reference);
            assert_eq!(key.len(), IDEMPOTENCY_KEY_MAX, "{reference}");
            assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
            assert_eq!(key, idempotency_key(reference));
        }
        assert_ne!(
            idempotency_key("hubspot-deal-1"),
            idempotency_key("hubspot-deal-2")
        );
        // Dropping separators would make these collide; hashing does not.
        assert_ne!(idempotency_key("a-b"), idempotency_key("ab"));
    }

    fn invoice_out(total: Value, balance: Value) -> InvoiceOut {
        serde_json::from_value(json!({
            "id": "63f918c2-ca65-4edc-a7db-66bcdd5159fb", "document": {"id": 24446},
            "number": 318, "name": "FV-1-318", "date": "2025-03-14",
            "customer": {"identification": "900123456", "branch_office": 0},
            "total": total, "balance": balance, "seller": 629,
            "items": [{"code": "LIC-ERP-ANUAL", "quantity": 2, "price": 500000,
                       "taxes": [{"id": 13156, "name": "IVA 19%", "type": "IVA",
                                  "percentage": 19, "value": 190000}],
                       "total": 1190000}],
            "payments": [{"id": 5636, "name": "Crédito", "value": 1190000,
                          "due_date": "2025-04-13"}],
            "stamp": {"status": "Accepted"},
            "metadata": {"created": "2025-03-14T15:02:11.208Z", "last_updated": null}
        }))
        .expect("an invoice shape")
    }

    #[test]
    fn invoices_read_into_totals_and_status() {
        let invoice = invoice_out(json!(1190000), json!(1190000));
        assert_eq!(
            invoice_totals(&invoice),
            Ok(InvoiceTotals {
                untaxed: cop(100_000_000),
                tax: cop(19_000_000),
                total: cop(119_000_000),
            })
        );
        let cases = [
            (json!(1190000), PaymentState::NotPaid),
            (json!(190000.5), PaymentState::Partial),
            (json!(0), PaymentState::Paid),
        ];
        for (balance, state) in cases {
            let status =
                invoice_status(&invoice_out(json!(1190000), balance.clone())).expect("status");
            assert_eq!(status.state, state, "{balance}");
            assert_eq!(status.invoice_number, "FV-1-318");
            assert_eq!(status.due_date, Date::from_ymd(2025, 4, 13).ok());
        }
        assert_eq!(
            invoice.metadata.created_at().expect("timestamp"),
            Timestamp::parse_rfc3339("2025-03-14T15:02:11.208Z").ok()
        );
        assert_eq!(invoice.metadata.last_updated_at(), Ok(None));
    }

    #[test]
    fn amounts_with_too_many_decimals_are_rejected_not_rounded() {
        let invoice = invoice_out(json!(1190000.125), json!("many"));
        let rejection = invoice_status(&invoice).expect_err("rejected");
        assert_eq!(failed_fields(&rejection), ["total", "balance"]);
    }

    #[test]
    fn vouchers_read_into_payments() {
        let voucher: VoucherOut = serde_json::from_value(json!({
            "id": "0b7c5a1e-1111-4a2b-9c3d-000000000042", "number": 22, "name": "RC-2-22",
            "document": {"id": 7714}, "date": "2025-03-20", "type": "DebtPayment",
            "customer": {"identification": "900123456", "branch_office": 0},
            "items": [
                {"due": {"prefix": "FV-1", "consecutive": 318, "quote": 1, "date": "2025-04-13"},
                 "value": 1000000},
                {"due": {"prefix": "FV-1", "consecutive": 319, "quote": 1}, "value": 190000.5}
            ],
            "payment": {"id": 5637, "value": 1190000.5}, "observations": "PSE-88812345"
        }))
        .expect("a voucher shape");
        let payments = payments_from_voucher(&voucher).expect("maps");
        let summary: Vec<(String, String, i64, Option<String>)> = payments
            .iter()
            .map(|p| {
                (
                    p.id.to_string(),
                    p.invoice.to_string(),
                    p.amount.minor(),
                    p.reference.clone(),
                )
            })
            .collect();
        let reference = Some("PSE-88812345".to_owned());
        assert_eq!(
            summary,
            [
                (
                    "0b7c5a1e-1111-4a2b-9c3d-000000000042/1".to_owned(),
                    "FV-1-318".to_owned(),
                    100_000_000,
                    reference.clone()
                ),
                (
                    "0b7c5a1e-1111-4a2b-9c3d-000000000042/2".to_owned(),
                    "FV-1-319".to_owned(),
                    19_000_050,
                    reference
                ),
            ]
        );
        assert!(
            payments
                .iter()
                .all(|p| p.date == Date::from_ymd(2025, 3, 20).expect("date"))
        );
    }

    #[test]
    fn broken_vouchers_name_every_field() {
        let voucher: VoucherOut = serde_json::from_value(json!({
            "id": "v1", "date": "20/03/2025",
            "items": [{"value": 1}, {"due": {"prefix": "FV-1", "consecutive": 1}, "value": 0.001}]
        }))
        .expect("a voucher shape");
        let rejection = payments_from_voucher(&voucher).expect_err("rejected");
        assert_eq!(
            failed_fields(&rejection),
            ["date", "items[0].due", "items[1].value"]
        );
    }

    fn product(prices: Value, kind: &str) -> ProductOut {
        serde_json::from_value(json!({
            "id": "a1b2c3d4-0000-4000-8000-000000000001", "code": "LIC-ERP-ANUAL",
            "name": "Licencia anual ERP", "type": kind, "active": true,
            "taxes": [{"id": 13156, "name": "IVA 19%", "type": "IVA", "percentage": 19}],
            "prices": prices
        }))
        .expect("a product shape")
    }

    #[test]
    fn products_read_into_canonical_products() {
        let prices = json!([
            {"currency_code": "USD", "price_list": [{"position": 1, "name": "USD", "value": 120}]},
            {"currency_code": "COP", "price_list": [
                {"position": 2, "name": "Mayorista", "value": 450000},
                {"position": 1, "name": "Precio de venta 1", "value": 500000.5}]}
        ]);
        let cases = [
            ("Product", ProductKind::Goods),
            ("Service", ProductKind::Service),
        ];
        for (kind, expected) in cases {
            let mapped =
                product_from_wire(&product(prices.clone(), kind), Currency::COP).expect("maps");
            assert_eq!(
                mapped,
                Product {
                    sku: Sku::parse("LIC-ERP-ANUAL").expect("sku"),
                    name: "Licencia anual ERP".into(),
                    kind: expected,
                    list_price: cop(50_000_050),
                    taxes: vec![Rate::from_percent(19)],
                    active: true,
                }
            );
        }
    }

    #[test]
    fn prices_beyond_the_currency_precision_are_rejected() {
        // Siigo allows 6 decimals in prices; COP has 2, and rounding would change the price.
        let prices = json!([{"currency_code": "COP",
                             "price_list": [{"position": 1, "value": 1069.774}]}]);
        let rejection = product_from_wire(&product(prices, "ComboProduct"), Currency::COP)
            .expect_err("rejected");
        assert_eq!(
            failed_fields(&rejection),
            ["type", "prices[0].price_list[0].value"]
        );
        let no_cop = json!([{"currency_code": "USD", "price_list": [{"position": 1, "value": 1}]}]);
        let rejection =
            product_from_wire(&product(no_cop, "Product"), Currency::COP).expect_err("rejected");
        assert_eq!(failed_fields(&rejection), ["prices"]);
    }

    #[test]
    fn error_bodies_read_in_either_casing() {
        let cases = [
            json!({"Status": 400, "Errors": [{"Code": "parameter_required",
                   "Message": "The field code is required", "Params": ["code"],
                   "Detail": "Check the API documentation"}]}),
            json!({"status": 400, "errors": [{"code": "parameter_required",
                   "message": "The field code is required", "params": ["code"]}]}),
        ];
        for body in cases {
            let parsed: ErrorBody = serde_json::from_value(body).expect("an error shape");
            assert_eq!(parsed.status, Some(400));
            assert_eq!(parsed.codes().collect::<Vec<_>>(), ["parameter_required"]);
            assert_eq!(parsed.errors[0].params, ["code"]);
            assert!(!parsed.is_retryable());
        }
        let throttled: ErrorBody =
            serde_json::from_value(json!({"Errors": [{"Code": "requests_limit"}]}))
                .expect("an error shape");
        assert!(throttled.is_retryable());
    }

    #[test]
    fn list_envelopes_give_results_and_the_next_page() {
        let page: Page<CustomerOut> = serde_json::from_value(json!({
            "pagination": {"page": 1, "page_size": 25, "total_results": 253},
            "results": [{"person_type": "Company", "name": ["Andina"]}],
            "_links": {
                "previous": {"href": "https://api.siigo.com/v1/customers?page=0&page_size=25"},
                "self": {"href": "https://api.siigo.com/v1/customers?page=1&page_size=25"},
                "next": {"href": "https://api.siigo.com/v1/customers?page=2&page_size=25"}
            }
        }))
        .expect("a page");
        assert_eq!(page.pagination.total_results, 253);
        assert_eq!(page.results.len(), 1);
        assert_eq!(
            page.next_href(),
            Some("https://api.siigo.com/v1/customers?page=2&page_size=25")
        );
        let last: Page<CustomerOut> = serde_json::from_value(json!({
            "pagination": {"page": 11, "page_size": 25, "total_results": 253}, "results": []
        }))
        .expect("a page");
        assert_eq!(last.next_href(), None);
    }
}
