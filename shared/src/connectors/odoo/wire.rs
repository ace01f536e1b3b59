//! Odoo's JSON-RPC envelope and the `res.partner` fields the customer flow writes.

use crate::domain::{Customer, CustomerKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Serialize)]
pub struct RpcRequest<'a> {
    pub jsonrpc: &'static str,
    pub method: &'static str,
    pub id: u64,
    pub params: RpcParams<'a>,
}

#[derive(Debug, Serialize)]
pub struct RpcParams<'a> {
    pub service: &'a str,
    pub method: &'a str,
    pub args: Value,
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
}
