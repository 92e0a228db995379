use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink, to_ndjson};

use super::*;

/// A bucket in a directory of its own, removed when dropped.
struct Temp(LocalBucket);

impl Temp {
    fn new(name: &str) -> Temp {
        let dir = std::env::temp_dir().join(format!("metrics-local-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Temp(LocalBucket::open(dir).unwrap())
    }

    /// A second, independent handle on the same directory (as another process has).
    fn reopen(&self) -> LocalBucket {
        LocalBucket::open(self.0.root()).unwrap()
    }

    /// Writes `key` as a plain file, as a run before the database did.
    fn write_file(&self, key: &str, bytes: &[u8]) {
        let path = self.0.path(key).unwrap();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(self.0.root());
    }
}

impl std::ops::Deref for Temp {
    type Target = LocalBucket;

    fn deref(&self) -> &LocalBucket {
        &self.0
    }
}

#[test]
fn objects_round_trip_and_list_by_prefix() {
    let bucket = Temp::new("roundtrip");
    bucket.put("Data/2026/11/23/10/a.gz", b"a").unwrap();
    bucket.put("Data/2026/11/23/11/b.gz", b"b").unwrap();
    bucket.put("Error/processing-failed/x", b"x").unwrap();
    bucket.put("Data/2026/11/23/10/a.gz", b"a2").unwrap();
    assert_eq!(bucket.get("Data/2026/11/23/10/a.gz").unwrap(), b"a2");
    assert_eq!(
        bucket.list("Data/").unwrap(),
        ["Data/2026/11/23/10/a.gz", "Data/2026/11/23/11/b.gz"]
    );
    assert_eq!(bucket.list("Data/2026/11/23/1").unwrap().len(), 2);
    assert_eq!(
        bucket.list("Data/2026/11/23/11").unwrap(),
        ["Data/2026/11/23/11/b.gz"]
    );
    assert!(bucket.list("Dat/").unwrap().is_empty());
    // Every object is a row: one database file, no file or directory per object, and the
    // database's own files are never listed.
    assert!(bucket.root().join(".objects.sqlite3").is_file());
    assert!(!bucket.root().join("Data").exists());
    assert_eq!(bucket.list("").unwrap().len(), 3);
    assert!(matches!(bucket.get("Data/none.gz"), Err(BucketError::NotFound(k)) if k == "Data/none.gz"));
}

#[test]
fn list_merges_files_and_packed_objects_sorted() {
    let bucket = Temp::new("merge");
    bucket.write_file("Data/2026/03/01/00/b.gz", b"file b");
    bucket.write_file("Data/2026/03/01/01/d.gz", b"file d");
    bucket.write_file("Error/writer/x.ndjson", b"x");
    bucket.put("Data/2026/03/01/00/a.gz", b"row a").unwrap();
    bucket.put("Data/2026/03/01/00/c.gz", b"row c").unwrap();
    bucket.put("Data/2026/04/01/00/e.gz", b"row e").unwrap();
    assert_eq!(
        bucket.list("Data/2026/03/").unwrap(),
        [
            "Data/2026/03/01/00/a.gz",
            "Data/2026/03/01/00/b.gz",
            "Data/2026/03/01/00/c.gz",
            "Data/2026/03/01/01/d.gz",
        ]
    );
    assert_eq!(bucket.list("").unwrap().len(), 6);
    assert_eq!(bucket.list("Error/").unwrap(), ["Error/writer/x.ndjson"]);
    let detailed = bucket.list_objects("Data/2026/0").unwrap();
    let sizes: Vec<(&str, u64)> = detailed.iter().map(|o| (o.key.as_str(), o.size)).collect();
    assert_eq!(
        sizes,
        [
            ("Data/2026/03/01/00/a.gz", 5),
            ("Data/2026/03/01/00/b.gz", 6),
            ("Data/2026/03/01/00/c.gz", 5),
            ("Data/2026/03/01/01/d.gz", 6),
            ("Data/2026/04/01/00/e.gz", 5),
        ]
    );
    assert!(detailed.iter().all(|o| o.modified_ms.is_some_and(|ms| ms > 0)));
}

#[test]
fn files_an_older_run_left_are_read_and_replaced_by_a_put() {
    let bucket = Temp::new("older");
    let key = "Data/2025/01/01/00/old.gz";
    bucket.write_file(key, b"old");
    // No database yet: reading creates none.
    assert_eq!(bucket.get(key).unwrap(), b"old");
    assert_eq!(bucket.list("Data/").unwrap(), [key]);
    assert!(!bucket.root().join(".objects.sqlite3").exists());
    bucket.put(key, b"new").unwrap();
    assert_eq!(bucket.get(key).unwrap(), b"new");
    assert_eq!(bucket.list("").unwrap(), [key]);
    assert!(!bucket.path(key).unwrap().exists(), "the older file is removed");
}

#[test]
fn a_key_in_both_places_is_the_newer_object() {
    let bucket = Temp::new("newer");
    let key = "Data/a.gz";
    bucket.put_deferred(key, b"row").unwrap();
    // A file written after the row (a deferred put leaves same-key files alone).
    std::thread::sleep(std::time::Duration::from_millis(5));
    bucket.write_file(key, b"file!");
    assert_eq!(bucket.get(key).unwrap(), b"file!");
    assert_eq!(bucket.list_objects("").unwrap().len(), 1);
    assert_eq!(bucket.list_objects("").unwrap()[0].size, 5);
    std::thread::sleep(std::time::Duration::from_millis(5));
    bucket.put_deferred(key, b"row again").unwrap();
    assert_eq!(bucket.get(key).unwrap(), b"row again");
    assert_eq!(bucket.list_objects("").unwrap()[0].size, 9);
    bucket.delete(key).unwrap();
    assert!(matches!(bucket.get(key), Err(BucketError::NotFound(_))));
    assert!(bucket.list("").unwrap().is_empty());
    bucket.delete(key).unwrap();
}

#[test]
fn keys_cannot_escape_the_root_or_name_the_database() {
    let bucket = Temp::new("escape");
    let keys = [
        "../x",
        "/etc/passwd",
        "a/../../x",
        "a//b",
        "",
        "a\\b",
        "./a",
        "a\0b",
        ".objects.sqlite3",
        ".objects.sqlite3-wal",
    ];
    for key in keys {
        let unsafe_key = |r: Result<_, BucketError>| matches!(r, Err(BucketError::UnsafeKey(_)));
        assert!(unsafe_key(bucket.put(key, b"")), "{key:?}");
        assert!(unsafe_key(bucket.put_deferred(key, b"")), "{key:?}");
        assert!(unsafe_key(bucket.get(key).map(|_| ())), "{key:?}");
        assert!(unsafe_key(bucket.delete(key)), "{key:?}");
        assert!(unsafe_key(bucket.dead_letter_file(key).map(|_| ())), "{key:?}");
    }
    // A prefix no safe key can have lists nothing, and reads nothing outside the root.
    assert!(bucket.list("../").unwrap().is_empty());
    assert!(bucket.list("/etc/").unwrap().is_empty());
    // A key may still start with a dot, or contain the database's name below the root.
    bucket.put(".hidden/.objects.sqlite3", b"ok").unwrap();
    assert_eq!(bucket.list("").unwrap(), [".hidden/.objects.sqlite3"]);
}

#[test]
fn deferred_objects_are_seen_here_at_once_and_elsewhere_once_committed() {
    // `other` stands for another process: a handle of its own on the same directory.
    let other = Temp::new("deferred");
    let bucket = other.reopen();
    let clone = bucket.clone();
    bucket.put_deferred("Data/a.gz", b"a").unwrap();
    assert_eq!(clone.get("Data/a.gz").unwrap(), b"a");
    assert_eq!(clone.list("Data/").unwrap(), ["Data/a.gz"]);
    assert!(other.list("").unwrap().is_empty());
    bucket.sync().unwrap();
    assert_eq!(other.get("Data/a.gz").unwrap(), b"a");

    // A durable put commits the deferred objects before it.
    bucket.put_deferred("Data/b.gz", b"b").unwrap();
    assert_eq!(other.list("").unwrap(), ["Data/a.gz"]);
    bucket.put("State/mark", b"m").unwrap();
    assert_eq!(other.list("").unwrap(), ["Data/a.gz", "Data/b.gz", "State/mark"]);

    // Dropping the last handle commits them; dropping a clone does not.
    bucket.put_deferred("Data/c.gz", b"c").unwrap();
    drop(clone);
    assert!(matches!(other.get("Data/c.gz"), Err(BucketError::NotFound(_))));
    drop(bucket);
    assert_eq!(other.get("Data/c.gz").unwrap(), b"c");
}

#[test]
fn deferred_objects_are_committed_every_few_hundred() {
    let bucket = Temp::new("batches");
    let other = bucket.reopen();
    for i in 0..pack::DEFERRED_OBJECTS {
        bucket.put_deferred(&format!("Data/{i:04}.gz"), b"x").unwrap();
    }
    assert_eq!(other.list("Data/").unwrap().len(), pack::DEFERRED_OBJECTS);
    bucket.put_deferred("Data/last.gz", b"x").unwrap();
    assert_eq!(other.list("Data/").unwrap().len(), pack::DEFERRED_OBJECTS);
}

#[test]
fn two_threads_put_at_once() {
    let bucket = Temp::new("threads");
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let bucket = bucket.0.clone();
            scope.spawn(move || {
                for i in 0..300 {
                    let key = format!("Data/{thread}/{i:03}.gz");
                    let stored = if i % 3 == 0 {
                        bucket.put(&key, key.as_bytes())
                    } else {
                        bucket.put_deferred(&key, key.as_bytes())
                    };
                    stored.unwrap();
                }
            });
        }
    });
    bucket.sync().unwrap();
    let other = bucket.reopen();
    let keys = other.list("Data/").unwrap();
    assert_eq!(keys.len(), 600);
    for key in keys {
        assert_eq!(other.get(&key).unwrap(), key.as_bytes());
    }
}

