//! Use cases. Each flow talks to ports only, so it reads as the architecture's steps and runs
//! against in-memory fakes in unit tests.

pub mod sync_customer;

/// A short, stable digest of a payload's identifying parts, for the ledger's "same key, same
/// payload" check: SHA-256 over the parts separated by a unit separator, first 16 bytes in hex.
pub fn digest(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests_depend_on_every_part_and_its_boundaries() {
        let base = super::digest(&["customer", "62515"]);
        assert_eq!(base.len(), 32);
        assert_eq!(base, super::digest(&["customer", "62515"]));
        assert_ne!(base, super::digest(&["customer", "62516"]));
        assert_ne!(base, super::digest(&["customer6", "2515"]));
    }
}
