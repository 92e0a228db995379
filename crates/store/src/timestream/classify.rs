//! What a failed `WriteRecords` means for its records.

use aws_sdk_timestreamwrite::error::SdkError;
use aws_sdk_timestreamwrite::operation::write_records::WriteRecordsError;
use aws_sdk_timestreamwrite::types::RejectedRecord;

use crate::port::RecordOutcome;
use crate::reason::RejectReason;

/// The class of a failed call.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Some records were rejected; every other record of the request was written.
    Rejected(Vec<RejectedRecord>),
    /// The table (or database) does not exist.
    NotFound(String),
    /// Worth retrying after a backoff: throttling, a 5xx, a timeout, a connection failure.
    Transient(String),
    /// The whole request is invalid: retrying it unchanged cannot succeed.
    Invalid(String),
    /// Retrying now will not help but the records are not at fault (access denied, an unknown
    /// error): the records are reported retryable so the message is retried and, in the end,
    /// reaches the queue's dead-letter queue intact.
    Refused(String),
}

pub fn classify<R>(err: &SdkError<WriteRecordsError, R>) -> Failure
where
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let message = || bounded(&e.to_string());
            match e {
                WriteRecordsError::RejectedRecordsException(r) => {
                    Failure::Rejected(r.rejected_records().to_vec())
                }
                WriteRecordsError::ResourceNotFoundException(_) => Failure::NotFound(message()),
                WriteRecordsError::ThrottlingException(_)
                | WriteRecordsError::InternalServerException(_)
                | WriteRecordsError::InvalidEndpointException(_) => Failure::Transient(message()),
                WriteRecordsError::ValidationException(_) => Failure::Invalid(message()),
                WriteRecordsError::AccessDeniedException(_) => Failure::Refused(message()),
                _ => {
                    let code =
                        aws_sdk_timestreamwrite::error::ProvideErrorMetadata::code(e).unwrap_or("unknown");
                    // An unmodelled error: judge by its status, as the SDK's own retry does.
                    if is_transient_code(code) {
                        Failure::Transient(format!("{code}: {}", message()))
                    } else {
                        Failure::Refused(format!("{code}: {}", message()))
                    }
                }
            }
        }
        SdkError::TimeoutError(_) => Failure::Transient("the request timed out".into()),
        SdkError::DispatchFailure(e) => Failure::Transient(bounded(&format!("dispatch failure: {e:?}"))),
        SdkError::ResponseError(e) => Failure::Transient(bounded(&format!("unreadable response: {e:?}"))),
        SdkError::ConstructionFailure(e) => Failure::Invalid(bounded(&format!("request not built: {e:?}"))),
        other => Failure::Transient(bounded(&format!("{other:?}"))),
    }
}

fn is_transient_code(code: &str) -> bool {
    code.contains("Throttl")
        || code.contains("InternalServer")
        || code.contains("ServiceUnavailable")
        || code.contains("RequestTimeout")
        || code.contains("TooManyRequests")
}

/// What a `RejectedRecords` entry means for its record. Timestream gives a free-text reason;
/// the phrases below are the documented causes (duplicate data with a different value or a
/// version not higher than the existing one, a time outside the ingestion window, a limit).
pub fn rejected_outcome(rejected: &RejectedRecord) -> RecordOutcome {
    let reason_text = rejected.reason().unwrap_or("");
    let lower = reason_text.to_ascii_lowercase();
    let detail = bounded(reason_text);
    let rejected_for = |reason| RecordOutcome::Rejected {
        reason,
        detail: detail.clone(),
    };
    let mentions = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if rejected.existing_version().is_some() {
        // Another writer stored this identity with a higher version: ours does not win.
        rejected_for(RejectReason::VersionConflict)
    } else if mentions(&[
        "identical",
        "same measure value",
        "already exists with the same value",
    ]) {
        // The very record we sent is already stored: a replay.
        RecordOutcome::AlreadyPresent
    } else if mentions(&["version", "different measure value", "duplicate"]) {
        rejected_for(RejectReason::VersionConflict)
    } else if mentions(&[
        "time range",
        "ingestion window",
        "retention",
        "timestamp",
        "future",
        "too old",
    ]) {
        rejected_for(RejectReason::TimeOutOfRange)
    } else if mentions(&["type"]) {
        rejected_for(RejectReason::SchemaConflict)
    } else if mentions(&[
        "limit",
        "exceed",
        "maximum",
        "too many",
        "too long",
        "too large",
        "quota",
    ]) {
        rejected_for(RejectReason::LimitExceeded)
    } else {
        rejected_for(RejectReason::StoreRejected)
    }
}

/// Error text from the service, bounded for logs and dead letters.
pub(crate) fn bounded(text: &str) -> String {
    metrics_schema::text::bounded(text, 300).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(reason: &str, existing: Option<i64>) -> RecordOutcome {
        let r = RejectedRecord::builder()
            .record_index(0)
            .reason(reason)
            .set_existing_version(existing)
            .build();
        rejected_outcome(&r)
    }

    fn reason_of(outcome: RecordOutcome) -> Option<RejectReason> {
        match outcome {
            RecordOutcome::Rejected { reason, .. } => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn documented_rejection_causes_map_to_stable_reasons() {
        let cases = [
            (
                "The record timestamp is outside the time range [2026-11-20T00:00:00Z, 2026-11-26T00:15:00Z) of the data ingestion window.",
                RejectReason::TimeOutOfRange,
            ),
            (
                "A record with the same dimensions, time and measure name exists with a different measure value.",
                RejectReason::VersionConflict,
            ),
            (
                "Version is not present in the request or the version is equal to or lower than the existing value.",
                RejectReason::VersionConflict,
            ),
            (
                "Number of dimensions exceeds the limit of 128 for the table.",
                RejectReason::LimitExceeded,
            ),
            (
                "Measure value type BIGINT does not match the existing type DOUBLE.",
                RejectReason::SchemaConflict,
            ),
            ("Something new.", RejectReason::StoreRejected),
        ];
        for (text, expected) in cases {
            assert_eq!(reason_of(rejected(text, None)), Some(expected), "{text}");
        }
    }

    #[test]
    fn an_existing_version_means_a_conflict_whatever_the_text() {
        assert_eq!(
            reason_of(rejected("", Some(2))),
            Some(RejectReason::VersionConflict)
        );
    }

    #[test]
    fn an_identical_record_already_stored_is_success() {
        assert_eq!(
            rejected("An identical record already exists.", None),
            RecordOutcome::AlreadyPresent
        );
    }

    #[test]
    fn long_service_text_is_bounded_on_a_char_boundary() {
        let text = "é".repeat(400);
        let b = bounded(&text);
        assert!(b.len() <= 304 && b.ends_with('…'));
    }
}
