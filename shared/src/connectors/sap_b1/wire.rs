//! SAP Business One Service Layer JSON shapes.
