//! Canonical types: what a customer, an address or a change event *is* for puente, whatever
//! system it came from. Constructors parse and validate, so a value of these types is valid.

pub mod country;
pub mod customer;
pub mod email;
pub mod event;
pub mod phone;
pub mod reference;
pub mod tax_id;
pub mod text;
pub mod validation;

pub use country::Country;
pub use customer::{Address, Customer, CustomerKind};
pub use email::Email;
pub use event::{ChangeEvent, Entity};
pub use phone::Phone;
pub use reference::{EntityRef, System};
pub use tax_id::{Nit, TaxId};
pub use validation::{FieldError, Rejection};
