//! Odoo's JSON-RPC envelope, and Odoo's records (as `read`/`search_read` return them: `false`
//! for empty, many2one as `[id, "name"]`) to and from the canonical types: `res.partner` here,
//! `account.move` in `invoice`, `account.payment` in `payment`, `product.product` in `product`.
//! Each read has its field list (`PARTNER_FIELDS`, `INVOICE_FIELDS`, ...); a record that cannot
//! be mapped is a `Rejection` naming every failing Odoo field, never its value.

mod document;
mod invoice;
mod payment;
mod product;
mod record;

pub use document::{DocumentModel, document, sale_order_values};
pub use invoice::{
    INVOICE_FIELDS, OUT_INVOICE, invoice_status, invoice_totals, invoice_values, payment_state,
};
pub use payment::{PAYMENT_FIELDS, PAYMENT_FIELDS_BEFORE_18, PaymentRead, payment};
pub use product::{PRODUCT_FIELDS, priced_product, product};

use crate::domain::{Country, Customer, CustomerKind, Rejection};
use crate::mapping::customer::CustomerFields;
use crate::mapping::ownership::{CustomerField, SyncFields};
use record::Problems;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The JSON-RPC envelope of `/jsonrpc` and of the `/web/...` routes alike.
#[derive(Debug, Serialize)]
pub struct RpcRequest<P> {
    pub jsonrpc: &'static str,
    pub method: &'static str,
    pub id: u64,
    pub params: P,
}

impl<P> RpcRequest<P> {
    /// Request number `id`, calling with `params`.
    pub fn call(id: u64, params: P) -> Self {
        Self {
            jsonrpc: "2.0",
            method: "call",
            id,
            params,
        }
    }
}

/// `/jsonrpc`'s params: a service (`common`, `object`) and its method's positional arguments.
#[derive(Debug, Serialize)]
pub struct RpcParams<'a> {
    pub service: &'a str,
    pub method: &'a str,
    pub args: Value,
}

/// `object.execute_kw` on `/jsonrpc`: the database and credentials on every call, then the
/// model's method with its positional and keyword arguments.
pub fn execute_kw(
    database: &str,
    uid: i64,
    api_key: &str,
    model: &str,
    method: &str,
    args: Value,
    kwargs: Value,
) -> RpcParams<'static> {
    RpcParams {
        service: "object",
        method: "execute_kw",
        args: json!([database, uid, api_key, model, method, args, kwargs]),
    }
}

/// `/web/session/authenticate`'s params.
#[derive(Serialize)]
pub struct SessionLogin<'a> {
    pub db: &'a str,
    pub login: &'a str,
    pub password: &'a str,
}

impl std::fmt::Debug for SessionLogin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLogin")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// What `/web/session/authenticate` answers (`session_info`; other fields are not needed).
/// `uid` is null when the user has two-factor authentication, which this login cannot pass.
#[derive(Debug, Deserialize)]
pub struct SessionInfo {
    #[serde(default)]
    pub uid: Value,
}

/// The cookie `/web/session/authenticate` sets and every `/web/...` call must send.
pub const SESSION_COOKIE: &str = "session_id";

/// `/web/dataset/call_kw`'s params: the same model, method, args and kwargs as `execute_kw`.
#[derive(Debug, Serialize)]
pub struct CallKw<'a> {
    pub model: &'a str,
    pub method: &'a str,
    pub args: &'a Value,
    pub kwargs: &'a Value,
}

/// Errors arrive inside HTTP 200, in `error`.
#[derive(Debug, Deserialize)]
pub struct RpcResponse {
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<RpcError>,
}

#[derive(Debug, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default)]
    pub data: Option<RpcErrorData>,
}

#[derive(Debug, Deserialize)]
pub struct RpcErrorData {
    /// The exception's class, e.g. `odoo.exceptions.ValidationError`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub message: String,
}

/// Fields read back to compare with what we would write.
pub const PARTNER_FIELDS: [&str; 9] = [
    "id",
    "name",
    "is_company",
    "vat",
    "email",
    "phone",
    "street",
    "city",
    "country_id",
];

/// The `res.partner` values for a customer. Only fields with a value are written: a value the
/// source lacks is never blanked in the ERP.
pub fn partner_values(customer: &Customer, country_id: Option<i64>) -> Map<String, Value> {
    let mut vals = Map::new();
    vals.insert("name".into(), json!(customer.name));
    vals.insert(
        "is_company".into(),
        json!(customer.kind == CustomerKind::Company),
    );
    let mut put = |field: &str, value: Option<String>| {
        if let Some(v) = value {
            vals.insert(field.into(), json!(v));
        }
    };
    put("vat", customer.tax_id.as_ref().map(|t| t.storage()));
    put("email", customer.email.as_ref().map(|e| e.to_string()));
    put("phone", customer.phone.as_ref().map(|p| p.to_string()));
    put("street", customer.address.street.clone());
    put("city", customer.address.city.clone());
    if let Some(id) = country_id {
        vals.insert("country_id".into(), json!(id));
    }
    vals
}

