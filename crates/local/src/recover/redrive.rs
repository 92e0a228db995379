//! Redriving the deployed stack's SQS dead-letter queues (`replay --redrive QUEUE_ARN`):
//!
//! - the writer's and forwarder's queues' DLQs hold object notifications their source queue
//!   gave up on: SQS `StartMessageMoveTask` moves them back to that source queue, which is
//!   exactly what it is for
//!   (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html>);
//! - the DLQs of EventBridge targets (the metric rules' and the bucket fan-out's) hold events
//!   EventBridge could not deliver, and have no source queue, so a move task cannot take them
//!   anywhere. Each message names its target in the `TARGET_ARN` attribute and its rule in
//!   `RULE_ARN` (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html>):
//!   a queue target gets the event sent again; the delivery stream gets what the rule would
//!   have put, the event wrapped by the metric's own rule, with `PutRecordBatch`. A message is
//!   deleted only once what it carries is acknowledged.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use metrics_mapping::RuleSet;
use metrics_schema::EventTime;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::deployed::{FirehoseStream, put_all};

/// What a redrive did with one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueRedrive {
    pub queue: String,
    /// `message_move_task` (back to the source queues) or `resent` (to each message's target).
    pub action: &'static str,
    /// Messages in the queue when the redrive began (approximate, as SQS reports it).
    pub messages: u64,
    /// Messages resent and deleted (`resent`); for a move task, SQS moves them on its own.
    pub moved: u64,
    /// Messages left in the queue, with why in `detail`.
    pub left: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_handle: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
}

/// `arn:aws:sqs:<region>:<account>:<name>` → (account, name).
pub fn queue_arn_parts(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("sqs"), Some(_region), Some(account), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (!name.is_empty()).then_some((account, name))
}

/// `arn:aws:firehose:<region>:<account>:deliverystream/<name>` → name.
pub fn stream_name(arn: &str) -> Option<&str> {
    let (_, resource) = arn.strip_prefix("arn:")?.split_once(":firehose:")?;
    resource
        .split_once(":deliverystream/")
        .map(|(_, name)| name)
        .filter(|n| !n.is_empty())
}

