//! S3 notification keys are form-URL-encoded: a space arrives as `+`, a literal `+` as `%2B`.

use percent_encoding::percent_decode;

/// Decodes a key from an S3 event notification into the key `GetObject` needs.
/// Returns `None` when the decoded bytes are not UTF-8 (S3 keys always are).
pub fn decode_notification_key(encoded: &str) -> Option<String> {
    let spaced: Vec<u8> = encoded
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).decode_utf8().ok().map(|k| k.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_is_a_space_and_percent_escapes_decode() {
        assert_eq!(
            decode_notification_key("red+flower.jpg").as_deref(),
            Some("red flower.jpg")
        );
        assert_eq!(decode_notification_key("c%2B%2B.gz").as_deref(), Some("c++.gz"));
        assert_eq!(
            decode_notification_key("Data%2F2026%2F11%2F23%2F10%2Fs-1.gz").as_deref(),
            Some("Data/2026/11/23/10/s-1.gz")
        );
        assert_eq!(
            decode_notification_key("dt%3D2026-11-23").as_deref(),
            Some("dt=2026-11-23")
        );
        assert_eq!(decode_notification_key("caf%C3%A9").as_deref(), Some("café"));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused() {
        assert_eq!(decode_notification_key("bad%FF"), None);
    }
}