/// The `res.partner` create values of a new customer: `vals` (from `partner_writes` or
/// `partner_values`), the company flag when `kind` is given, the reference to the record it was
/// created from, and the customer rank that makes it a customer.
pub fn new_partner(
    mut vals: Map<String, Value>,
    kind: Option<CustomerKind>,
    reference: &str,
) -> Map<String, Value> {
    if let Some(kind) = kind {
        vals.insert("is_company".into(), json!(kind == CustomerKind::Company));
    }
    vals.insert("ref".into(), json!(reference));
    vals.insert("customer_rank".into(), json!(1));
    vals
}

/// Fields the two-way customer sync reads: the mapped ones, the ERP-owned terms, our reference,
/// when the partner was last written, and whether it is a customer.
pub const PARTNER_SYNC_FIELDS: [&str; 14] = [
    "id",
    "name",
    "is_company",
    "vat",
    "email",
    "phone",
    "street",
    "city",
    "country_id",
    "credit_limit",
    "property_payment_term_id",
    "ref",
    "write_date",
    "customer_rank",
];

/// The `res.partner` values that write exactly `fields` (synced customer fields in canonical
/// form); the country and the payment terms as the ids the caller looked up.
pub fn partner_writes(
    fields: &SyncFields,
    country_id: Option<i64>,
    payment_term_id: Option<i64>,
) -> Map<String, Value> {
    let mut vals = Map::new();
    for (field, value) in fields.iter() {
        let (name, value) = match field {
            CustomerField::Name => ("name", json!(value)),
            CustomerField::Email => ("email", json!(value)),
            CustomerField::Phone => ("phone", json!(value)),
            CustomerField::TaxId => ("vat", json!(value)),
            CustomerField::Street => ("street", json!(value)),
            CustomerField::City => ("city", json!(value)),
            CustomerField::Country => match country_id {
                Some(id) => ("country_id", json!(id)),
                None => continue,
            },
            CustomerField::CreditLimit => match record::exact_float(value) {
                Some(amount) => ("credit_limit", amount),
                None => continue,
            },
            CustomerField::PaymentTerms => match payment_term_id {
                Some(id) => ("property_payment_term_id", json!(id)),
                None => continue,
            },
        };
        vals.insert(name.into(), value);
    }
    vals
}

