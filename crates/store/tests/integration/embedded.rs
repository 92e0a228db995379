#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The embedded (SQLite) store: Timestream's semantics on a local file.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics_schema::TenantId;
use metrics_store::embedded::schema::ColumnKind;
use metrics_store::{
    EmbeddedSettings, EmbeddedStore, MeasureType, RecordOutcome, Store, StoreRecord, StoreValue,
};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn rec(event_id: &str, time_ms: i64, measures: Vec<(&str, StoreValue)>) -> StoreRecord {
    StoreRecord {
        measure_name: "scan_completed".into(),
        time_ms,
        dimensions: vec![
            ("event_id".into(), event_id.into()),
            ("repo".into(), "api".into()),
        ],
        measures: measures.into_iter().map(|(n, v)| (n.into(), v)).collect(),
        version: 1,
    }
}

fn tenant(s: &str) -> TenantId<'_> {
    TenantId::parse(s).unwrap()
}

fn reasons(outcomes: &[RecordOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            RecordOutcome::Rejected { reason, .. } => reason.code().to_owned(),
            other => other.code().to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn writes_typed_rows_that_read_back_field_by_field() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms() - 60_000;
    let written = rec(
        "e-1",
        t,
        vec![
            ("count", StoreValue::BigInt(-3)),
            ("ratio", StoreValue::Double(0.25)),
            ("ok", StoreValue::Boolean(false)),
            ("label", StoreValue::Varchar("it's \"quoted\"".into())),
        ],
    );
    let report = store
        .write(&tenant("acme-prod"), std::slice::from_ref(&written), deadline())
        .await;
    assert_eq!(report.outcomes, [RecordOutcome::Written]);

    let back = store.records("acme-prod").unwrap();
    let mut expected = written.clone();
    expected.dimensions.sort();
    expected.measures.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(back, [expected]);

    let schema = store.schema("acme-prod").unwrap();
    assert_eq!(schema.get("repo").unwrap().kind, ColumnKind::Dimension);
    assert_eq!(
        schema.get("count").unwrap().kind,
        ColumnKind::Measure(MeasureType::BigInt)
    );
    assert_eq!(
        schema.get("ratio").unwrap().kind,
        ColumnKind::Measure(MeasureType::Double)
    );
    assert_eq!(store.tables().unwrap(), ["acme-prod"]);
}

/// Every record is inserted by one statement of all the table's columns: a record leaves the
/// columns it lacks NULL however the records before it bound them, columns added in the middle
/// of a write are bound in their places, and a name a record repeats keeps its first value, as
/// an INSERT naming the column twice keeps it.
#[tokio::test]
async fn records_of_different_columns_in_one_write_keep_only_their_own_values() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms() - 60_000;
    let wide = rec(
        "wide",
        t,
        vec![
            ("count", StoreValue::BigInt(7)),
            ("label", StoreValue::Varchar("x".into())),
        ],
    );
    let narrow = rec("narrow", t, vec![("count", StoreValue::BigInt(8))]);
    let mut newer = rec("newer", t, vec![("ratio", StoreValue::Double(0.5))]);
    newer.dimensions.push(("region".into(), "eu".into()));
    let after = rec("after", t, vec![("count", StoreValue::BigInt(9))]);
    let first = vec![wide.clone(), narrow.clone(), newer.clone(), after.clone()];
    let report = store.write(&tenant("acme"), &first, deadline()).await;
    assert_eq!(reasons(&report.outcomes), ["written"; 4]);
    let mut repeated = rec("repeated", t, vec![("count", StoreValue::BigInt(1))]);
    repeated.dimensions.push(("repo".into(), "second".into()));
    let report = store
        .write(&tenant("acme"), &[wide.clone(), repeated], deadline())
        .await;
    assert_eq!(reasons(&report.outcomes), ["already_present", "written"]);

    let conn = store.connection().unwrap();
    type Row = (
        String,
        Option<i64>,
        Option<String>,
        Option<f64>,
        Option<String>,
        String,
    );
    let rows: Vec<Row> = conn
        .prepare(r#"SELECT event_id, count, label, ratio, region, repo FROM "tenant/acme" ORDER BY event_id"#)
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let row = |id: &str,
               count: Option<i64>,
               label: Option<&str>,
               ratio: Option<f64>,
               region: Option<&str>,
               repo: &str| {
        (
            id.to_owned(),
            count,
            label.map(str::to_owned),
            ratio,
            region.map(str::to_owned),
            repo.to_owned(),
        )
    };
    assert_eq!(
        rows,
        [
            row("after", Some(9), None, None, None, "api"),
            row("narrow", Some(8), None, None, None, "api"),
            row("newer", None, None, Some(0.5), Some("eu"), "api"),
            row("repeated", Some(1), None, None, None, "api"),
            row("wide", Some(7), Some("x"), None, None, "api"),
        ]
    );
}

#[tokio::test]
async fn a_replay_is_already_present_and_a_different_value_is_a_version_conflict() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms() - 1_000;
    let first = vec![
        rec("a", t, vec![("n", StoreValue::BigInt(1))]),
        rec("b", t, vec![("n", StoreValue::BigInt(2))]),
    ];
    let r1 = store.write(&tenant("acme"), &first, deadline()).await;
    assert_eq!(reasons(&r1.outcomes), ["written", "written"]);

    let again = store.write(&tenant("acme"), &first, deadline()).await;
    assert_eq!(reasons(&again.outcomes), ["already_present", "already_present"]);

    let changed = vec![rec("a", t, vec![("n", StoreValue::BigInt(9))])];
    let r3 = store.write(&tenant("acme"), &changed, deadline()).await;
    assert_eq!(reasons(&r3.outcomes), ["version_conflict"]);

    // The store is exactly as after the first write.
    let back = store.records("acme").unwrap();
    assert_eq!(back.len(), 2);
    assert!(
        back.iter()
            .any(|r| r.dimension("event_id") == Some("a")
                && r.measures == [("n".into(), StoreValue::BigInt(1))])
    );
}

