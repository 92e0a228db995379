//! The Runtime API loop against a scripted Runtime API on 127.0.0.1: what it reads from
//! `/next`, and exactly what it posts back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{HttpRequest, read_request};
use lambda_runtime::Diagnostic;
use metrics_enrich::runtime_api::{RuntimeApi, RuntimeApiError};
use serde_json::Value;

/// One answer of the scripted `/next`.
struct Next {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
}

impl Next {
    fn event(request_id: &'static str, body: &[u8]) -> Self {
        Next {
            status: 200,
            headers: vec![("Lambda-Runtime-Aws-Request-Id", request_id)],
            body: body.to_vec(),
        }
    }

    fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn status(status: u16) -> Self {
        Next {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// A Runtime API that answers `/next` from a script (a `500` once it is used up), answers
/// posts with the given statuses (then `202`), and records every post.
struct ScriptedApi {
    address: String,
    posts: Arc<Mutex<Vec<HttpRequest>>>,
}

impl ScriptedApi {
    fn start(next: Vec<Next>, post_statuses: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let next = Arc::new(Mutex::new(VecDeque::from(next)));
        let post_statuses = Arc::new(Mutex::new(VecDeque::from(post_statuses)));
        let posts = Arc::new(Mutex::new(Vec::new()));
        let recorded = posts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (next, post_statuses, recorded) = (next.clone(), post_statuses.clone(), recorded.clone());
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    while let Some(request) = read_request(&mut reader) {
                        let answer = if request.method == "GET" {
                            next.lock().unwrap().pop_front().unwrap_or(Next::status(500))
                        } else {
                            let status = post_statuses.lock().unwrap().pop_front().unwrap_or(202);
                            recorded.lock().unwrap().push(request);
                            Next::status(status)
                        };
                        let mut head = format!(
                            "HTTP/1.1 {} Scripted\r\nContent-Length: {}\r\n",
                            answer.status,
                            answer.body.len()
                        );
                        for (name, value) in &answer.headers {
                            head.push_str(&format!("{name}: {value}\r\n"));
                        }
                        head.push_str("\r\n");
                        writer.write_all(head.as_bytes()).unwrap();
                        writer.write_all(&answer.body).unwrap();
                    }
                });
            }
        });
        ScriptedApi { address, posts }
    }

    fn posts(&self) -> Vec<HttpRequest> {
        self.posts.lock().unwrap().clone()
    }
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn each_event_reaches_the_handler_whole_and_its_response_is_posted_as_is() {
    let long = vec![b'x'; 300_000];
    let api = ScriptedApi::start(
        vec![
            Next::event("req-1", &long).with_header("Lambda-Runtime-Invocation-Id", "inv-1"),
            Next::event("req-2", b"{\"short\":true}"),
        ],
        vec![],
    );
    let runtime = RuntimeApi::new(&api.address).unwrap();
    let mut seen = Vec::new();
    let stopped = runtime
        .run(async |event: &[u8]| {
            seen.push(event.to_vec());
            Ok([event, b"!"].concat())
        })
        .await;

    // The script ends with a 500 from /next, which stops the loop with that status.
    assert!(
        matches!(stopped, Err(RuntimeApiError::NextStatus(s)) if s.as_u16() == 500),
        "{stopped:?}"
    );
    // The buffer is reused: the short second event is not padded with the first.
    assert_eq!(seen, vec![long.clone(), b"{\"short\":true}".to_vec()]);
    let posts = api.posts();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].path, "/2018-06-01/runtime/invocation/req-1/response");
    assert_eq!(posts[0].body, [&long[..], b"!"].concat());
    assert_eq!(posts[0].header("lambda-runtime-invocation-id"), Some("inv-1"));
    assert_eq!(posts[1].path, "/2018-06-01/runtime/invocation/req-2/response");
    assert_eq!(posts[1].body, b"{\"short\":true}!");
    assert_eq!(posts[1].header("lambda-runtime-invocation-id"), None);
}

