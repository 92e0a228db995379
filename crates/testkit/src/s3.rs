//! S3 against the moto server, as the tests use it: a path-style client, buckets, objects.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use crate::Moto;

impl Moto {
    /// An S3 client for this server, path-style (moto serves no virtual-hosted buckets).
    pub async fn s3(&self) -> Client {
        let sdk = self.sdk_config().await;
        Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        )
    }

    /// An S3 client with `bucket` created (or already there).
    pub async fn s3_with_bucket(&self, bucket: &str) -> Client {
        let client = self.s3().await;
        // Already there is fine: tests of one binary share the server.
        let _ = client.create_bucket().bucket(bucket).send().await;
        client
    }
}

/// Puts `body` at `bucket`/`key`.
pub async fn put(client: &Client, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("putting s3://{bucket}/{key}: {e:?}"));
}

/// The bytes at `bucket`/`key`, or `None` when there is no such object.
pub async fn get(client: &Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let object = client.get_object().bucket(bucket).key(key).send().await.ok()?;
    let body = object
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("reading s3://{bucket}/{key}: {e:?}"));
    Some(body.to_vec())
}

/// The keys of `bucket` under `prefix` (one page: tests keep few objects).
pub async fn keys(client: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap_or_else(|e| panic!("listing s3://{bucket}/{prefix}: {e:?}"));
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}
