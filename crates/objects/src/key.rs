//! Object keys: decoding the keys of S3 notifications, and deriving keys from a source key
//! (dead letters, progress markers) that stay within S3's key limit.

use percent_encoding::percent_decode;
use sha2::{Digest, Sha256};

use crate::trigger::ObjectRef;

/// The longest S3 object key, in bytes of UTF-8, prefix included:
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html>.
pub const MAX_KEY_BYTES: usize = 1024;

/// Hex digits of the source key's SHA-256 kept in a shortened key (128 bits).
const HASH_HEX: usize = 32;

/// The key `<prefix><source key><suffix>`, exactly so whenever it fits in [`MAX_KEY_BYTES`].
///
/// A source key may itself be up to 1,024 bytes, so the derived key can be too long for S3,
/// which would refuse every attempt to write it. Then the source key is cut at a character
/// boundary and followed by `-` and the first 32 hex digits of the SHA-256 of the whole source
/// key: the same source always gives the same key, and two long keys that share a beginning
/// give different ones. The full source key is kept inside the object written (dead letters
/// carry `source_key`).
pub fn derived_key(prefix: &str, source_key: &str, suffix: &str) -> String {
    let plain = prefix.len() + source_key.len() + suffix.len();
    if plain <= MAX_KEY_BYTES {
        return format!("{prefix}{source_key}{suffix}");
    }
    let room = MAX_KEY_BYTES.saturating_sub(prefix.len() + 1 + HASH_HEX + suffix.len());
    let mut cut = room.min(source_key.len());
    while !source_key.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(source_key.as_bytes());
    let hash: String = digest[..HASH_HEX / 2]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{prefix}{}-{hash}{suffix}", &source_key[..cut])
}

/// Decodes a key from an S3 event notification into the key `GetObject` needs.
/// Returns `None` when the decoded bytes are not UTF-8 (S3 keys always are).
pub fn decode_notification_key(encoded: &str) -> Option<String> {
    let spaced: Vec<u8> = encoded
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).decode_utf8().ok().map(|k| k.into_owned())
}

/// The key of the marker that says `destination` is done with `source`:
/// `<prefix><destination>/<source key>.done`, bounded like every derived key.
pub fn progress_marker_key(prefix: &str, destination: &str, source: &ObjectRef) -> String {
    derived_key(&format!("{prefix}{destination}/"), &source.key, ".done")
}

/// Where `metrics-lake replay` puts records it sends back to the writer: an object like the
/// `Data/` ones that the stack routes to the writer's queue only.
pub const WRITER_REPLAY_PREFIX: &str = "Replay/writer/";
/// Where `metrics-lake replay` puts records it sends back to one forwarder destination:
/// `Replay/forwarder/<destination>/…`, routed to the forwarder's queue only.
pub const FORWARDER_REPLAY_PREFIX: &str = "Replay/forwarder/";

/// The one destination an object under `Replay/forwarder/<destination>/` is for; `None` for
/// any other key (a `Data/` object goes to every destination).
pub fn replay_destination(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(FORWARDER_REPLAY_PREFIX)?;
    let (destination, _) = rest.split_once('/')?;
    (!destination.is_empty()).then_some(destination)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_objects_name_their_one_destination() {
        assert_eq!(
            replay_destination("Replay/forwarder/segment/Data/2026/a.gz"),
            Some("segment")
        );
        assert_eq!(replay_destination("Replay/forwarder//x.gz"), None);
        assert_eq!(replay_destination("Replay/writer/Data/a.gz"), None);
        assert_eq!(replay_destination("Data/2026/11/23/10/s-1.gz"), None);
    }

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
    fn derived_keys_that_fit_are_the_plain_concatenation() {
        assert_eq!(
            derived_key("Error/writer/", "Data/2026/11/23/10/s-1.gz", ".ndjson"),
            "Error/writer/Data/2026/11/23/10/s-1.gz.ndjson"
        );
        let exactly = "k".repeat(MAX_KEY_BYTES - "p/".len() - ".done".len());
        assert_eq!(derived_key("p/", &exactly, ".done"), format!("p/{exactly}.done"));
    }

    #[test]
    fn long_source_keys_give_bounded_distinct_stable_keys() {
        let a = format!("Data/{}a", "x".repeat(1010));
        let b = format!("Data/{}b", "x".repeat(1010));
        let ka = derived_key("Error/writer/", &a, ".ndjson");
        let kb = derived_key("Error/writer/", &b, ".ndjson");
        assert_eq!(ka.len(), MAX_KEY_BYTES);
        assert_eq!(kb.len(), MAX_KEY_BYTES);
        assert_ne!(ka, kb);
        assert_eq!(ka, derived_key("Error/writer/", &a, ".ndjson"));
        assert!(
            ka.starts_with("Error/writer/Data/xxx") && ka.ends_with(".ndjson"),
            "{ka}"
        );
    }

    #[test]
    fn a_long_key_is_cut_at_a_character_boundary() {
        // Two-byte characters put the cut inside one unless it is moved back.
        for pad in 0..4 {
            let key = format!("{}{}", "y".repeat(pad), "é".repeat(600));
            let derived = derived_key("State/forwarder/segment/", &key, ".done");
            assert!(derived.len() <= MAX_KEY_BYTES, "{}", derived.len());
            assert!(derived.len() >= MAX_KEY_BYTES - 1, "{}", derived.len());
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused() {
        assert_eq!(decode_notification_key("bad%FF"), None);
    }
}