#[tokio::test]
async fn tenants_get_separate_tables() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms();
    store
        .write(
            &tenant("acme"),
            &[rec("a", t, vec![("n", StoreValue::BigInt(1))])],
            deadline(),
        )
        .await;
    store
        .write(
            &tenant("globex.eu"),
            &[rec("a", t, vec![("n", StoreValue::BigInt(2))])],
            deadline(),
        )
        .await;
    assert_eq!(store.tables().unwrap(), ["acme", "globex.eu"]);
    assert_eq!(
        store.records("acme").unwrap()[0].measures[0].1,
        StoreValue::BigInt(1)
    );
    assert_eq!(
        store.records("globex.eu").unwrap()[0].measures[0].1,
        StoreValue::BigInt(2)
    );
}

#[tokio::test]
async fn a_name_keeps_its_role_and_type() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms();
    let first = rec("a", t, vec![("n", StoreValue::BigInt(1))]);
    let as_double = rec("b", t, vec![("n", StoreValue::Double(1.5))]);
    let as_measure = rec("c", t, vec![("repo", StoreValue::BigInt(1))]);
    let mut case_only = rec("d", t, vec![("N", StoreValue::BigInt(1))]);
    case_only.dimensions.truncate(1);
    let report = store
        .write(
            &tenant("acme"),
            &[first, as_double, as_measure, case_only],
            deadline(),
        )
        .await;
    assert_eq!(
        reasons(&report.outcomes),
        ["written", "schema_conflict", "schema_conflict", "schema_conflict"]
    );
}

