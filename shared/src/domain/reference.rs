//! Which system a record lives in and how puente refers to it across systems.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A connected system, named by its connector (`"hubspot"`, `"odoo"`, ...). The domain knows
/// systems only by name: the connectors own their constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct System(&'static str);

impl System {
    pub const fn named(name: &'static str) -> Self {
        Self(name)
    }

    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One record in one system: the unit that links connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    pub system: String,
    pub id: String,
}

impl EntityRef {
    pub fn new(system: System, id: impl Into<String>) -> Self {
        Self {
            system: system.name().to_owned(),
            id: id.into(),
        }
    }
}
