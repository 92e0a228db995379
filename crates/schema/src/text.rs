//! Text cut to a byte budget at a char boundary, for messages, logs and dead letters: a
//! hostile key or a long server answer cannot bloat them, and a cut never splits a character.

use std::borrow::Cow;

/// The longest prefix of `text` that is at most `max_bytes` long and ends on a char boundary.
pub fn prefix_within(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` within `max_bytes` ([`prefix_within`]), with `…` appended when it was cut.
pub fn bounded(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("{}…", prefix_within(text, max_bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_never_splits_a_character() {
        // "é" is two bytes: a budget ending inside it keeps the text before it.
        assert_eq!(prefix_within("abé", 3), "ab");
        assert_eq!(prefix_within("abé", 4), "abé");
        assert_eq!(prefix_within("abé", 40), "abé");
        assert_eq!(prefix_within("€", 2), "");
        assert_eq!(prefix_within("", 0), "");
    }

    #[test]
    fn bounded_text_says_it_was_cut() {
        assert_eq!(bounded("short", 5), "short");
        assert!(matches!(bounded("short", 5), Cow::Borrowed(_)));
        assert_eq!(bounded("longer", 4), "long…");
        assert_eq!(bounded("abé", 3), "ab…");
    }
}