#[tokio::test]
async fn times_outside_the_retention_window_are_rejected() {
    let mut settings = EmbeddedSettings::new(":memory:");
    settings.retention_days = 1;
    let dir = std::env::temp_dir().join(format!("metrics-store-retention-{}", std::process::id()));
    settings.path = dir.join("store.sqlite");
    let store = EmbeddedStore::open(settings).unwrap();
    let now = now_ms();
    let records = [
        rec("old", now - 2 * 86_400_000, vec![("n", StoreValue::BigInt(1))]),
        rec("future", now + 20 * 60_000, vec![("n", StoreValue::BigInt(1))]),
        rec("fine", now - 3_600_000, vec![("n", StoreValue::BigInt(1))]),
    ];
    let report = store.write(&tenant("acme"), &records, deadline()).await;
    assert_eq!(
        reasons(&report.outcomes),
        ["time_out_of_range", "time_out_of_range", "written"]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_table_holds_at_most_128_dimensions() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms();
    let mut wide = rec("a", t, vec![("n", StoreValue::BigInt(1))]);
    wide.dimensions = (0..128).map(|i| (format!("d{i}"), "v".into())).collect();
    let mut one_more = rec("b", t, vec![("n", StoreValue::BigInt(1))]);
    one_more.dimensions = vec![("extra".into(), "v".into())];
    let report = store.write(&tenant("acme"), &[wide, one_more], deadline()).await;
    assert_eq!(reasons(&report.outcomes), ["written", "limit_exceeded"]);
}

#[tokio::test]
async fn two_stores_on_one_file_writing_the_same_records_at_once_store_each_once() {
    let dir = std::env::temp_dir().join(format!("metrics-store-overlap-{}", std::process::id()));
    let path = dir.join("store.sqlite");
    let a = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    let b = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    let t = now_ms();
    let records: Vec<StoreRecord> = (0..300)
        .map(|i| rec(&format!("e{i}"), t - i, vec![("n", StoreValue::BigInt(i))]))
        .collect();
    let tn = tenant("acme");
    let (ra, rb) = tokio::join!(
        tokio::task::spawn_blocking({
            let records = records.clone();
            move || {
                block_on(async move {
                    a.write(&TenantId::parse("acme").unwrap(), &records, deadline())
                        .await
                })
            }
        }),
        tokio::task::spawn_blocking({
            let records = records.clone();
            move || {
                block_on(async move {
                    b.write(&TenantId::parse("acme").unwrap(), &records, deadline())
                        .await
                })
            }
        }),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    for i in 0..300 {
        let pair = [ra.outcomes[i].code(), rb.outcomes[i].code()];
        assert!(
            pair == ["written", "already_present"] || pair == ["already_present", "written"],
            "{pair:?}"
        );
    }
    let reader = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    assert_eq!(reader.records(tn.as_str()).unwrap().len(), 300);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs a store future to completion on its own small runtime (each store in its own thread,
/// as two Lambda containers would be).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Tenant ids are case-sensitive (as in Timestream and InfluxDB) and may look like SQLite's or
/// the store's own names: each still gets a table of its own, with its own columns.
#[tokio::test]
async fn tenants_that_differ_in_case_or_look_like_internal_names_get_their_own_tables() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms();
    let ids = [
        "globex",
        "GLOBEX",
        "CaseTenant",
        "casetenant",
        "sqlite_master",
        "ts_schema",
    ];
    for (i, id) in ids.iter().enumerate() {
        // Each with a measure of its own name, and the shared `event_id` column.
        let name = format!("m{i}");
        let report = store
            .write(
                &tenant(id),
                &[rec("e", t, vec![(name.as_str(), StoreValue::BigInt(i as i64))])],
                deadline(),
            )
            .await;
        assert_eq!(reasons(&report.outcomes), ["written"], "{id}");
    }
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort();
    assert_eq!(store.tables().unwrap(), expected);
    for (i, id) in ids.iter().enumerate() {
        let back = store.records(id).unwrap();
        assert_eq!(back.len(), 1, "{id}");
        assert_eq!(
            back[0].measures,
            [(format!("m{i}"), StoreValue::BigInt(i as i64))],
            "{id}"
        );
        let schema = store.schema(id).unwrap();
        assert!(schema.get(&format!("m{i}")).is_some(), "{id}");
    }
}

#[tokio::test]
async fn a_store_written_with_tables_named_as_tenants_is_migrated_on_open() {
    let dir = std::env::temp_dir().join(format!("metrics-store-legacy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.sqlite");
    let t = now_ms();
    {
        // The layout before tenant tables had their own names.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE ts_schema (table_name TEXT NOT NULL, column_name TEXT NOT NULL, \
             kind TEXT NOT NULL CHECK (kind IN ('dimension', 'measure')), type TEXT NOT NULL, \
             PRIMARY KEY (table_name, column_name));
             CREATE TABLE \"acme\" (measure_name TEXT NOT NULL, time INTEGER NOT NULL, \
             ts_series TEXT NOT NULL, ts_digest TEXT NOT NULL, event_id VARCHAR, n BIGINT, \
             PRIMARY KEY (measure_name, time, ts_series));
             INSERT INTO ts_schema VALUES ('acme', 'event_id', 'dimension', 'VARCHAR'), \
             ('acme', 'n', 'measure', 'BIGINT');
             INSERT INTO \"acme\" VALUES ('scan_completed', {t}, '[]', 'd', 'e-1', 7);"
        ))
        .unwrap();
    }
    let store = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    assert_eq!(store.tables().unwrap(), ["acme"]);
    let back = store.records("acme").unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].measures, [("n".to_owned(), StoreValue::BigInt(7))]);
    // The migrated table takes new writes, and another case of the id is another tenant.
    let more = [rec("e-2", t, vec![("n", StoreValue::BigInt(8))])];
    let report = store.write(&tenant("acme"), &more, deadline()).await;
    assert_eq!(reasons(&report.outcomes), ["written"]);
    let report = store.write(&tenant("ACME"), &more, deadline()).await;
    assert_eq!(reasons(&report.outcomes), ["written"]);
    drop(store);
    let reopened = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    assert_eq!(reopened.tables().unwrap(), ["ACME", "acme"]);
    assert_eq!(reopened.records("acme").unwrap().len(), 2);
    // A new table has no rowid (its key is its only b-tree); the migrated one keeps its own.
    let sql = |tenant: &str| -> String {
        let table = metrics_store::embedded::names::table_name(tenant);
        reopened
            .connection()
            .unwrap()
            .query_row("SELECT sql FROM sqlite_master WHERE name = ?1", [table], |r| {
                r.get(0)
            })
            .unwrap()
    };
    assert!(sql("ACME").ends_with("WITHOUT ROWID"), "{}", sql("ACME"));
    assert!(!sql("acme").contains("WITHOUT ROWID"), "{}", sql("acme"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A record SQLite refuses for good is rejected on its own with a reason, never retried, and
/// its neighbours are written.
#[tokio::test]
async fn a_record_sqlite_refuses_for_good_is_rejected_alone() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms();
    let acme = tenant("acme");
    let first = [rec("a", t, vec![("n", StoreValue::BigInt(1))])];
    store.write(&acme, &first, deadline()).await;
    // A rule no retry can satisfy, as a schema error or a constraint would be.
    store
        .connection()
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_seven BEFORE INSERT ON \"tenant/acme\" WHEN NEW.n = 7 \
             BEGIN SELECT RAISE(ABORT, 'seven is refused'); END",
        )
        .unwrap();
    let records = [
        rec("b", t - 1, vec![("n", StoreValue::BigInt(2))]),
        rec("c", t - 2, vec![("n", StoreValue::BigInt(7))]),
        rec("d", t - 3, vec![("n", StoreValue::BigInt(3))]),
    ];
    let report = store.write(&acme, &records, deadline()).await;
    assert_eq!(
        reasons(&report.outcomes),
        ["written", "store_rejected", "written"]
    );
    assert_eq!(store.records("acme").unwrap().len(), 3);
}

