//! Siigo API JSON shapes.