/// Whether the rule named at the end of `rule_arn` is the one the stack deploys for
/// `metric`: `<stack>-<metric>`, or its shortened form ending in a hash of the metric name
/// (the CDK app's `metricRuleName`).
pub fn rule_is_for(rule_arn: &str, metric: &str) -> bool {
    let name = rule_arn.rsplit('/').next().unwrap_or(rule_arn);
    let digest = Sha256::digest(metric.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    name.ends_with(&format!("-{metric}")) || name.ends_with(&format!("-{hash}"))
}

/// The URL of the queue `arn` (whose account and name are given).
async fn queue_url(sqs: &Client, arn: &str, account: &str, name: &str) -> Result<String, String> {
    Ok(sqs
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| format!("{arn}: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .queue_url
        .unwrap_or_default())
}

/// Redrives one dead-letter queue (see the module docs). `dry_run` only looks.
pub async fn redrive(
    sqs: &Client,
    firehose: &aws_sdk_firehose::Client,
    rules: &RuleSet,
    queue_arn: &str,
    dry_run: bool,
) -> Result<QueueRedrive, String> {
    let (account, name) =
        queue_arn_parts(queue_arn).ok_or_else(|| format!("{queue_arn:?} is not an SQS queue ARN"))?;
    let sdk_error = |e: &dyn std::fmt::Display| format!("{queue_arn}: {e}");
    let url = queue_url(sqs, queue_arn, account, name).await?;
    let messages = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| sdk_error(&aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                .cloned()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let sources = sqs
        .list_dead_letter_source_queues()
        .queue_url(&url)
        .send()
        .await
        .map_err(|e| sdk_error(&aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .queue_urls;
    let mut report = QueueRedrive {
        queue: queue_arn.to_owned(),
        messages,
        ..QueueRedrive::default()
    };
    if !sources.is_empty() {
        report.action = "message_move_task";
        if !dry_run && messages > 0 {
            let task = sqs
                .start_message_move_task()
                .source_arn(queue_arn)
                .send()
                .await
                .map_err(|e| sdk_error(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            report.task_handle = task.task_handle;
            report.moved = messages;
        }
        return Ok(report);
    }
    report.action = "resent";
    if dry_run {
        return Ok(report);
    }
    resend_all(sqs, firehose, rules, &url, &mut report).await;
    Ok(report)
}

/// Receives every message, sends each to its target, deletes it once acknowledged.
async fn resend_all(
    sqs: &Client,
    firehose: &aws_sdk_firehose::Client,
    rules: &RuleSet,
    url: &str,
    report: &mut QueueRedrive,
) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            // Long polling: a short poll may answer empty while messages remain.
            .wait_time_seconds(1)
            // Long enough to send and delete; a message left is visible again after it.
            .visibility_timeout(120)
            .send()
            .await;
        let messages = match received {
            Ok(answer) => answer.messages.unwrap_or_default(),
            Err(e) => {
                report.detail.push(format!(
                    "receiving: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                ));
                break;
            }
        };
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let attribute = |name: &str| {
                message
                    .message_attributes()
                    .and_then(|a| a.get(name))
                    .and_then(|v| v.string_value())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (target, rule) = (attribute("TARGET_ARN"), attribute("RULE_ARN"));
            let body = message.body().unwrap_or_default();
            let sent = resend(sqs, firehose, rules, &target, &rule, body).await;
            match sent {
                Ok(()) => {
                    let deleted = sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(message.receipt_handle().unwrap_or_default())
                        .send()
                        .await;
                    match deleted {
                        Ok(_) => report.moved += 1,
                        Err(e) => {
                            report.left += 1;
                            report.detail.push(format!(
                                "sent but not deleted (it will be sent again, which the identities make a duplicate): {}",
                                aws_sdk_sqs::error::DisplayErrorContext(e)
                            ));
                        }
                    }
                }
                Err(why) => {
                    report.left += 1;
                    report.detail.push(why);
                }
            }
        }
        // Messages left are invisible for the timeout: stop once every visible one was tried.
        if report.moved + report.left >= report.messages.max(1) {
            break;
        }
    }
}

async fn resend(
    sqs: &Client,
    firehose: &aws_sdk_firehose::Client,
    rules: &RuleSet,
    target: &str,
    rule: &str,
    body: &str,
) -> Result<(), String> {
    if let Some((account, name)) = queue_arn_parts(target) {
        let url = queue_url(sqs, target, account, name).await?;
        sqs.send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| format!("{target}: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        return Ok(());
    }
    let Some(stream) = stream_name(target) else {
        return Err(format!(
            "a message names no target this redrive knows (TARGET_ARN {target:?}); left in the queue"
        ));
    };
    let matches = rules
        .apply(body.as_bytes(), EventTime::now())
        .map_err(|e| format!("a message is not an EventBridge event ({e}); left in the queue"))?;
    let records: Vec<Vec<u8>> = matches
        .into_iter()
        .filter(|m| rule_is_for(rule, &m.rule.metric_name))
        .map(|m| m.output)
        .collect();
    if records.is_empty() {
        return Err(format!(
            "no rule of the mapping file is {rule:?} for this event (was the mapping changed since?); left in the queue"
        ));
    }
    let stream = FirehoseStream {
        client: firehose.clone(),
        name: stream.to_owned(),
    };
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let results = put_all(&stream, &refs).await;
    match results.iter().flatten().next() {
        None => Ok(()),
        Some(code) => Err(format!(
            "the delivery stream {stream:?} did not take a record: {code}; left in the queue",
            stream = stream.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_read_strictly() {
        assert_eq!(
            queue_arn_parts("arn:aws:sqs:eu-west-1:123456789012:metrics-WriterDlq"),
            Some(("123456789012", "metrics-WriterDlq"))
        );
        assert_eq!(queue_arn_parts("arn:aws:sns:eu-west-1:1:x"), None);
        assert_eq!(queue_arn_parts("https://sqs.eu-west-1.amazonaws.com/1/x"), None);
        assert_eq!(
            stream_name("arn:aws:firehose:eu-west-1:123456789012:deliverystream/metrics-lake"),
            Some("metrics-lake")
        );
        assert_eq!(stream_name("arn:aws:sqs:eu-west-1:1:x"), None);
    }

    #[test]
    fn a_rule_is_recognised_by_its_metric_or_its_hash() {
        let arn = "arn:aws:events:eu-west-1:1:rule/MetricsLake-findings_upload_completed";
        assert!(rule_is_for(arn, "findings_upload_completed"));
        assert!(!rule_is_for(arn, "upload_completed_x"));
        let hash: String = Sha256::digest(b"a_very_long_metric")
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(rule_is_for(
            &format!("arn:aws:events:eu-west-1:1:rule/bus/Stack-a_very_lo-{hash}"),
            "a_very_long_metric"
        ));
    }
}
