//! Record ids, one newtype per side of the hub, so a CRM id can never be passed where an ERP id
//! is expected. The concrete system behind each side is configuration, not a type.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! record_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Any non-blank id without control characters, trimmed.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                let id = raw.trim();
                if id.is_empty() {
                    return Err(IdError::Blank);
                }
                if id.len() > 128 || id.chars().any(char::is_control) {
                    return Err(IdError::Malformed);
                }
                Ok(Self(id.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Blank,
    #[error("must be at most 128 characters without control characters")]
    Malformed,
}

record_id!(
    /// A record id in the CRM (a HubSpot object id, for example).
    CrmId
);
record_id!(
    /// A record id in the ERP (an Odoo database id, a SAP CardCode or DocEntry, a Siigo UUID).
    ErpId
);
record_id!(
    /// A product's stock-keeping unit, the key both sides share for products.
    Sku
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_trimmed_and_blank_ones_rejected() {
        assert_eq!(
            CrmId::parse(" 901 ").map(|id| id.to_string()),
            Ok("901".to_owned())
        );
        assert_eq!(ErpId::parse("  "), Err(IdError::Blank));
        assert_eq!(Sku::parse("LIC-\u{7}"), Err(IdError::Malformed));
    }

    #[test]
    fn ids_round_trip_through_serde() {
        let id = ErpId::parse("C000123").expect("valid");
        let json = serde_json::to_string(&id).expect("serialise");
        assert_eq!(json, "\"C000123\"");
        assert_eq!(serde_json::from_str::<ErpId>(&json).expect("parse"), id);
        assert!(serde_json::from_str::<ErpId>("\"\"").is_err());
    }
}
