//! Stable reason codes for everything a destination did not accept. They name dead letters and
//! the `Reason` metric dimension, so a code is never renamed or reused.
//!
//! | code | meaning |
//! |---|---|
//! | schema codes (`not_json`, `missing_tenant_id`, …) | the record is not a valid unified event |
//! | `object_*`, `record_too_large` | the source object could not be read (past some point) |
//! | `segment_event_too_large` | the Segment event is over 32 KB, never sent |
//! | `mixpanel_event_too_large` | the Mixpanel event is 1 MB or more, never sent |
//! | `mixpanel_too_many_properties` | the Mixpanel event has over 255 properties, never sent |
//! | `mixpanel_validation_failed` | Mixpanel's strict mode refused the event (`failed_records`) |
//! | `payload_too_large` | a single event still got 413 |
//! | `http_NNN` | the vendor answered NNN (a permanent 4xx, or the last transient answer) |
//! | `timeout` | no answer within the request timeout |
//! | `connection_failed` | the vendor could not be reached |
//! | `out_of_time` | the function's remaining time did not allow a (further) attempt |

use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The record failed the unified schema.
    Invalid(metrics_schema::Reason),
    /// The object could not be read; the code comes from `metrics_objects::ReadError::code`.
    Object(&'static str),
    SegmentEventTooLarge,
    MixpanelEventTooLarge,
    MixpanelTooManyProperties,
    MixpanelValidationFailed,
    PayloadTooLarge,
    Http(u16),
    Timeout,
    ConnectionFailed,
    OutOfTime,
}

impl Reason {
    pub fn code(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Reason::Invalid(r) => r.code(),
            Reason::Object(code) => code,
            Reason::SegmentEventTooLarge => "segment_event_too_large",
            Reason::MixpanelEventTooLarge => "mixpanel_event_too_large",
            Reason::MixpanelTooManyProperties => "mixpanel_too_many_properties",
            Reason::MixpanelValidationFailed => "mixpanel_validation_failed",
            Reason::PayloadTooLarge => "payload_too_large",
            Reason::Http(status) => return Cow::Owned(format!("http_{status}")),
            Reason::Timeout => "timeout",
            Reason::ConnectionFailed => "connection_failed",
            Reason::OutOfTime => "out_of_time",
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_http_carries_its_status() {
        assert_eq!(Reason::Http(401).code(), "http_401");
        assert_eq!(
            Reason::Invalid(metrics_schema::Reason::NotJson).code(),
            "not_json"
        );
        assert_eq!(
            Reason::MixpanelValidationFailed.to_string(),
            "mixpanel_validation_failed"
        );
    }
}
