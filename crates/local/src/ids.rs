//! Deterministic object ids: the same records always get the same object name, so running
//! the local pipeline twice over the same input rewrites the same objects.

/// A UUID-shaped id from a 128-bit FNV-1a hash of `bytes` (not a random UUID: stable).
pub fn content_uuid(bytes: &[u8]) -> String {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for &b in bytes {
        hash ^= u128::from(b);
        hash = hash.wrapping_mul(PRIME);
    }
    let h = format!("{hash:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
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
    }
}
