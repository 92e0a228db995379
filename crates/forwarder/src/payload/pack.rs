//! Splitting serialized events into requests at the vendor's exact limits: a request holds as
//! many consecutive events as fit both the byte limit (envelope + events + one comma between
//! each) and the event-count limit.

use std::ops::Range;

/// One vendor's per-request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole request body, uncompressed.
    pub max_body_bytes: usize,
    pub max_events: usize,
    /// Bytes around the events (`{"batch":[` + `]}`, or `[` + `]`).
    pub envelope_bytes: usize,
}

impl Limits {
    /// The body size of `count` events totalling `event_bytes`.
    pub fn body_bytes(&self, count: usize, event_bytes: usize) -> usize {
        self.envelope_bytes + event_bytes + count.saturating_sub(1)
    }

    /// The largest single event that fits a request.
    pub fn max_event_bytes(&self) -> usize {
        self.max_body_bytes.saturating_sub(self.envelope_bytes)
    }
}

/// Consecutive ranges of `sizes`, each fitting one request. Every size must be at most
/// [`Limits::max_event_bytes`] (callers refuse larger events first); a larger one still gets a
/// request of its own rather than being lost.
pub fn pack(sizes: &[usize], limits: &Limits) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let count = i - start;
        let fits =
            count < limits.max_events && limits.body_bytes(count + 1, bytes + size) <= limits.max_body_bytes;
        if count > 0 && !fits {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        ranges.push(start..sizes.len());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_body_bytes: 100,
        max_events: 3,
        envelope_bytes: 2,
    };

    #[test]
    fn a_request_filled_to_the_exact_byte_limit_is_kept_whole() {
        // 2 + 48 + 1 + 49 = 100 bytes.
        assert_eq!(pack(&[48, 49], &LIMITS), vec![0..2]);
        // One byte more starts a new request.
        assert_eq!(pack(&[48, 50], &LIMITS), vec![0..1, 1..2]);
    }

    #[test]
    fn the_event_count_limit_splits_small_events() {
        assert_eq!(pack(&[1; 7], &LIMITS), vec![0..3, 3..6, 6..7]);
    }

    #[test]
    fn nothing_in_nothing_out_and_an_oversize_event_stands_alone() {
        assert!(pack(&[], &LIMITS).is_empty());
        assert_eq!(pack(&[10, 500, 10], &LIMITS), vec![0..1, 1..2, 2..3]);
    }
}