/// Whether a partner read with `PARTNER_FIELDS` already holds `vals`. Many2one fields are read
/// as `[id, "name"]` and written as `id`.
pub fn partner_matches(read: &Map<String, Value>, vals: &Map<String, Value>) -> bool {
    vals.iter().all(|(field, wanted)| {
        let current = match read.get(field) {
            Some(Value::Array(pair)) => pair.first().cloned().unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        &current == wanted
    })
}

/// A partner read with `PARTNER_FIELDS`, as text fields for `mapping::customer::to_customer`
/// (the ERP -> CRM direction). `false` is no value; `is_company` gives the kind (absent: none);
/// the country comes from `country` (the caller's `res.country` id -> country table), or else
/// from the many2one's display name, which `to_customer` parses as a country name.
pub fn partner_fields(
    partner: &Map<String, Value>,
    country: impl Fn(i64) -> Option<Country>,
) -> Result<CustomerFields, Rejection> {
    let mut problems = Problems::default();
    let kind = match partner.get("is_company") {
        None => None,
        Some(Value::Bool(true)) => Some(CustomerKind::Company),
        Some(Value::Bool(false)) => Some(CustomerKind::Person),
        Some(_) => {
            problems.push("is_company", "is not a boolean");
            None
        }
    };
    let country = problems.many2one(partner, "country_id").and_then(|c| {
        country(c.id)
            .map(|country| country.code().to_owned())
            .or(c.name)
    });
    let credit_limit = match partner.get("credit_limit") {
        // Odoo's default 0 means no limit was set: no value, not a limit of zero.
        None | Some(Value::Bool(false)) => None,
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => None,
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            problems.push("credit_limit", "is not a number");
            None
        }
    };
    let payment_terms = problems
        .many2one(partner, "property_payment_term_id")
        .and_then(|terms| terms.name);
    let fields = CustomerFields {
        kind,
        name: problems.text(partner, "name"),
        tax_id: problems.text(partner, "vat"),
        email: problems.text(partner, "email"),
        phone: problems.text(partner, "phone"),
        street: problems.text(partner, "street"),
        city: problems.text(partner, "city"),
        country,
        credit_limit,
        payment_terms,
        origin: problems.text(partner, "ref"),
    };
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(Rejection(problems.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, Country, TaxId};

    fn customer() -> Customer {
        Customer {
            kind: CustomerKind::Company,
            name: "Distribuidora Andina SAS".into(),
            tax_id: TaxId::parse("900123456-8", Some(Country::CO)).ok(),
            email: None,
            phone: None,
            address: Address {
                city: Some("Bogotá".into()),
                ..Address::default()
            },
        }
    }

    #[test]
    fn only_fields_with_values_are_written() {
        let vals = partner_values(&customer(), Some(49));
        assert_eq!(
            Value::Object(vals),
            json!({"name": "Distribuidora Andina SAS", "is_company": true, "vat": "900123456-8",
                   "city": "Bogotá", "country_id": 49})
        );
    }

    #[test]
    fn a_read_partner_matches_when_every_written_field_is_equal() {
        let vals = partner_values(&customer(), Some(49));
        let read = json!({"id": 7, "name": "Distribuidora Andina SAS", "is_company": true,
            "vat": "900123456-8", "email": false, "city": "Bogotá", "country_id": [49, "Colombia"]});
        let Value::Object(read) = read else {
            unreachable!()
        };
        assert!(partner_matches(&read, &vals));
        let mut renamed = read.clone();
        renamed.insert("name".into(), json!("Andina"));
        assert!(!partner_matches(&renamed, &vals));
    }

    fn countries(id: i64) -> Option<Country> {
        (id == 49).then_some(Country::CO)
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("a JSON object literal")
    }

    #[test]
    fn partners_are_read_with_false_as_no_value() {
        let fields = |kind, name: &str, vat: Option<&str>, country: Option<&str>| CustomerFields {
            kind,
            name: Some(name.into()),
            tax_id: vat.map(Into::into),
            country: country.map(Into::into),
            ..CustomerFields::default()
        };
        let cases = [
            (
                json!({"id": 7, "name": "Distribuidora Andina SAS", "is_company": true,
                       "vat": "900123456-8", "email": false, "phone": false, "street": false,
                       "city": false, "country_id": [49, "Colombia"]}),
                fields(
                    Some(CustomerKind::Company),
                    "Distribuidora Andina SAS",
                    Some("900123456-8"),
                    Some("CO"),
                ),
            ),
            (
                json!({"id": 8, "name": "Ana Pérez", "is_company": false, "vat": false,
                       "country_id": false}),
                fields(Some(CustomerKind::Person), "Ana Pérez", None, None),
            ),
            (
                // A country missing from the caller's table falls back to its display name.
                json!({"id": 9, "name": "Comercial Lima SAC", "country_id": [173, "Perú"]}),
                fields(None, "Comercial Lima SAC", None, Some("Perú")),
            ),
        ];
        for (record, expected) in cases {
            assert_eq!(
                partner_fields(&object(record.clone()), countries),
                Ok(expected),
                "{record}"
            );
        }
    }

    #[test]
    fn malformed_partner_fields_are_all_rejected_without_values() {
        let record = object(json!({"id": 7, "name": ["Andina"], "is_company": "yes",
            "email": {"x": "compras@andina.co"}, "country_id": "Colombia"}));
        let rejection = partner_fields(&record, countries).expect_err("malformed");
        let failed: Vec<&str> = rejection
            .fields()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(failed, ["is_company", "country_id", "name", "email"]);
        let text = rejection.to_string();
        assert!(
            !text.contains("andina") && !text.contains("Colombia"),
            "{text}"
        );
    }

    #[test]
    fn customers_round_trip_through_partner_values_and_a_read() {
        use crate::domain::{Email, Phone};
        use crate::mapping::customer::{CustomerRules, to_customer};
        let full = Customer {
            email: Email::parse("compras@andina.co").ok(),
            phone: Phone::parse("601 234 5678", Some(Country::CO)).ok(),
            address: Address {
                street: Some("Cra 7 # 71-21".into()),
                city: Some("Bogotá".into()),
                country: Some(Country::CO),
            },
            ..customer()
        };
        let person = Customer {
            kind: CustomerKind::Person,
            name: "Ana Pérez".into(),
            tax_id: None,
            ..full.clone()
        };
        for original in [full, person] {
            let vals = partner_values(&original, Some(49));
            // What Odoo reads back: every requested field, `false` where nothing was written,
            // the country as a many2one pair.
            let mut read = Map::new();
            read.insert("id".into(), json!(7));
            for field in PARTNER_FIELDS.iter().filter(|f| **f != "id") {
                let value = match (*field, vals.get(*field)) {
                    ("country_id", Some(id)) => json!([id, "Colombia"]),
                    (_, Some(value)) => value.clone(),
                    (_, None) => json!(false),
                };
                read.insert((*field).into(), value);
            }
            assert!(partner_matches(&read, &vals));
            let fields = partner_fields(&read, countries).expect("readable");
            let rules = CustomerRules {
                default_country: None,
                ..CustomerRules::default()
            };
            assert_eq!(to_customer(&fields, &rules), Ok(original));
        }
    }
}
