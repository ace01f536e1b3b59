//! Canonical types: what a customer, a contact, a product, an invoice, a payment or a change
//! event *is* for puente, whatever system it came from. Constructors parse and validate, so a
//! value of these types is valid; no type here names a vendor.

pub mod contact;
pub mod country;
pub mod customer;
pub mod datetime;
pub mod deal;
pub mod email;
pub mod event;
pub mod ids;
pub mod invoice;
pub mod money;
pub mod payment;
pub mod phone;
pub mod product;
pub mod reference;
pub mod tax_id;
pub mod text;
pub mod validation;

pub use country::Country;
pub use customer::{Address, Customer, CustomerKind};
pub use datetime::{Date, Timestamp, ZoneOffset};
pub use email::Email;
pub use event::{ChangeEvent, Entity};
pub use ids::{CrmId, ErpId, Sku};
pub use money::{Currency, DecimalStyle, Money, MoneyError, Quantity, Rate};
pub use phone::Phone;
pub use reference::{EntityRef, System};
pub use tax_id::{Nit, TaxId};
pub use validation::{FieldError, Rejection};
