//! Text as people type it: Unicode NFC, trimmed, inner whitespace collapsed. An empty result is
//! "no value", which is told apart from an invalid one by the callers.

use unicode_normalization::UnicodeNormalization;

/// Normalises free text to NFC with single spaces; `None` when nothing but whitespace is left.
pub fn clean(raw: &str) -> Option<String> {
    let normalised: String = raw.nfc().collect();
    let collapsed = normalised.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decomposed_accents_become_composed() {
        // "Bogotá" typed with a combining acute accent (U+0301).
        let decomposed = "Bogota\u{301}";
        assert_eq!(clean(decomposed).as_deref(), Some("Bogotá"));
    }

    #[test]
    fn whitespace_is_trimmed_and_collapsed() {
        assert_eq!(
            clean("  Distribuidora   Andina\tSAS ").as_deref(),
            Some("Distribuidora Andina SAS")
        );
    }

    #[test]
    fn blank_text_is_no_value() {
        assert_eq!(clean(" \t\n"), None);
        assert_eq!(clean(""), None);
    }
}
