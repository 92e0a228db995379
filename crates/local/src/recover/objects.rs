//! The bucket a recovery reads and writes: the local state directory's `bucket/`, or the
//! deployed S3 bucket. Both are laid out the same way, so every other part of recovery is
//! written once against [`Objects`].

use metrics_schema::EventTime;

use crate::bucket::{BucketError, LocalBucket};

/// The largest object read (the error objects' read limit).
const MAX_OBJECT_BYTES: u64 = 256 * 1024 * 1024;

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// When it was last written.
    pub modified: Option<EventTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ObjectsError {
    /// The bucket and key (or prefix) concerned.
    pub location: String,
    pub message: String,
}

/// Reading and writing objects by key.
#[allow(async_fn_in_trait)] // used by one command at a time, never across threads
pub trait Objects {
    /// Where the objects are, for messages (`.metrics-lake/bucket`, `s3://name`).
    fn describe(&self) -> String;
    /// Keys under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ObjectsError>;
    /// The object, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ObjectsError>;
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectsError>;
    async fn delete(&self, key: &str) -> Result<(), ObjectsError>;
}

impl LocalBucket {
    fn error(&self, key: &str, message: impl ToString) -> ObjectsError {
        ObjectsError {
            location: self.root().join(key).display().to_string(),
            message: message.to_string(),
        }
    }
}

impl Objects for LocalBucket {
    fn describe(&self) -> String {
        self.root().display().to_string()
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ObjectsError> {
        // Listing never creates anything: a dry run leaves the bucket as it was.
        let objects = self.list_objects(prefix).map_err(|e| self.error(prefix, e))?;
        Ok(objects
            .into_iter()
            .map(|object| Listed {
                key: object.key,
                modified: object.modified_ms.map(EventTime::from_millis),
            })
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ObjectsError> {
        match LocalBucket::get(self, key) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(BucketError::NotFound(_)) => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectsError> {
        LocalBucket::put(self, key, &bytes).map_err(|e| self.error(key, e))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectsError> {
        LocalBucket::delete(self, key).map_err(|e| self.error(key, e))
    }
}

/// The deployed bucket, through the AWS SDK (standard credential chain, `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Objects {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Objects {
            client,
            bucket: bucket.into(),
        }
    }

    fn error(&self, key: &str, error: impl std::fmt::Display) -> ObjectsError {
        ObjectsError {
            location: format!("s3://{}/{key}", self.bucket),
            message: error.to_string(),
        }
    }
}

impl Objects for S3Objects {
    fn describe(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ObjectsError> {
        let mut listed = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, aws_sdk_s3::error::DisplayErrorContext(e)))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                listed.push(Listed {
                    key: key.to_owned(),
                    modified: object
                        .last_modified()
                        .and_then(|t| t.to_millis().ok())
                        .map(EventTime::from_millis),
                });
            }
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ObjectsError> {
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let object = match answer {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.error(key, aws_sdk_s3::error::DisplayErrorContext(e))),
        };
        // Error objects are at most Firehose's 128 MiB (or a dead-letter object of similar size):
        // anything larger is not read into memory.
        if object
            .content_length()
            .is_some_and(|n| n > MAX_OBJECT_BYTES as i64)
        {
            return Err(self.error(key, format!("the object is over {MAX_OBJECT_BYTES} bytes")));
        }
        let bytes = object.body.collect().await.map_err(|e| self.error(key, e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectsError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error(key, aws_sdk_s3::error::DisplayErrorContext(e)))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectsError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error(key, aws_sdk_s3::error::DisplayErrorContext(e)))
    }
}
