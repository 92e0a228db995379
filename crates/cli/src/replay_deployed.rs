//! The deployed pipeline as a replay target: the delivery stream named by `--stream` and the
//! bucket named by `--bucket`, with the command's one AWS SDK configuration.

use aws_config::SdkConfig;
use metrics_local::recover::S3Objects;
use metrics_local::recover::deployed::{DeployedTarget, FirehoseStream};
use metrics_local::recover::redrive::{QueueRedrive, redrive};
use metrics_mapping::RuleSet;

pub fn target<'a>(
    stream: Option<&str>,
    objects: &'a S3Objects,
    sdk: &SdkConfig,
) -> DeployedTarget<'a, S3Objects, FirehoseStream> {
    let stream = stream.map(|name| FirehoseStream {
        client: aws_sdk_firehose::Client::new(sdk),
        name: name.to_owned(),
    });
    DeployedTarget { objects, stream }
}

/// Redrives each dead-letter queue named by `--redrive`, in order: what each did, and the
/// queues that could not be redriven, with why.
pub async fn redrive_queues(
    queues: &[String],
    rules: &RuleSet,
    dry_run: bool,
    sdk: &SdkConfig,
) -> (Vec<QueueRedrive>, Vec<String>) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let firehose = aws_sdk_firehose::Client::new(sdk);
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for queue in queues {
        match redrive(&sqs, &firehose, rules, queue, dry_run).await {
            Ok(report) => reports.push(report),
            Err(error) => errors.push(error),
        }
    }
    (reports, errors)
}
