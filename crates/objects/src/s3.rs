//! The S3 client the functions read and write objects with.

use aws_config::SdkConfig;

/// An S3 client from the shared SDK configuration. With an endpoint override
/// (`AWS_ENDPOINT_URL`: moto, MinIO, `cargo lambda watch`) buckets are addressed by path, since
/// a local server does not resolve `<bucket>.<host>` names; against AWS, virtual-hosted style.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html>
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