#[test]
fn only_failures_a_retry_can_pass_are_transient() {
    use metrics_store::embedded::is_transient;
    use rusqlite::ffi;
    let failure = |code| rusqlite::Error::SqliteFailure(ffi::Error::new(code), None);
    for code in [
        ffi::SQLITE_BUSY,
        ffi::SQLITE_LOCKED,
        ffi::SQLITE_IOERR,
        ffi::SQLITE_FULL,
    ] {
        assert!(is_transient(&failure(code)), "{code}");
    }
    for code in [
        ffi::SQLITE_ERROR,
        ffi::SQLITE_CONSTRAINT,
        ffi::SQLITE_TOOBIG,
        ffi::SQLITE_MISMATCH,
    ] {
        assert!(!is_transient(&failure(code)), "{code}");
    }
    assert!(!is_transient(&rusqlite::Error::InvalidQuery));
}

/// The writes of the batching tests: new columns, a schema conflict, a replay and a version
/// conflict, across two tenants.
fn batch_writes(t: i64) -> Vec<(&'static str, Vec<StoreRecord>)> {
    vec![
        ("acme", vec![rec("a", t, vec![("n", StoreValue::BigInt(1))])]),
        ("globex", vec![rec("a", t, vec![("n", StoreValue::Double(1.5))])]),
        (
            "acme",
            vec![
                rec(
                    "b",
                    t - 1,
                    vec![("n", StoreValue::BigInt(2)), ("m", StoreValue::Boolean(true))],
                ),
                rec("c", t - 2, vec![("n", StoreValue::Double(2.5))]),
            ],
        ),
        ("acme", vec![rec("a", t, vec![("n", StoreValue::BigInt(1))])]),
        ("acme", vec![rec("a", t, vec![("n", StoreValue::BigInt(9))])]),
        (
            "globex",
            vec![rec("d", t - 3, vec![("label", StoreValue::Varchar("x".into()))])],
        ),
    ]
}

