//! The SQS partial-batch response (`ReportBatchItemFailures` must be on for the trigger):
//! only the listed messages return to the queue; an empty list means all succeeded.

use serde::Serialize;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SqsBatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl SqsBatchResponse {
    pub fn fail(&mut self, message_id: impl Into<String>) {
        self.batch_item_failures.push(BatchItemFailure {
            item_identifier: message_id.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_the_field_names_lambda_reads() {
        let mut response = SqsBatchResponse::default();
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"batchItemFailures":[]}"#
        );
        response.fail("m-2");
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"batchItemFailures":[{"itemIdentifier":"m-2"}]}"#
        );
    }
}
