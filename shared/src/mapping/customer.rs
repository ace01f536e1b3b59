//! From a source's customer fields, as text, to a validated canonical `Customer`.
//!
//! Every field is checked and every failure is reported, so one rejection lists all that is
//! wrong with the record. An absent field and a blank one both mean "no value"; a present but
//! invalid one is a rejection, never silently dropped.

use crate::domain::{
    Address, Country, Customer, CustomerKind, Email, EntityRef, FieldError, Phone, Rejection,
    TaxId, text,
};
use crate::mapping::ownership::CustomerField;

/// A customer record as a source system holds it: text fields, not yet validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFields {
    pub kind: Option<CustomerKind>,
    pub name: Option<String>,
    pub tax_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// The most the customer may owe, as decimal text in the ERP's company currency.
    pub credit_limit: Option<String>,
    /// The payment terms' name (`30 Días`).
    pub payment_terms: Option<String>,
    /// The reference the record carries to the record in the other system it was created from
    /// (`odoo-partner-42` on a CRM company), when any. Not a synced field.
    pub origin: Option<String>,
}

impl CustomerFields {
    /// The raw value of a synced field.
    pub fn slot(&mut self, field: CustomerField) -> &mut Option<String> {
        match field {
            CustomerField::Name => &mut self.name,
            CustomerField::Email => &mut self.email,
            CustomerField::Phone => &mut self.phone,
            CustomerField::TaxId => &mut self.tax_id,
            CustomerField::Street => &mut self.street,
            CustomerField::City => &mut self.city,
            CustomerField::Country => &mut self.country,
            CustomerField::CreditLimit => &mut self.credit_limit,
            CustomerField::PaymentTerms => &mut self.payment_terms,
        }
    }
}

/// Rules that depend on the deployment, not on the record.
#[derive(Debug, Clone)]
pub struct CustomerRules {
    /// Country assumed when the record has none (tax id and phone rules depend on it).
    pub default_country: Option<Country>,
    /// Whether a customer without a tax id is rejected.
    pub require_tax_id: bool,
}

impl Default for CustomerRules {
    fn default() -> Self {
        Self {
            default_country: Some(Country::CO),
            require_tax_id: false,
        }
    }
}

const MAX_NAME_CHARS: usize = 255;

/// Validates `fields` into a canonical customer, or lists every field that is wrong.
pub fn to_customer(fields: &CustomerFields, rules: &CustomerRules) -> Result<Customer, Rejection> {
    let mut errors = Vec::new();
    let present = |v: &Option<String>| v.as_deref().and_then(text::clean);

    let name = match present(&fields.name) {
        None => {
            errors.push(FieldError::new("name", "is required"));
            None
        }
        Some(n) if n.chars().count() > MAX_NAME_CHARS => {
            errors.push(FieldError::new("name", "is longer than 255 characters"));
            None
        }
        Some(n) => Some(n),
    };

    let country = match present(&fields.country) {
        None => rules.default_country,
        Some(raw) => match Country::parse(&raw) {
            Some(c) => Some(c),
            None => {
                errors.push(FieldError::new(
                    "country",
                    "is not an ISO 3166-1 code or a known country name",
                ));
                None
            }
        },
    };

    let tax_id = match present(&fields.tax_id) {
        None if rules.require_tax_id => {
            errors.push(FieldError::new("tax_id", "is required"));
            None
        }
        None => None,
        Some(raw) => TaxId::parse(&raw, country)
            .map_err(|e| errors.push(FieldError::new("tax_id", e.to_string())))
            .ok(),
    };

    let email = present(&fields.email).and_then(|raw| {
        Email::parse(&raw)
            .map_err(|e| errors.push(FieldError::new("email", e.to_string())))
            .ok()
    });

    let phone = present(&fields.phone).and_then(|raw| {
        Phone::parse(&raw, country)
            .map_err(|e| errors.push(FieldError::new("phone", e.to_string())))
            .ok()
    });

    match name {
        Some(name) if errors.is_empty() => Ok(Customer {
            kind: fields.kind.unwrap_or(CustomerKind::Company),
            name,
            tax_id,
            email,
            phone,
            address: Address {
                street: present(&fields.street),
                city: present(&fields.city),
                country,
            },
        }),
        _ => Err(Rejection(errors)),
    }
}