fn temp_store_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("metrics-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("store.sqlite")
}

#[tokio::test]
async fn batched_writes_give_what_single_writes_give_and_others_see_them_once_committed() {
    let t = now_ms() - 60_000;
    let single = EmbeddedStore::in_memory().unwrap();
    let path = temp_store_path("batched");
    let batched = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    batched.batch_writes(4).unwrap();
    let reader = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    let count = |tenant: &str| reader.records(tenant).map(|r| r.len()).unwrap_or(0);
    for (i, (name, records)) in batch_writes(t).into_iter().enumerate() {
        let expected = single.write(&tenant(name), &records, deadline()).await;
        let got = batched.write(&tenant(name), &records, deadline()).await;
        assert_eq!(reasons(&got.outcomes), reasons(&expected.outcomes), "write {i}");
        match i {
            // The first four are one transaction: another connection sees none of them...
            0..=2 => assert_eq!(count("acme") + count("globex"), 0, "write {i}"),
            // ...until the fourth commits them; the fifth and sixth wait for the next commit.
            _ => assert_eq!((count("acme"), count("globex")), (2, 1), "write {i}"),
        }
    }
    batched.commit().unwrap();
    assert_eq!((count("acme"), count("globex")), (2, 2));
    for name in ["acme", "globex"] {
        assert_eq!(
            reader.records(name).unwrap(),
            single.records(name).unwrap(),
            "{name}"
        );
        let columns = |store: &EmbeddedStore| {
            let mut columns: Vec<_> = store.schema(name).unwrap().columns().cloned().collect();
            columns.sort_by(|a, b| a.name.cmp(&b.name));
            columns
        };
        assert_eq!(columns(&reader), columns(&single), "{name}");
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn an_open_batch_is_committed_when_the_store_is_dropped() {
    let t = now_ms() - 60_000;
    let path = temp_store_path("dropped");
    let batched = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    batched.batch_writes(100).unwrap();
    for (name, records) in batch_writes(t) {
        batched.write(&tenant(name), &records, deadline()).await;
    }
    drop(batched);
    let reader = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    assert_eq!(reader.records("acme").unwrap().len(), 2);
    assert_eq!(reader.records("globex").unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_batch_sqlite_rolls_back_is_reported_and_no_later_write_is_taken() {
    let t = now_ms() - 60_000;
    let path = temp_store_path("rolled-back");
    let batched = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    let acme = tenant("acme");
    batched
        .write(
            &acme,
            &[rec("a", t, vec![("n", StoreValue::BigInt(1))])],
            deadline(),
        )
        .await;
    // What a full disk does to an open transaction, made on purpose: SQLite ends it.
    batched
        .connection()
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER end_all BEFORE INSERT ON \"tenant/acme\" WHEN NEW.n = 7 \
             BEGIN SELECT RAISE(ROLLBACK, 'the transaction is gone'); END",
        )
        .unwrap();
    batched.batch_writes(10).unwrap();
    for i in 2..4 {
        let report = batched
            .write(
                &acme,
                &[rec(&format!("e{i}"), t - i, vec![("n", StoreValue::BigInt(i))])],
                deadline(),
            )
            .await;
        assert_eq!(reasons(&report.outcomes), ["written"]);
    }
    let gone = batched
        .write(
            &acme,
            &[rec("x", t - 9, vec![("n", StoreValue::BigInt(7))])],
            deadline(),
        )
        .await;
    assert_eq!(reasons(&gone.outcomes), ["store_rejected"]);
    let later = batched
        .write(
            &acme,
            &[rec("y", t - 10, vec![("n", StoreValue::BigInt(8))])],
            deadline(),
        )
        .await;
    assert_ne!(reasons(&later.outcomes), ["written"]);
    let error = batched.commit().unwrap_err().to_string();
    assert!(error.contains("2 write(s)"), "{error}");
    drop(batched);
    // Only the write made before batching is stored.
    let reader = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    assert_eq!(reader.records("acme").unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Lets the store's file grow no further, as a full disk would: SQLite fails with
/// `SQLITE_FULL` as soon as a statement needs a new page.
fn fill_the_disk(store: &EmbeddedStore) {
    let conn = store.connection().unwrap();
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
        .unwrap();
}

fn oversize(event_id: &str, time_ms: i64) -> StoreRecord {
    rec(
        event_id,
        time_ms,
        vec![
            ("n", StoreValue::BigInt(1)),
            ("note", StoreValue::Varchar("x".repeat(200_000))),
        ],
    )
}

#[tokio::test]
async fn a_full_disk_in_the_middle_of_a_write_gives_up_its_batch_and_commit_says_so() {
    let t = now_ms() - 60_000;
    let path = temp_store_path("part-landed");
    let batched = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    let acme = tenant("acme");
    // Written before batching, with the column the later records use.
    let first = [rec(
        "a",
        t,
        vec![
            ("n", StoreValue::BigInt(1)),
            ("note", StoreValue::Varchar("x".into())),
        ],
    )];
    assert_eq!(
        reasons(&batched.write(&acme, &first, deadline()).await.outcomes),
        ["written"]
    );
    batched.batch_writes(10).unwrap();
    let held = [rec("b", t - 1, vec![("n", StoreValue::BigInt(2))])];
    assert_eq!(
        reasons(&batched.write(&acme, &held, deadline()).await.outcomes),
        ["written"]
    );
    fill_the_disk(&batched);
    // The small record fits in a page the table has; the large one needs new pages. Part of
    // the write landed, so the batch cannot be kept (SQLite itself ends the transaction here).
    let mixed = [
        rec("c", t - 2, vec![("n", StoreValue::BigInt(3))]),
        oversize("d", t - 3),
    ];
    let report = batched.write(&acme, &mixed, deadline()).await;
    assert_eq!(reasons(&report.outcomes), ["retryable", "retryable"]);
    let error = batched.commit().unwrap_err().to_string();
    assert!(error.contains("1 write(s)"), "{error}");
    drop(batched);
    let reader = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    let ids: Vec<String> = reader
        .records("acme")
        .unwrap()
        .into_iter()
        .map(|r| r.dimensions[0].1.clone())
        .collect();
    assert_eq!(ids, ["a"]);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
