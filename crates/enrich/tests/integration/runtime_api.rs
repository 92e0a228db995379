//! The Runtime API loop against a scripted Runtime API on 127.0.0.1: what it reads from
//! `/next`, and exactly what it posts back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::common;

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{HttpRequest, read_request};
use metrics_enrich::runtime_api::{Diagnostic, RuntimeApi, RuntimeApiError};
use serde_json::Value;

/// One answer of the scripted `/next`.
struct Next {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    /// Sent with `Transfer-Encoding: chunked`, in chunks of this many bytes.
    chunks: Option<usize>,
}

impl Next {
    fn event(request_id: &'static str, body: &[u8]) -> Self {
        Next {
            status: 200,
            headers: vec![("Lambda-Runtime-Aws-Request-Id", request_id)],
            body: body.to_vec(),
            chunks: None,
        }
    }

    fn chunked(mut self, size: usize) -> Self {
        self.chunks = Some(size);
        self
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
            chunks: None,
        }
    }
}

/// A Runtime API that answers `/next` from a script (a `500` once it is used up), answers
/// posts with the given statuses (then `202`), and records every post.
struct ScriptedApi {
    address: String,
    posts: Arc<Mutex<Vec<HttpRequest>>>,
    connections: Arc<Mutex<usize>>,
}

impl ScriptedApi {
    fn start(next: Vec<Next>, post_statuses: Vec<u16>) -> Self {
        Self::serve(next, post_statuses, None)
    }

    /// Like [`ScriptedApi::start`], but every connection is closed after one answer, which
    /// says so (`Connection: close`) when `announced`.
    fn closing(next: Vec<Next>, announced: bool) -> Self {
        Self::serve(next, vec![], Some(announced))
    }

