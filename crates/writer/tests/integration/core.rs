#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The pure core: an object's bytes into per-tenant batches and refused lines.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use metrics_objects::ReadLimits;
use metrics_schema::EventTime;
use metrics_writer::{Converter, Piece, convert_object};

const NOW: EventTime = EventTime::from_millis(1_795_910_400_000); // 2026-11-26T00:00:00Z

fn line(tenant: &str, id: &str, n: i64) -> String {
    format!(
        r#"{{"metric_name":"scan_completed","metadata":{{"tenant_id":"{tenant}","event_id":"{id}","repo":"api"}},"data":{{"event_time":"2026-11-23T10:00:00Z","count":{n}}}}}"#
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn groups_by_tenant_in_batches_of_at_most_100() {
    let mut text = String::new();
    for i in 0..250 {
        text.push_str(&line("acme", &format!("a{i}"), i));
        text.push('\n');
        if i % 5 == 0 {
            text.push_str(&line("globex", &format!("g{i}"), i));
            text.push('\n');
        }
    }
    let (converted, error) = convert_object(text.as_bytes(), &ReadLimits::default(), NOW);
    assert!(error.is_none());
    assert_eq!(converted.records, 300);
    let shape: Vec<(String, usize)> = converted
        .batches
        .iter()
        .map(|b| (b.tenant.to_string(), b.records.len()))
        .collect();
    assert_eq!(
        shape,
        [
            ("acme".into(), 100),
            ("acme".into(), 100),
            ("acme".into(), 50),
            ("globex".into(), 50)
        ]
    );
    // Each record keeps where it came from, and its text can be read back for a dead letter.
    let first = &converted.batches[0];
    assert_eq!(first.lines[..3], [1, 3, 4]);
    assert_eq!(first.ordinals[..3], [1, 3, 4]);
    assert_eq!(first.records[1].dimension("event_id"), Some("a1"));
    let texts = metrics_writer::record_texts(text.as_bytes(), &ReadLimits::default(), &[3, 300]);
    assert_eq!(
        String::from_utf8(texts[&3].clone()).unwrap(),
        line("acme", "a1", 1)
    );
    assert_eq!(texts.len(), 2);
}

#[test]
fn gzip_is_recognised_by_magic_bytes_not_by_name() {
    let text = format!("{}\n{}\n", line("acme", "1", 1), line("acme", "2", 2));
    let (plain, _) = convert_object(text.as_bytes(), &ReadLimits::default(), NOW);
    let (zipped, _) = convert_object(&gzip(text.as_bytes()), &ReadLimits::default(), NOW);
    assert_eq!(plain.record_count(), 2);
    assert_eq!(zipped.batches[0].records, plain.batches[0].records);
}

#[test]
fn records_concatenated_without_a_delimiter_are_split() {
    let text = format!(
        "{}{}{}",
        line("acme", "1", 1),
        line("acme", "2", 2),
        line("globex", "3", 3)
    );
    let (converted, error) = convert_object(text.as_bytes(), &ReadLimits::default(), NOW);
    assert!(error.is_none());
    assert_eq!(converted.records, 3);
    assert_eq!(converted.record_count(), 3);
    // One line, three records: the ordinal tells them apart.
    assert_eq!(converted.batches[0].lines, [1, 1]);
    assert_eq!(converted.batches[0].ordinals, [1, 2]);
    let texts = metrics_writer::record_texts(text.as_bytes(), &ReadLimits::default(), &[2]);
    assert_eq!(
        String::from_utf8(texts[&2].clone()).unwrap(),
        line("acme", "2", 2)
    );
}

#[test]
fn invalid_lines_are_refused_with_their_reason_line_and_text() {
    let text = format!(
        "{}\nnot json\n{{\"metric_name\":\"m\",\"metadata\":{{}},\"data\":{{\"event_time\":1}}}}\n\n{}\n",
        line("acme", "1", 1),
        r#"{"metric_name":"m","metadata":{"tenant_id":"acme"},"data":{"event_time":1}}"#
    );
    let (converted, _) = convert_object(text.as_bytes(), &ReadLimits::default(), NOW);
    assert_eq!(converted.record_count(), 1);
    let refused: Vec<(usize, &str)> = converted.refused.iter().map(|r| (r.line, r.reason)).collect();
    assert_eq!(
        refused,
        [(2, "not_json"), (3, "missing_tenant_id"), (5, "no_measures")]
    );
    assert_eq!(converted.refused[0].raw.as_deref(), Some(&b"not json"[..]));
}

#[test]
fn a_truncated_gzip_keeps_the_records_before_the_cut() {
    let mut text = String::new();
    for i in 0..2000 {
        text.push_str(&line("acme", &format!("e{i}"), i));
        text.push('\n');
    }
    let zipped = gzip(text.as_bytes());
    let cut = &zipped[..zipped.len() / 2];
    let (converted, error) = convert_object(cut, &ReadLimits::default(), NOW);
    assert_eq!(error.expect("truncation is reported").code(), "object_corrupt");
    assert!(
        converted.record_count() > 0 && converted.record_count() < 2000,
        "{}",
        converted.record_count()
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_limit_with_a_reason() {
    let zeros = vec![b'\n'; 20 * 1024 * 1024];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 100 * 1024);
    let limits = ReadLimits {
        max_decompressed_bytes: 1024 * 1024,
        ..ReadLimits::default()
    };
    let (converted, error) = convert_object(&bomb, &limits, NOW);
    assert_eq!(error.unwrap().code(), "object_decompressed_too_large");
    assert_eq!(converted.records, 0);
}

#[test]
fn a_giant_line_is_refused_alone_with_a_reason() {
    let text = format!(
        "{}\n{}\n{}\n",
        line("acme", "1", 1),
        "x".repeat(5000),
        line("acme", "2", 2)
    );
    let limits = ReadLimits {
        max_record_bytes: 1000,
        ..ReadLimits::default()
    };
    let (converted, error) = convert_object(text.as_bytes(), &limits, NOW);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(converted.record_count(), 2);
    assert_eq!(converted.records, 3);
    let refused: Vec<(usize, &str, bool)> = converted
        .refused
        .iter()
        .map(|r| (r.line, r.reason, r.raw.is_some()))
        .collect();
    assert_eq!(refused, [(2, "record_too_large", false)]);
}

#[test]
fn pieces_hand_out_refused_lines_as_they_are_read() {
    // A million bad lines must not pile up: each comes out on its own, before later batches.
    let mut text = String::new();
    for i in 0..250 {
        text.push_str("not json\n");
        text.push_str(&line("acme", &format!("e{i}"), i));
        text.push('\n');
    }
    let mut converter = Converter::new(text.as_bytes(), &ReadLimits::default(), NOW, 10_000);
    let mut order = Vec::new();
    while let Some(piece) = converter.next_piece() {
        match piece {
            Piece::Refused(r) => order.push(('r', r.line)),
            Piece::Batch(b) => order.push(('b', b.lines[0])),
        }
        assert!(converter.refused.is_empty());
    }
    let refused: Vec<usize> = order.iter().filter(|(k, _)| *k == 'r').map(|(_, l)| *l).collect();
    assert_eq!(refused, (0..250).map(|i| 2 * i + 1).collect::<Vec<_>>());
    // The first full batch of 100 comes right after the line that filled it.
    let first_batch = order.iter().position(|(k, _)| *k == 'b').unwrap();
    assert_eq!(first_batch, 100);
    assert_eq!(order.iter().filter(|(k, _)| *k == 'b').count(), 3);
}

#[test]
fn full_batches_are_handed_out_as_soon_as_they_fill() {
    // 300 records of one tenant among 20 others: its batches come out while reading.
    let mut text = String::new();
    for i in 0..300 {
        text.push_str(&line("acme", &format!("a{i}"), i));
        text.push('\n');
        if i % 15 == 0 {
            text.push_str(&line(&format!("other-{}", i / 15), &format!("o{i}"), i));
            text.push('\n');
        }
    }
    let mut converter = Converter::new(text.as_bytes(), &ReadLimits::default(), NOW, 10_000);
    let first = converter.next().unwrap();
    assert_eq!((first.tenant.as_str(), first.records.len()), ("acme", 100));
    assert!(
        converter.records_read < 120,
        "handed out after {} records",
        converter.records_read
    );
    let rest: Vec<_> = converter.collect();
    assert_eq!(
        rest.iter()
            .filter(|b| b.tenant.as_str() == "acme")
            .map(|b| b.records.len())
            .collect::<Vec<_>>(),
        [100, 100]
    );
    assert_eq!(rest.iter().filter(|b| b.tenant.as_str() != "acme").count(), 20);
}

#[test]
fn partial_batches_are_bounded_by_the_buffer_limit() {
    // 1000 records spread over 50 tenants: no batch fills, the limit flushes them.
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&line(&format!("tenant-{}", i % 50), &format!("e{i}"), i));
        text.push('\n');
    }
    let mut converter = Converter::new(text.as_bytes(), &ReadLimits::default(), NOW, 300);
    let mut total = 0;
    while let Some(batch) = converter.next() {
        assert!(converter.buffered() <= 300, "{}", converter.buffered());
        assert!(batch.records.len() <= 100);
        assert!(batch.records.iter().all(|r| r.dimension("event_id").is_some()));
        total += batch.records.len();
    }
    assert_eq!(total, 1000);
    assert!(converter.take_error().is_none());
}

#[test]
fn an_empty_object_has_no_records_and_no_error() {
    let (converted, error) = convert_object(b"", &ReadLimits::default(), NOW);
    assert!(error.is_none());
    assert_eq!(converted.records, 0);
    let (converted, error) = convert_object(&gzip(b""), &ReadLimits::default(), NOW);
    assert!(error.is_none());
    assert_eq!(converted.records, 0);
}

#[test]
fn identical_input_converts_to_identical_records() {
    let text = format!("{}\n", line("acme", "1", 1));
    let (a, _) = convert_object(text.as_bytes(), &ReadLimits::default(), NOW);
    let (b, _) = convert_object(text.as_bytes(), &ReadLimits::default(), NOW);
    assert_eq!(a.batches[0].records, b.batches[0].records);
}