#[tokio::test]
async fn handler_errors_and_panics_are_posted_as_errors_and_the_loop_goes_on() {
    let api = ScriptedApi::start(
        vec![
            Next::event("fails", b"1"),
            Next::event("panics", b"2"),
            Next::event("answers", b"3"),
        ],
        vec![],
    );
    let runtime = RuntimeApi::new(&api.address).unwrap();
    let _ = runtime
        .run(async |event: &[u8]| match event {
            b"1" => Err(Diagnostic {
                error_type: "invalid_event".to_owned(),
                error_message: "not a Firehose event".to_owned(),
            }),
            b"2" => panic!("the handler broke"),
            _ => Ok(b"{}".to_vec()),
        })
        .await;

    let posts = api.posts();
    let paths: Vec<&str> = posts.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/2018-06-01/runtime/invocation/fails/error",
            "/2018-06-01/runtime/invocation/panics/error",
            "/2018-06-01/runtime/invocation/answers/response",
        ]
    );
    for error in &posts[..2] {
        assert_eq!(
            error.header("lambda-runtime-function-error-type"),
            Some("Unhandled")
        );
    }
    let failed = json(&posts[0].body);
    assert_eq!(failed["errorType"], "invalid_event");
    assert_eq!(failed["errorMessage"], "not a Firehose event");
    let panicked = json(&posts[1].body);
    assert_eq!(panicked["errorType"], "panic");
    assert_eq!(panicked["errorMessage"], "the handler broke");
    assert_eq!(posts[2].body, b"{}");
}

#[tokio::test]
async fn a_204_from_next_is_not_an_invocation() {
    let api = ScriptedApi::start(vec![Next::status(204), Next::event("req-1", b"{}")], vec![]);
    let runtime = RuntimeApi::new(&api.address).unwrap();
    let mut calls = 0;
    let _ = runtime
        .run(async |_: &[u8]| {
            calls += 1;
            Ok(Vec::new())
        })
        .await;
    assert_eq!(calls, 1);
    assert_eq!(api.posts().len(), 1);
}

#[tokio::test]
async fn a_refused_answer_is_logged_and_the_next_invocation_is_served() {
    // 413: Lambda refused the response as too large; the function goes on to the next event.
    let api = ScriptedApi::start(
        vec![Next::event("too-large", b"1"), Next::event("fine", b"2")],
        vec![413],
    );
    let runtime = RuntimeApi::new(&api.address).unwrap();
    let _ = runtime.run(async |event: &[u8]| Ok(event.to_vec())).await;
    let paths: Vec<String> = api.posts().into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        [
            "/2018-06-01/runtime/invocation/too-large/response",
            "/2018-06-01/runtime/invocation/fine/response",
        ]
    );
}

#[tokio::test]
async fn an_event_without_a_request_id_stops_the_loop() {
    let mut nameless = Next::event("unused", b"{}");
    nameless.headers.clear();
    let api = ScriptedApi::start(vec![nameless], vec![]);
    let runtime = RuntimeApi::new(&api.address).unwrap();
    let stopped = runtime.run(async |_: &[u8]| Ok(Vec::new())).await;
    assert!(
        matches!(stopped, Err(RuntimeApiError::NoRequestId)),
        "{stopped:?}"
    );
    assert!(api.posts().is_empty());
}

#[tokio::test]
async fn an_endpoint_given_as_a_url_with_a_base_path_is_followed() {
    // `cargo lambda watch` gives `http://127.0.0.1:9000/.rt/FUNCTION`.
    let api = ScriptedApi::start(vec![Next::event("req-1", b"{}")], vec![]);
    let runtime = RuntimeApi::new(&format!("http://{}/.rt/enrich", api.address)).unwrap();
    let _ = runtime.run(async |event: &[u8]| Ok(event.to_vec())).await;
    let posts = api.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].path,
        "/.rt/enrich/2018-06-01/runtime/invocation/req-1/response"
    );
}

#[test]
fn an_endpoint_that_is_not_a_host_and_port_is_refused() {
    let refused = RuntimeApi::new("not a host");
    assert!(matches!(refused, Err(RuntimeApiError::BadEndpoint(a)) if a == "not a host"));
}

#[tokio::test]
async fn an_unreachable_runtime_api_stops_the_loop() {
    // Port 9 (discard) on loopback: nothing listens there.
    let runtime = RuntimeApi::new("127.0.0.1:9").unwrap();
    let stopped = runtime.run(async |_: &[u8]| Ok(Vec::new())).await;
    assert!(
        matches!(stopped, Err(RuntimeApiError::Transport(_))),
        "{stopped:?}"
    );
}