/// The reference a target record carries to say which source record it mirrors, so a retry
/// finds the record it created instead of creating another (e.g. `hubspot-company-901`).
pub fn external_reference(source: &EntityRef, source_kind: &str) -> String {
    format!("{}-{}-{}", source.system, source_kind, source.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::System;

    fn andina() -> CustomerFields {
        CustomerFields {
            kind: None,
            name: Some(" Distribuidora  Andina SAS ".into()),
            tax_id: Some("900.123.456-8".into()),
            email: Some("Compras@Andina.co".into()),
            phone: Some("601 234 5678".into()),
            street: Some("Cra 7 # 71-21".into()),
            city: Some("Bogota\u{301}".into()),
            country: Some("Colombia".into()),
            ..CustomerFields::default()
        }
    }

    #[test]
    fn a_valid_company_maps_with_normalised_fields() {
        let customer = to_customer(&andina(), &CustomerRules::default()).expect("valid");
        assert_eq!(customer.name, "Distribuidora Andina SAS");
        assert_eq!(
            customer.tax_id.map(|t| t.storage()).as_deref(),
            Some("900123456-8")
        );
        assert_eq!(
            customer.email.map(|e| e.to_string()).as_deref(),
            Some("compras@andina.co")
        );
        assert_eq!(
            customer.phone.map(|p| p.to_string()).as_deref(),
            Some("+576012345678")
        );
        assert_eq!(customer.address.city.as_deref(), Some("Bogotá"));
        assert_eq!(customer.address.country, Some(Country::CO));
        assert_eq!(customer.kind, CustomerKind::Company);
    }

    #[test]
    fn every_invalid_field_is_reported_without_its_value() {
        let fields = CustomerFields {
            name: Some("   ".into()),
            tax_id: Some("900123456-7".into()),
            email: Some("ana@@x".into()),
            phone: Some("abc".into()),
            ..andina()
        };
        let rejection = to_customer(&fields, &CustomerRules::default()).expect_err("invalid");
        let failed: Vec<&str> = rejection
            .fields()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(failed, ["name", "tax_id", "email", "phone"]);
        let text = rejection.to_string();
        assert!(
            text.contains("tax_id: check digit should be 8, got 7"),
            "{text}"
        );
        assert!(
            !text.contains("900123456"),
            "reasons must not echo values: {text}"
        );
    }

    #[test]
    fn blank_optional_fields_are_no_value_not_errors() {
        let fields = CustomerFields {
            tax_id: Some(" ".into()),
            email: None,
            phone: Some(String::new()),
            ..andina()
        };
        let customer = to_customer(&fields, &CustomerRules::default()).expect("valid");
        assert_eq!(
            (customer.tax_id, customer.email, customer.phone),
            (None, None, None)
        );
    }

    #[test]
    fn a_missing_country_uses_the_default_and_its_tax_rules() {
        let fields = CustomerFields {
            country: None,
            tax_id: Some("900123456-7".into()),
            ..andina()
        };
        let rejection = to_customer(&fields, &CustomerRules::default()).expect_err("bad NIT");
        assert_eq!(rejection.fields()[0].field, "tax_id");
    }

    #[test]
    fn a_required_tax_id_must_be_present() {
        let rules = CustomerRules {
            require_tax_id: true,
            ..CustomerRules::default()
        };
        let fields = CustomerFields {
            tax_id: None,
            ..andina()
        };
        assert_eq!(
            to_customer(&fields, &rules).expect_err("missing").fields(),
            [FieldError::new("tax_id", "is required")]
        );
    }

    #[test]
    fn references_name_the_source_record() {
        let source = EntityRef::new(System::named("hubspot"), "901");
        assert_eq!(
            external_reference(&source, "company"),
            "hubspot-company-901"
        );
    }
}
