//! The services around the functions: a moto server's S3, gzip as Firehose writes it, and the
//! embedded store's tables.

use std::io::Write;
use std::path::Path;

use metrics_testkit::Moto;
use metrics_vendorsim::Credentials;

/// The bucket every payload under `events/writer` and `events/forwarder` names.
pub const BUCKET: &str = "metrics-lake-data";

/// The standard AWS variables pointing a function's SDK at `moto`.
pub fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto.endpoint().to_owned()),
        ("AWS_REGION", metrics_testkit::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ]
}

/// The forwarder's variables for both destinations at the vendor simulator `endpoint`.
pub fn vendor_env(endpoint: &str) -> Vec<(&'static str, String)> {
    let credentials = Credentials::test();
    vec![
        ("SEGMENT_ENDPOINT", endpoint.to_owned()),
        ("SEGMENT_WRITE_KEY", credentials.segment_write_key),
        ("MIXPANEL_ENDPOINT", endpoint.to_owned()),
        ("MIXPANEL_PROJECT_ID", credentials.mixpanel_project_id),
        ("MIXPANEL_SERVICE_ACCOUNT", credentials.mixpanel_service_account),
        ("MIXPANEL_SERVICE_SECRET", credentials.mixpanel_service_secret),
    ]
}

/// `env` as the pairs [`crate::Emulator::function`] takes.
pub fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// An S3 client for `moto`, with [`BUCKET`] created.
pub async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    moto.s3_with_bucket(BUCKET).await
}

/// Puts `ndjson` at `key` of [`BUCKET`], gzipped as Firehose writes it.
pub async fn put_object(client: &aws_sdk_s3::Client, key: &str, ndjson: &[u8]) {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(ndjson).unwrap();
    metrics_testkit::s3::put(client, BUCKET, key, encoder.finish().unwrap()).await;
}

/// The keys of [`BUCKET`] under `prefix`.
pub async fn keys_under(client: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    metrics_testkit::s3::keys(client, BUCKET, prefix).await
}

/// Rows of a tenant's table in the embedded store (0 when it has none).
pub fn rows(store: &Path, tenant: &str) -> i64 {
    // Through the store's own reader: its table names are its business.
    let store = metrics_store::EmbeddedStore::open(metrics_store::EmbeddedSettings::new(store)).unwrap();
    if !store.tables().unwrap().iter().any(|t| t == tenant) {
        return 0;
    }
    store.records(tenant).unwrap().len() as i64
}
