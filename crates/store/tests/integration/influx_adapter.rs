//! The InfluxDB adapter over real HTTP against the local v3/v2 server (`metrics_fakes::influxdb`): one
//! outcome per record, retries, partial writes, database creation, gzip bodies, and the token
//! kept out of everything printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use metrics_fakes::influxdb::{FakeInflux, Reply};
use metrics_schema::TenantId;
use metrics_store::influx::{ApiVersion, InfluxSettings, InfluxStore, Token};
use metrics_store::retry::Backoff;
use metrics_store::{RecordOutcome, RejectReason, Store, StoreRecord, StoreValue};

const TOKEN: &str = "write-token-7f3a";
const ORG: &str = "metrics org";

fn settings(server: &FakeInflux, api: ApiVersion) -> InfluxSettings {
    InfluxSettings {
        url: server.url(),
        api,
        org: (api == ApiVersion::V2).then(|| ORG.to_owned()),
        retention_days: 30,
        backoff: Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(40),
        },
        create_interval: Duration::from_millis(300),
        ..InfluxSettings::default()
    }
}

async fn start(api: ApiVersion) -> (FakeInflux, InfluxStore) {
    let server = FakeInflux::start(TOKEN, ORG).await.unwrap();
    let store = InfluxStore::new(settings(&server, api), Token::new(TOKEN)).unwrap();
    (server, store)
}

fn record(measure: &str, event_id: &str, value: i64) -> StoreRecord {
    StoreRecord {
        measure_name: measure.into(),
        time_ms: 1_700_000_000_000,
        dimensions: vec![
            ("event_id".into(), event_id.into()),
            ("region".into(), "eu west".into()),
        ],
        measures: vec![("n".into(), StoreValue::BigInt(value))],
        version: 1,
    }
}

fn tenant() -> TenantId<'static> {
    TenantId::parse("acme-prod").unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn codes(outcomes: &[RecordOutcome]) -> Vec<&'static str> {
    outcomes.iter().map(RecordOutcome::code).collect()
}

#[tokio::test]
async fn v3_writes_every_record_as_gzip_line_protocol_with_bearer_token_and_ns_precision() {
    let (server, store) = start(ApiVersion::V3).await;
    let records = [record("clicks", "e1", 1), record("clicks", "e2", 2)];
    let report = store.write(&tenant(), &records, soon()).await;
    assert_eq!(codes(&report.outcomes), ["written", "written"]);
    assert_eq!(
        server.points("acme-prod"),
        [
            "clicks,region=eu\\ west n=1i,event_id=\"e1\" 1700000000000542322",
            "clicks,region=eu\\ west n=2i,event_id=\"e2\" 1700000000000926778"
        ]
    );
    let writes: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v3/write_lp")
        .collect();
    assert_eq!(writes.len(), 1, "one request for the batch");
    let w = &writes[0];
    assert!(w.gzip);
    assert_eq!(w.auth_scheme.as_deref(), Some("Bearer"));
    assert_eq!(w.query["db"], "acme-prod");
    assert_eq!(w.query["precision"], "nanosecond");
    assert_eq!(w.query["accept_partial"], "true");
}

#[tokio::test]
async fn v2_writes_to_the_tenants_bucket_in_the_org_with_token_auth() {
    let (server, store) = start(ApiVersion::V2).await;
    let report = store.write(&tenant(), &[record("clicks", "e1", 1)], soon()).await;
    assert_eq!(codes(&report.outcomes), ["written"]);
    assert_eq!(server.points("acme-prod").len(), 1);
    let w = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v2/write")
        .unwrap();
    assert_eq!(w.auth_scheme.as_deref(), Some("Token"));
    assert_eq!(
        (
            w.query["org"].as_str(),
            w.query["bucket"].as_str(),
            w.query["precision"].as_str()
        ),
        (ORG, "acme-prod", "ns")
    );
    assert!(w.gzip);
    // The bucket was created in the org with the retention in seconds.
    assert_eq!(server.databases()["acme-prod"].as_deref(), Some("2592000"));
}