    fn serve(next: Vec<Next>, post_statuses: Vec<u16>, close_each: Option<bool>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let next = Arc::new(Mutex::new(VecDeque::from(next)));
        let post_statuses = Arc::new(Mutex::new(VecDeque::from(post_statuses)));
        let posts = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (recorded, counted) = (posts.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                *counted.lock().unwrap() += 1;
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
                        let mut head = format!("HTTP/1.1 {} Scripted\r\n", answer.status);
                        match answer.chunks {
                            Some(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
                            None => head.push_str(&format!("Content-Length: {}\r\n", answer.body.len())),
                        }
                        if close_each == Some(true) {
                            head.push_str("Connection: close\r\n");
                        }
                        for (name, value) in &answer.headers {
                            head.push_str(&format!("{name}: {value}\r\n"));
                        }
                        head.push_str("\r\n");
                        writer.write_all(head.as_bytes()).unwrap();
                        match answer.chunks {
                            Some(size) => {
                                for chunk in answer.body.chunks(size) {
                                    write!(writer, "{:x};ext=1\r\n", chunk.len()).unwrap();
                                    writer.write_all(chunk).unwrap();
                                    writer.write_all(b"\r\n").unwrap();
                                }
                                writer.write_all(b"0\r\nX-Trailer: yes\r\n\r\n").unwrap();
                            }
                            None => writer.write_all(&answer.body).unwrap(),
                        }
                        if close_each.is_some() {
                            return;
                        }
                    }
                });
            }
        });
        ScriptedApi {
            address,
            posts,
            connections,
        }
    }

    fn posts(&self) -> Vec<HttpRequest> {
        self.posts.lock().unwrap().clone()
    }
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[test]
fn each_event_reaches_the_handler_whole_and_its_response_is_posted_as_is() {
    let long = vec![b'x'; 300_000];
    let api = ScriptedApi::start(
        vec![
            Next::event("req-1", &long).with_header("Lambda-Runtime-Invocation-Id", "inv-1"),
            Next::event("req-2", b"{\"short\":true}"),
        ],
        vec![],
    );
    let mut runtime = RuntimeApi::new(&api.address).unwrap();
    let mut seen = Vec::new();
    let stopped = runtime.run(|event: &[u8], _| {
        seen.push(event.to_vec());
        Ok([event, b"!"].concat())
    });

    // The script ends with a 500 from /next, which stops the loop with that status.
    assert!(
        matches!(stopped, Err(RuntimeApiError::NextStatus(500))),
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

#[test]
fn handler_errors_and_panics_are_posted_as_errors_and_the_loop_goes_on() {
    let api = ScriptedApi::start(
        vec![
            Next::event("fails", b"1"),
            Next::event("panics", b"2"),
            Next::event("answers", b"3"),
        ],
        vec![],
    );
    let mut runtime = RuntimeApi::new(&api.address).unwrap();
    let _ = runtime.run(|event: &[u8], _| match event {
        b"1" => Err(Diagnostic {
            error_type: "invalid_event".to_owned(),
            error_message: "not a Firehose event".to_owned(),
        }),
        b"2" => panic!("the handler broke"),
        _ => Ok(b"{}".to_vec()),
    });

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

#[test]
fn a_204_from_next_is_not_an_invocation() {
    let api = ScriptedApi::start(vec![Next::status(204), Next::event("req-1", b"{}")], vec![]);
    let mut runtime = RuntimeApi::new(&api.address).unwrap();
    let mut calls = 0;
    let _ = runtime.run(|_: &[u8], _| {
        calls += 1;
        Ok(Vec::new())
    });
    assert_eq!(calls, 1);
    assert_eq!(api.posts().len(), 1);
}

#[test]
fn each_response_is_built_in_the_last_ones_buffer() {
    let api = ScriptedApi::start(
        vec![Next::event("one", b"first"), Next::event("two", b"second")],
        vec![],
    );
    let mut runtime = RuntimeApi::new(&api.address).unwrap();
    // (capacity, length) of the buffer each invocation was given.
    let mut given = Vec::new();
    let _ = runtime.run(|event: &[u8], mut buffer| {
        given.push((buffer.capacity(), buffer.len()));
        buffer.reserve(4096);
        buffer.extend_from_slice(event);
        Ok(buffer)
    });
    assert_eq!(given.len(), 2);
    assert_eq!(given[0], (0, 0));
    // The second invocation gets the first response's allocation back, emptied.
    assert!(given[1].0 >= 4096, "{given:?}");
    assert_eq!(given[1].1, 0);
    let bodies: Vec<Vec<u8>> = api.posts().into_iter().map(|p| p.body).collect();
    assert_eq!(bodies, [b"first".to_vec(), b"second".to_vec()]);
}

#[test]
fn a_refused_answer_is_logged_and_the_next_invocation_is_served() {
    // 413: Lambda refused the response as too large; the function goes on to the next event.
    let api = ScriptedApi::start(
        vec![Next::event("too-large", b"1"), Next::event("fine", b"2")],
        vec![413],
    );
    let mut runtime = RuntimeApi::new(&api.address).unwrap();
    let _ = runtime.run(|event: &[u8], _| Ok(event.to_vec()));
    let paths: Vec<String> = api.posts().into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        [
            "/2018-06-01/runtime/invocation/too-large/response",
            "/2018-06-01/runtime/invocation/fine/response",
        ]
    );
}

#[test]
fn an_event_without_a_usable_request_id_stops_the_loop() {
    let mut nameless = Next::event("unused", b"{}");
    nameless.headers.clear();
    // Ids that would not be one path segment of the answer's URL.
    for next in [
        nameless,
        Next::event("../../init/error", b"{}"),
        Next::event("a b", b"{}"),
    ] {
        let api = ScriptedApi::start(vec![next], vec![]);
        let mut runtime = RuntimeApi::new(&api.address).unwrap();
        let stopped = runtime.run(|_: &[u8], _| Ok(Vec::new()));
        assert!(
            matches!(stopped, Err(RuntimeApiError::NoRequestId)),
            "{stopped:?}"
        );
        assert!(api.posts().is_empty());
    }
}

#[test]
fn a_chunked_event_is_read_whole() {
    let event: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let api = ScriptedApi::start(vec![Next::event("req-1", &event).chunked(7_000)], vec![]);
    let mut runtime = RuntimeApi::new(&api.address).unwrap();
    let mut seen = Vec::new();
    let _ = runtime.run(|bytes: &[u8], _| {
        seen = bytes.to_vec();
        Ok(b"{}".to_vec())
    });
    assert_eq!(seen, event);
    // The trailer was read to the end: the response went out on the same connection.
    assert_eq!(api.posts().len(), 1);
    assert_eq!(*api.connections.lock().unwrap(), 1);
}

#[test]
fn one_connection_serves_every_invocation_and_a_closed_one_is_replaced() {
    let events = || {
        vec![
            Next::event("a", b"1"),
            Next::event("b", b"2"),
            Next::event("c", b"3"),
        ]
    };

    let kept = ScriptedApi::start(events(), vec![]);
    let mut runtime = RuntimeApi::new(&kept.address).unwrap();
    let _ = runtime.run(|event: &[u8], _| Ok(event.to_vec()));
    assert_eq!(kept.posts().len(), 3);
    assert_eq!(*kept.connections.lock().unwrap(), 1);

    // A server that closes after every answer, saying so or not: every request still gets
    // through, on a new connection (after a failed attempt on the old one when unannounced).
    for announced in [true, false] {
        let closing = ScriptedApi::closing(events(), announced);
        let mut runtime = RuntimeApi::new(&closing.address).unwrap();
        let _ = runtime.run(|event: &[u8], _| Ok(event.to_vec()));
        let bodies: Vec<Vec<u8>> = closing.posts().into_iter().map(|p| p.body).collect();
        assert_eq!(
            bodies,
            [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()],
            "announced: {announced}"
        );
        // 3 × (/next + response) + the final /next.
        assert_eq!(*closing.connections.lock().unwrap(), 7, "announced: {announced}");
    }
}

#[test]
fn a_request_whose_answer_broke_off_is_not_sent_again() {
    // The response is posted, the Runtime API starts its answer and the connection drops: the
    // post may have been taken, so it is not repeated and the loop stops.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let posts = Arc::new(Mutex::new(0));
    let counted = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut writer = stream.unwrap();
            let mut reader = BufReader::new(writer.try_clone().unwrap());
            while let Some(request) = read_request(&mut reader) {
                if request.method == "GET" {
                    writer
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nLambda-Runtime-Aws-Request-Id: r\r\n\r\n{}")
                        .unwrap();
                } else {
                    *counted.lock().unwrap() += 1;
                    writer.write_all(b"HTTP/1.1 202 Acc").unwrap();
                    break;
                }
            }
        }
    });
    let mut runtime = RuntimeApi::new(&address).unwrap();
    let stopped = runtime.run(|event: &[u8], _| Ok(event.to_vec()));
    assert!(matches!(stopped, Err(RuntimeApiError::Io(_))), "{stopped:?}");
    assert_eq!(*posts.lock().unwrap(), 1);
}