#[test]
fn reads_create_nothing() {
    let bucket = Temp::new("reads");
    assert!(bucket.list("Data/").unwrap().is_empty());
    assert!(bucket.list_objects("").unwrap().is_empty());
    assert!(matches!(bucket.get("Data/a.gz"), Err(BucketError::NotFound(_))));
    bucket.delete("Data/a.gz").unwrap();
    bucket.sync().unwrap();
    assert_eq!(fs::read_dir(bucket.root()).unwrap().count(), 0);
}

#[test]
fn a_bucket_is_shared_between_threads() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<LocalBucket>();
}

fn letter(line: usize) -> DeadLetter {
    let source = metrics_objects::ObjectRef {
        bucket: "local".into(),
        key: "Data/a.gz".into(),
        size: None,
        sequencer: None,
    };
    DeadLetter::for_record(
        metrics_schema::Stage::Writer,
        "not_json",
        "d",
        &source,
        Some(line),
        Some(b"x"),
    )
}

async fn stream(bucket: &LocalBucket, lines: &[usize]) {
    let mut sink = bucket.dead_letter_file("Error/writer/Data/a.gz.ndjson").unwrap();
    for &line in lines {
        sink.push(&letter(line)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), lines.len() as u64);
}

#[tokio::test]
async fn streamed_dead_letters_replace_the_object_whole() {
    let bucket = Temp::new("letters");
    let key = "Error/writer/Data/a.gz.ndjson";
    stream(&bucket, &[1, 2, 3]).await;
    let expected = to_ndjson(&[letter(1), letter(2), letter(3)]);
    assert_eq!(bucket.get(key).unwrap(), expected);
    stream(&bucket, &[7]).await;
    assert_eq!(bucket.get(key).unwrap(), to_ndjson(&[letter(7)]));
    // No letters: the object stays as the last run left it.
    stream(&bucket, &[]).await;
    assert_eq!(bucket.get(key).unwrap(), to_ndjson(&[letter(7)]));
    // Given up half-way: nothing changes and no temporary file is left behind.
    let mut sink = bucket.dead_letter_file(key).unwrap();
    sink.push(&letter(9)).await.unwrap();
    sink.abort().await;
    assert_eq!(bucket.get(key).unwrap(), to_ndjson(&[letter(7)]));
    assert_eq!(bucket.list("").unwrap(), [key]);
    assert!(!bucket.path(key).unwrap().with_extension("partial").exists());
    // They stay a file: memory is bounded by a letter, not by the object.
    assert!(bucket.path(key).unwrap().is_file());
}

#[tokio::test]
async fn a_finished_dead_letter_file_commits_deferred_objects_and_replaces_a_row() {
    let bucket = Temp::new("letters-commit");
    let other = bucket.reopen();
    let key = "Error/writer/Data/a.gz.ndjson";
    bucket.put(key, b"a packed object").unwrap();
    bucket.put_deferred("Data/a.gz", b"a").unwrap();
    stream(&bucket, &[1]).await;
    assert_eq!(other.get("Data/a.gz").unwrap(), b"a");
    assert_eq!(other.get(key).unwrap(), to_ndjson(&[letter(1)]));
    assert_eq!(other.list("").unwrap(), ["Data/a.gz", key]);
    assert!(other.pack.get(key).unwrap().is_none(), "the row is gone");
}
