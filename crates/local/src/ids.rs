//! Deterministic object ids: the same records always get the same object name, so running
//! the local pipeline twice over the same input rewrites the same objects.

use crate::digits::push_hex;

/// A UUID-shaped id from a 128-bit FNV-1a hash of `bytes` (not a random UUID: stable).
pub fn content_uuid(bytes: &[u8]) -> String {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for &b in bytes {
        hash ^= u128::from(b);
        hash = hash.wrapping_mul(PRIME);
    }
    let mut id = String::with_capacity(36);
    // The 32 hex digits, most significant first, grouped 8-4-4-4-12.
    let mut after = 32;
    for digits in [8, 4, 4, 4, 12] {
        if after < 32 {
            id.push('-');
        }
        after -= digits;
        push_hex(&mut id, hash >> (4 * after), digits);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = content_uuid(b"records");
        assert_eq!(a, content_uuid(b"records"));
        assert_ne!(a, content_uuid(b"records!"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        // The hash's 32 hex digits, most significant first, grouped 8-4-4-4-12.
        assert_eq!(content_uuid(b""), "6c62272e-07bb-0142-62b8-21756295c58d");
    }
}