#[test]
fn an_answer_that_is_not_http_stops_the_loop() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let _ = read_request(&mut BufReader::new(stream.try_clone().unwrap()));
            stream.write_all(b"SMTP 220 hello\r\n\r\n").unwrap();
        }
    });
    let mut runtime = RuntimeApi::new(&address).unwrap();
    let stopped = runtime.run(|_: &[u8], _| Ok(Vec::new()));
    assert!(
        matches!(stopped, Err(RuntimeApiError::Malformed(_))),
        "{stopped:?}"
    );
}

#[test]
fn an_endpoint_given_as_a_url_with_a_base_path_is_followed() {
    // `cargo lambda watch` gives `http://127.0.0.1:9000/.rt/FUNCTION`.
    let api = ScriptedApi::start(vec![Next::event("req-1", b"{}")], vec![]);
    let mut runtime = RuntimeApi::new(&format!("http://{}/.rt/enrich", api.address)).unwrap();
    let _ = runtime.run(|event: &[u8], _| Ok(event.to_vec()));
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

#[test]
fn an_unreachable_runtime_api_stops_the_loop() {
    // Port 9 (discard) on loopback: nothing listens there.
    let mut runtime = RuntimeApi::new("127.0.0.1:9").unwrap();
    let stopped = runtime.run(|_: &[u8], _| Ok(Vec::new()));
    assert!(matches!(stopped, Err(RuntimeApiError::Io(_))), "{stopped:?}");
}