#[tokio::test]
async fn a_v3_partial_write_rejects_the_named_lines_and_keeps_the_rest() {
    let (server, store) = start(ApiVersion::V3).await;
    let records = [
        record("clicks", "e1", 1),
        record("bad_metric", "e2", 2),
        record("clicks", "e3", 3),
    ];
    let report = store.write(&tenant(), &records, soon()).await;
    assert_eq!(codes(&report.outcomes), ["written", "rejected", "written"]);
    match &report.outcomes[1] {
        RecordOutcome::Rejected { reason, detail } => {
            assert_eq!(*reason, RejectReason::InvalidRecord);
            assert!(detail.contains("refused by the test server"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.points("acme-prod").len(), 2);
    let writes = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v3/write_lp")
        .count();
    assert_eq!(writes, 1, "a partial write needs no second request");
}

#[tokio::test]
async fn a_v2_bad_line_is_rejected_and_the_others_are_sent_again() {
    let (server, store) = start(ApiVersion::V2).await;
    let records = [
        record("clicks", "e1", 1),
        record("bad_metric", "e2", 2),
        record("clicks", "e3", 3),
    ];
    let report = store.write(&tenant(), &records, soon()).await;
    assert_eq!(codes(&report.outcomes), ["written", "rejected", "written"]);
    assert_eq!(
        server.points("acme-prod"),
        [
            "clicks,region=eu\\ west n=1i,event_id=\"e1\" 1700000000000542322",
            "clicks,region=eu\\ west n=3i,event_id=\"e3\" 1700000000000438291"
        ]
    );
}

#[tokio::test]
async fn a_throttled_write_waits_at_least_retry_after_then_succeeds() {
    let (server, store) = start(ApiVersion::V3).await;
    server.add_database("acme-prod");
    server.script([Reply::throttle(1), Reply::unavailable()]);
    let started = Instant::now();
    let report = store.write(&tenant(), &[record("clicks", "e1", 1)], soon()).await;
    assert_eq!(codes(&report.outcomes), ["written"]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.path == "/api/v3/write_lp")
            .count(),
        3
    );
}

#[tokio::test]
async fn an_outage_past_the_deadline_leaves_records_retryable_with_the_cause() {
    let (server, store) = start(ApiVersion::V3).await;
    server.add_database("acme-prod");
    server.script(std::iter::repeat_n(Reply::unavailable(), 1000));
    let report = store
        .write(
            &tenant(),
            &[record("clicks", "e1", 1), record("clicks", "e2", 2)],
            Instant::now() + Duration::from_millis(400),
        )
        .await;
    for o in &report.outcomes {
        match o {
            RecordOutcome::Retryable { cause } => assert!(cause.contains("503"), "{cause}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(server.requests().len() > 2, "retried before giving up");
    assert!(server.points("acme-prod").is_empty());
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_is_not_waited_for() {
    let (server, store) = start(ApiVersion::V3).await;
    server.add_database("acme-prod");
    server.script([Reply::throttle(30)]);
    let started = Instant::now();
    let report = store
        .write(
            &tenant(),
            &[record("clicks", "e1", 1)],
            Instant::now() + Duration::from_secs(2),
        )
        .await;
    assert_eq!(codes(&report.outcomes), ["retryable"]);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn too_large_bodies_are_split_until_the_oversized_record_is_alone() {
    let (server, store) = start(ApiVersion::V3).await;
    server.add_database("acme-prod");
    // Two ordinary lines fit; the long one never does.
    let mut big = record("clicks", "big", 0);
    big.measures
        .push(("text".into(), StoreValue::Varchar("x".repeat(400))));
    server.set_max_body_bytes(200);
    let records = [
        record("clicks", "e1", 1),
        record("clicks", "e2", 2),
        big,
        record("clicks", "e4", 4),
    ];
    let report = store.write(&tenant(), &records, soon()).await;
    assert_eq!(
        codes(&report.outcomes),
        ["written", "written", "rejected", "written"]
    );
    assert!(matches!(
        report.outcomes[2],
        RecordOutcome::Rejected {
            reason: RejectReason::RecordTooLarge,
            ..
        }
    ));
    let mut ids: Vec<String> = server
        .points("acme-prod")
        .iter()
        .map(|l| {
            l.split("event_id=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["\"e1\"", "\"e2\"", "\"e4\""]);
}

#[tokio::test]
async fn a_record_line_protocol_cannot_carry_is_rejected_and_its_neighbours_written() {
    let (server, store) = start(ApiVersion::V3).await;
    let mut broken = record("clicks", "e2", 2);
    broken
        .dimensions
        .push(("path".into(), "ends with a backslash \\".into()));
    let report = store
        .write(&tenant(), &[record("clicks", "e1", 1), broken], soon())
        .await;
    assert_eq!(codes(&report.outcomes), ["written", "rejected"]);
    match &report.outcomes[1] {
        RecordOutcome::Rejected { reason, detail } => {
            assert_eq!(*reason, RejectReason::InvalidRecord);
            assert!(detail.starts_with("lp_ambiguous_backslash"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.points("acme-prod").len(), 1);
}

#[tokio::test]
async fn a_new_tenants_database_is_created_once_with_retention_and_creates_are_spaced() {
    let (server, store) = start(ApiVersion::V3).await;
    let a = TenantId::parse("tenant-a").unwrap();
    let b = TenantId::parse("tenant-b").unwrap();
    let batch = [record("clicks", "e1", 1)];
    let (ra, rb, ra2) = tokio::join!(
        store.write(&a, &batch, soon()),
        store.write(&b, &batch, soon()),
        store.write(&a, &batch, soon())
    );
    for r in [ra, rb, ra2] {
        assert_eq!(codes(&r.outcomes), ["written"]);
    }
    let creates = server.creates();
    let names: Vec<&str> = creates.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names.len(), 2, "one create per tenant: {names:?}");
    assert!(names.contains(&"tenant-a") && names.contains(&"tenant-b"));
    let gap = creates[1].0.duration_since(creates[0].0);
    assert!(gap >= Duration::from_millis(290), "creates {gap:?} apart");
    assert_eq!(server.databases()["tenant-a"].as_deref(), Some("30d"));
    // Known now: more writes create nothing.
    store.write(&a, &batch, soon()).await;
    assert_eq!(server.creates().len(), 2);
}

#[tokio::test]
async fn an_existing_database_is_success_and_a_vanished_one_is_created_again() {
    let (server, store) = start(ApiVersion::V3).await;
    server.add_database("acme-prod");
    store.ensure_table(&tenant(), soon()).await.unwrap();
    assert_eq!(server.creates().len(), 1, "the 409 counts as created");
    // The write answers 404 (deleted behind our back): created again, then written.
    server.script([Reply::status(404, r#"{"error":"database not found"}"#)]);
    let report = store.write(&tenant(), &[record("clicks", "e1", 1)], soon()).await;
    assert_eq!(codes(&report.outcomes), ["written"]);
    assert_eq!(server.creates().len(), 2);
}

#[tokio::test]
async fn a_refused_token_leaves_records_retryable_and_the_token_is_never_printed() {
    let server = FakeInflux::start("the-real-token", ORG).await.unwrap();
    server.add_database("acme-prod");
    let store = InfluxStore::new(settings(&server, ApiVersion::V3), Token::new(TOKEN)).unwrap();
    let report = store.write(&tenant(), &[record("clicks", "e1", 1)], soon()).await;
    let printed = format!("{report:?} {store:?}");
    assert!(printed.contains("401"), "{printed}");
    assert!(!printed.contains(TOKEN), "the token leaked: {printed}");
    assert_eq!(codes(&report.outcomes), ["retryable"]);
    let err = store
        .ensure_table(&TenantId::parse("other-tenant").unwrap(), soon())
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_read_only_token_cannot_write() {
    let server = FakeInflux::start(TOKEN, ORG).await.unwrap();
    server.add_database("acme-prod");
    server.add_read_token("read-only", "acme-prod");
    let store = InfluxStore::new(settings(&server, ApiVersion::V3), Token::new("read-only")).unwrap();
    let report = store.write(&tenant(), &[record("clicks", "e1", 1)], soon()).await;
    match &report.outcomes[0] {
        RecordOutcome::Retryable { cause } => assert!(cause.contains("HTTP 403"), "{cause}"),
        other => panic!("{other:?}"),
    }
    assert!(server.points("acme-prod").is_empty());
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused_when_the_store_is_built() {
    let mut s = InfluxSettings {
        url: "http://127.0.0.1:1".into(),
        api: ApiVersion::V2,
        ..InfluxSettings::default()
    };
    assert!(
        InfluxStore::new(s.clone(), Token::new("t")).is_err(),
        "v2 without an org"
    );
    s.org = Some("o".into());
    assert!(
        InfluxStore::new(s.clone(), Token::new(" ")).is_err(),
        "an empty token"
    );
    assert!(InfluxStore::new(s, Token::new("t")).is_ok());
}

#[tokio::test]
async fn an_unreachable_server_is_retryable_not_rejected() {
    let store = InfluxStore::new(
        InfluxSettings {
            url: "http://127.0.0.1:1".into(),
            backoff: Backoff {
                base: Duration::from_millis(10),
                cap: Duration::from_millis(20),
            },
            ..InfluxSettings::default()
        },
        Token::new("t"),
    )
    .unwrap();
    let report = store
        .write(
            &tenant(),
            &[record("clicks", "e1", 1)],
            Instant::now() + Duration::from_millis(300),
        )
        .await;
    assert_eq!(codes(&report.outcomes), ["retryable"]);
}

/// Everything the adapter logs on this thread, at every level, while `f` runs.
///
/// The subscriber is the global one, installed once, and keeps only what the capturing thread
/// logs. A subscriber set for this thread alone is not enough: tracing caches whether each log
/// site is wanted when the site is first hit, and while one thread-scoped subscriber is the
/// only one, a test on another thread (with none) that hits a site first caches it as unwanted
/// for every thread.
async fn logs_of<F: std::future::Future<Output = ()>>(f: F) -> String {
    use std::cell::RefCell;

    thread_local! {
        static CAPTURED: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    }
    struct ThisThread;
    impl std::io::Write for ThisThread {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            CAPTURED.with(|c| {
                if let Some(buffer) = c.borrow_mut().as_mut() {
                    buffer.extend_from_slice(b);
                }
            });
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| ThisThread)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    f.await;
    let captured = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    String::from_utf8_lossy(&captured).into_owned()
}

#[tokio::test]
async fn the_token_never_reaches_the_logs() {
    let (server, store) = start(ApiVersion::V3).await;
    server.script([
        Reply::throttle(0),
        Reply::status(401, r#"{"error":"unauthorized"}"#),
    ]);
    let logs = logs_of(async {
        // A create (info), a retry after a 429 (debug), a refusal (retryable).
        let report = store.write(&tenant(), &[record("clicks", "e1", 1)], soon()).await;
        assert_eq!(codes(&report.outcomes), ["retryable"]);
    })
    .await;
    assert!(
        logs.contains("Created the tenant's database") && logs.contains("retrying"),
        "{logs}"
    );
    assert!(!logs.contains(TOKEN), "the token leaked into the logs: {logs}");
}

#[tokio::test]
async fn the_store_is_chosen_by_name_and_written_through_any_store() {
    use metrics_store::{AnyStore, StoreKind};
    assert_eq!("influxdb".parse::<StoreKind>(), Ok(StoreKind::Influxdb));
    assert_eq!(StoreKind::Influxdb.name(), "influxdb");
    let (server, store) = start(ApiVersion::V3).await;
    let any = AnyStore::Influxdb(Box::new(store));
    assert_eq!(any.kind(), StoreKind::Influxdb);
    let report = any.write(&tenant(), &[record("clicks", "e1", 1)], soon()).await;
    assert_eq!(codes(&report.outcomes), ["written"]);
    assert_eq!(server.points("acme-prod").len(), 1);
}

#[tokio::test]
async fn a_server_without_retention_periods_still_gets_the_tenants_database() {
    let (server, store) = start(ApiVersion::V3).await;
    server.reject_retention();
    let report = store.write(&tenant(), &[record("clicks", "e1", 1)], soon()).await;
    assert_eq!(codes(&report.outcomes), ["written"]);
    assert_eq!(
        server.databases()["acme-prod"],
        None,
        "created without a retention period"
    );
    // Remembered: the next tenant is created at the first attempt.
    let before = server.creates().len();
    store
        .write(
            &TenantId::parse("tenant-b").unwrap(),
            &[record("clicks", "e1", 1)],
            soon(),
        )
        .await;
    assert_eq!(server.creates().len(), before + 1);
}
