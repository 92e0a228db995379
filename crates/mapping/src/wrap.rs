//! The wrapped form EventBridge delivers: `{"metric":"<name>","event":<the whole event>}`
//! (see [`crate::render::wrap_template`]). A record is taken for a wrapped event when its
//! first member is `metric` (as the rules write it) or `event` (a wrapper written with sorted
//! keys); anything else is a unified event (a producer calling Firehose directly) and is
//! validated as one. The `read` module reads it.

/// The wrapper's member naming the metric.
pub const METRIC: &str = "metric";
/// The wrapper's member holding the EventBridge event.
pub const EVENT: &str = "event";

/// Whether `record` starts like a wrapped event: `{`, then the key `"metric"` or `"event"`
/// and `:`, with JSON whitespace allowed between them. Looks at a few bytes only.
pub fn is_wrapped(record: &[u8]) -> bool {
    let start = skip_whitespace(record, 0);
    if record.get(start) != Some(&b'{') {
        return false;
    }
    let at = skip_whitespace(record, start + 1);
    [&b"\"metric\""[..], b"\"event\""].iter().any(|key| {
        record.get(at..at + key.len()) == Some(*key)
            && record.get(skip_whitespace(record, at + key.len())) == Some(&b':')
    })
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// serde's message without the position, which only repeats the record's layout.
pub(crate) fn short_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_member_decides_the_form() {
        assert!(is_wrapped(br#"{"metric":"m","event":{}}"#));
        assert!(is_wrapped(b" {\n \"metric\" : \"m\"}"));
        assert!(!is_wrapped(br#"{"metric_name":"m"}"#));
        assert!(is_wrapped(br#"{"event":{},"metric":"m"}"#));
        assert!(!is_wrapped(br#"{"events":{},"metric":"m"}"#));
        assert!(!is_wrapped(b"[]"));
        assert!(!is_wrapped(b""));
        assert!(!is_wrapped(b"{\"metric\""));
    }
}
