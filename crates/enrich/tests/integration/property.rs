//! Whatever bytes a record holds (or whatever its `data` string is), the response is one
//! well-formed result per record, in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::*;
use metrics_enrich::config::InvalidRecordPolicy;
use metrics_enrich::firehose::FirehoseRecord;
use proptest::prelude::*;
use serde_json::Value;

/// Record payloads: arbitrary bytes, valid events with arbitrary bytes spliced in, arbitrary
/// JSON-ish text, or a `data` string that is not base64 at all.
fn record_strategy() -> impl Strategy<Value = FirehoseRecord<'static>> {
    let id = "[0-9A-Za-z\"\\\\\\n ]{0,24}";
    let payload = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (0usize..160, proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(at, junk)| {
            let mut p = valid_payload("acme-prod");
            let at = at.min(p.len());
            p.splice(at..at, junk);
            p
        }),
        "[{}\\[\\]\":,a-z0-9 .eE+-]{0,200}".prop_map(String::into_bytes),
        Just(valid_payload("globex")),
    ];
    prop_oneof![
        4 => (id, payload).prop_map(|(id, p)| record(&id, &p)),
        1 => (id, ".{0,64}").prop_map(|(id, data)| FirehoseRecord { data: data.into(), ..record(&id, b"") }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_record_bytes_give_one_well_formed_result_per_record(
        records in proptest::collection::vec(record_strategy(), 0..24),
        drop in any::<bool>(),
    ) {
        let policy = if drop { InvalidRecordPolicy::Drop } else { InvalidRecordPolicy::Fail };
        let out = run(&enricher(policy), &event(records.clone()));
        let response: Value = serde_json::from_slice(out.response.as_bytes()).unwrap();
        let answered = response["records"].as_array().unwrap();
        prop_assert_eq!(answered.len(), records.len());
        for (input, output) in records.iter().zip(answered) {
            prop_assert_eq!(output["recordId"].as_str(), Some(input.record_id.as_ref()));
            match output["result"].as_str().unwrap() {
                "Ok" => {
                    let line = BASE64.decode(output["data"].as_str().unwrap()).unwrap();
                    prop_assert_eq!(line.last(), Some(&b'\n'));
                    let event: Value = serde_json::from_slice(&line).unwrap();
                    prop_assert!(event["metadata"]["tenant_name"].is_string());
                }
                "ProcessingFailed" if !drop => prop_assert_eq!(output["data"].as_str(), Some(input.data.as_ref())),
                "Dropped" if drop => prop_assert_eq!(output["data"].as_str(), Some(input.data.as_ref())),
                other => prop_assert!(false, "unexpected result {} (drop policy: {})", other, drop),
            }
        }
        prop_assert_eq!(out.summary.ok + out.summary.rejected.len(), records.len());
    }
}
