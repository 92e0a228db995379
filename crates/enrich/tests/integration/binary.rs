//! The built `metrics-enrich` binary, run as Lambda runs it: a minimal Runtime API on
//! 127.0.0.1 hands it a sample event and reads its response. With `TENANTS_FILE` it needs no
//! AWS credentials and no network (its environment is cleared).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::common;

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Serves `event` once on `/next` and sends back what is posted to `/response` or `/error`.
fn runtime_api(listener: TcpListener, event: Vec<u8>, posted: mpsc::Sender<(String, Vec<u8>)>) {
    std::thread::spawn(move || {
        let mut served = false;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let event = event.clone();
            let posted = posted.clone();
            let first = !served;
            served = true;
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut handed_out = !first;
                while let Some(HttpRequest {
                    method, path, body, ..
                }) = read_request(&mut reader)
                {
                    if method == "GET" && path.ends_with("/invocation/next") {
                        if handed_out {
                            // Like a frozen sandbox: the next event never comes.
                            std::thread::sleep(Duration::from_secs(60));
                            return;
                        }
                        handed_out = true;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                             Lambda-Runtime-Aws-Request-Id: req-1\r\nLambda-Runtime-Deadline-Ms: 4102444800000\r\n\
                             Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:enrich\r\n\r\n",
                            event.len()
                        );
                        writer.write_all(head.as_bytes()).unwrap();
                        writer.write_all(&event).unwrap();
                    } else {
                        writer
                            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                            .unwrap();
                        let _ = posted.send((path, body));
                    }
                }
            });
        }
    });
}

/// Runs the binary against a Runtime API that serves `event` once; returns the path and body
/// it posted, and its stdout.
fn invoke_binary(event: Vec<u8>) -> (String, Vec<u8>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (posted_tx, posted) = mpsc::channel();
    runtime_api(listener, event, posted_tx);

    let mut child = Command::new(env!("CARGO_BIN_EXE_metrics-enrich"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "enrich")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("TENANTS_FILE", events_dir().join("tenants.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let answer = posted.recv_timeout(Duration::from_secs(30));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let (path, body) = answer.expect("the binary posted nothing");
    (path, body, String::from_utf8(output.stdout).unwrap())
}

#[test]
fn binary_serves_a_sample_event_with_a_tenants_file_and_no_aws_environment() {
    let event = std::fs::read(events_dir().join("all-valid.json")).unwrap();
    let (path, body, stdout) = invoke_binary(event);
    assert_eq!(path, "/2018-06-01/runtime/invocation/req-1/response");

    // The binary gives the same response as the library (the events use times in the past,
    // so the real clock does not change the outcome).
    let expected: Value =
        serde_json::from_slice(&std::fs::read(events_dir().join("all-valid.expected.json")).unwrap())
            .unwrap();
    let actual: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(actual, expected);

    // One EMF document on stdout counts the outcomes.
    let emf: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 1, "{stdout}");
    assert_eq!(emf[0]["Ok"], 4);
    assert_eq!(emf[0]["Stage"], "enrich");
}

#[test]
fn binary_reports_an_event_that_is_not_a_firehose_event_as_an_invocation_error() {
    for event in [&b"[1,2]"[..], b"{\"records\":[{\"recordId\":7}]}", b"\xff\xfe"] {
        let (path, body, stdout) = invoke_binary(event.to_vec());
        assert_eq!(path, "/2018-06-01/runtime/invocation/req-1/error");
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["errorType"], "invalid_event", "{error}");
        assert!(stdout.contains("\"invalid_event\""), "{stdout}");
    }
}

#[test]
fn binary_refuses_to_start_without_a_tenant_directory() {
    let output = Command::new(env!("CARGO_BIN_EXE_metrics-enrich"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(all.contains("TENANTS_FILE"), "{all}");
}
