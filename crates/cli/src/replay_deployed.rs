//! The deployed pipeline as a replay target: the delivery stream named by `--stream` and the
//! bucket named by `--bucket`, with the standard AWS credential chain.

use metrics_local::recover::S3Objects;
use metrics_local::recover::deployed::{DeployedTarget, FirehoseStream};

pub async fn target<'a>(
    stream: Option<&str>,
    objects: &'a S3Objects,
) -> Result<DeployedTarget<'a, S3Objects, FirehoseStream>, String> {
    let stream = match stream {
        Some(name) => {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await;
            Some(FirehoseStream {
                client: aws_sdk_firehose::Client::new(&sdk),
                name: name.to_owned(),
            })
        }
        None => None,
    };
    Ok(DeployedTarget { objects, stream })
}
