//! The Lambda Runtime API loop: each event's bytes read straight into one reused buffer, and
//! the response's bytes written back as they are.
//!
//! `lambda_runtime` deserialises every event into an owned payload and serialises every
//! response again with `serde_json::to_vec`; for a response that is already JSON that is a
//! 4 MB copy and, for serde to take pre-built JSON, a full parse of it. Its async HTTP client
//! also hands the body over in pieces that are copied once more. For a 3 MB Firehose batch the
//! two cost about 2 ms of an 11 ms invocation (`bench/README.md`). The Runtime API is a local
//! HTTP/1.1 endpoint that serves one invocation at a time, so this loop talks to it over one
//! blocking keep-alive connection: response heads are parsed by `httparse` (hyper's parser),
//! and bodies are read with one `read` per socket buffer into the caller's buffer.
//!
//! Kept from `lambda_runtime` (which this crate does not depend on): one invocation at a time;
//! a handler error is posted to `/error` as a [`Diagnostic`], and so is a panic, after which the loop goes on; the invocation id is
//! echoed so a stale answer is rejected; an answer the Runtime API refuses is logged; a `204`
//! from `/next` (local emulators' keep-alive) is skipped; both forms of
//! `AWS_LAMBDA_RUNTIME_API` (Lambda's `host:port`, and the URL with a base path that
//! `cargo lambda watch` gives). Left out, because this function does not use them: the
//! `Context` object, the `_X_AMZN_TRACE_ID` variable, SnapStart hooks and concurrent
//! invocations.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;

const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const INVOCATION_ID: &str = "lambda-runtime-invocation-id";
/// A response head longer than this is not the Runtime API's.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

/// An invocation's error, as the Runtime API's `/error` endpoint takes it: `{"errorType",
/// "errorMessage"}`.
/// <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-invokeerror>
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// A stable code (Lambda reports it as the invocation's error type).
    pub error_type: String,
    pub error_message: String,
}

/// Why the loop stopped: the Runtime API cannot be reached or spoke out of protocol.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    #[error("AWS_LAMBDA_RUNTIME_API is not set: the function runs only under a Lambda Runtime API")]
    NoEndpoint,
    #[error("AWS_LAMBDA_RUNTIME_API is neither a host and port nor a URL: {0}")]
    BadEndpoint(String),
    #[error("the Runtime API connection failed: {0}")]
    Io(#[from] io::Error),
    #[error("the Runtime API's answer is not HTTP/1.1 this client reads: {0}")]
    Malformed(String),
    #[error("the Runtime API's /next answer has status {0}")]
    NextStatus(u16),
    #[error("the Runtime API's /next answer has no usable Lambda-Runtime-Aws-Request-Id")]
    NoRequestId,
}

/// One invocation, as `/next` announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub request_id: String,
    /// Echoed on the answer, so the Runtime API can reject an answer to a timed-out invocation.
    invocation_id: Option<String>,
}

/// A client for the Runtime API at `AWS_LAMBDA_RUNTIME_API`.
#[derive(Debug)]
pub struct RuntimeApi {
    /// `host:port`.
    authority: String,
    /// Prefix of every path, without a trailing `/` (empty for Lambda's own endpoint).
    base_path: String,
    connection: Option<Connection>,
    /// The last response head, kept for its allocation.
    head: Vec<u8>,
}

#[derive(Debug)]
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// What the loop reads of a response head.
#[derive(Debug, Default)]
struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
    request_id: Option<String>,
    invocation_id: Option<String>,
}

impl RuntimeApi {
    pub fn from_env() -> Result<Self, RuntimeApiError> {
        let address = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(|_| RuntimeApiError::NoEndpoint)?;
        Self::new(&address)
    }

    /// `address`: the Runtime API's `host:port` as Lambda gives it, or a URL with a base path
    /// as local emulators give it (`http://127.0.0.1:9000/.rt/NAME`).
    pub fn new(address: &str) -> Result<Self, RuntimeApiError> {
        let bad = || RuntimeApiError::BadEndpoint(address.to_owned());
        let uri = http::Uri::try_from(address).map_err(|_| bad())?;
        if uri.scheme().is_some_and(|s| s != &http::uri::Scheme::HTTP) {
            return Err(bad());
        }
        let authority = uri.authority().ok_or_else(bad)?.to_string();
        Ok(RuntimeApi {
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            connection: None,
            head: Vec::new(),
        })
    }

    /// Serves invocations one at a time until the Runtime API fails. `handler` gets each event's
    /// bytes and an empty buffer to build the response in, and returns the response's bytes
    /// (JSON), or the error to report.
    ///
    /// The buffer is the previous response's, kept with its allocation (a new, empty one for the
    /// first invocation and after one that failed): a response of a few megabytes allocated
    /// afresh each time costs its page faults again whenever the allocator has handed the
    /// memory back to the kernel in between.
    pub fn run<H>(&mut self, mut handler: H) -> Result<(), RuntimeApiError>
    where
        H: FnMut(&[u8], Vec<u8>) -> Result<Vec<u8>, Diagnostic>,
    {
        let mut event = Vec::new();
        let mut spare = Vec::new();
        loop {
            let Some(invocation) = self.next(&mut event)? else {
                continue;
            };
            let buffer = std::mem::take(&mut spare);
            let outcome = catch_unwind(AssertUnwindSafe(|| handler(&event, buffer)))
                .unwrap_or_else(|panic| Err(panicked(panic.as_ref())));
            match outcome {
                Ok(response) => {
                    self.respond(&invocation, &response)?;
                    spare = response;
                    spare.clear();
                }
                Err(diagnostic) => self.fail(&invocation, &diagnostic)?,
            }
        }
    }

    /// Waits for the next invocation and reads its event into `event`, replacing what was there.
    /// `None` when the Runtime API answered `204 No Content` (no invocation).
    pub fn next(&mut self, event: &mut Vec<u8>) -> Result<Option<Invocation>, RuntimeApiError> {
        let head = self.exchange("GET", "/2018-06-01/runtime/invocation/next", &[], &[], event)?;
        match head.status {
            204 => Ok(None),
            200..=299 => Ok(Some(Invocation {
                // The id goes into the answer's path, so it must be one path segment.
                request_id: head
                    .request_id
                    .filter(|id| !id.is_empty() && id.bytes().all(is_segment_byte))
                    .ok_or(RuntimeApiError::NoRequestId)?,
                invocation_id: head.invocation_id,
            })),
            status => Err(RuntimeApiError::NextStatus(status)),
        }
    }

    /// Posts the invocation's response, exactly these bytes.
    pub fn respond(&mut self, invocation: &Invocation, response: &[u8]) -> Result<(), RuntimeApiError> {
        let path = format!(
            "/2018-06-01/runtime/invocation/{}/response",
            invocation.request_id
        );
        self.answer(invocation, &path, &[], response)
    }

    /// Posts the invocation's error; the caller (Firehose) sees the invocation fail.
    pub fn fail(&mut self, invocation: &Invocation, diagnostic: &Diagnostic) -> Result<(), RuntimeApiError> {
        let path = format!("/2018-06-01/runtime/invocation/{}/error", invocation.request_id);
        let body = serde_json::to_vec(diagnostic)
            .unwrap_or_else(|_| br#"{"errorType":"Unhandled","errorMessage":""}"#.to_vec());
        self.answer(
            invocation,
            &path,
            &[("Lambda-Runtime-Function-Error-Type", "Unhandled")],
            &body,
        )
    }

    fn answer(
        &mut self,
        invocation: &Invocation,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), RuntimeApiError> {
        let mut all = headers.to_vec();
        if let Some(id) = &invocation.invocation_id {
            all.push(("Lambda-Runtime-Invocation-Id", id));
        }
        let head = self.exchange("POST", path, &all, body, &mut Vec::new())?;
        if !(200..300).contains(&head.status) {
            // 413: the response was over the payload limit; 410: the invocation timed out.
            // Either way this invocation is over and the next one can be served.
            tracing::error!(status = head.status, "The Lambda Runtime API refused the answer.");
        }
        Ok(())
    }

    /// Sends one request and reads the answer's body into `body`.
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        request_body: &[u8],
        body: &mut Vec<u8>,
    ) -> Result<Head, RuntimeApiError> {
        let mut request = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: metrics-enrich\r\nContent-Length: {}\r\n",
            self.base_path,
            self.authority,
            request_body.len()
        );
        for (name, value) in headers {
            let _ = write!(request, "{name}: {value}\r\n");
        }
        request.push_str("\r\n");

        let reused = self.connection.is_some();
        match self.try_exchange(request.as_bytes(), request_body, body) {
            // Not a byte came back on a kept-alive connection: the server had closed it, so the
            // request is sent once more on a new one. Once an answer has begun, a failure is not
            // retried, since the request may have been taken.
            Err(RuntimeApiError::Io(_)) if reused && self.head.is_empty() => {
                self.try_exchange(request.as_bytes(), request_body, body)
            }
            answer => answer,
        }
    }

    fn try_exchange(
        &mut self,
        head: &[u8],
        request_body: &[u8],
        body: &mut Vec<u8>,
    ) -> Result<Head, RuntimeApiError> {
        self.head.clear();
        let answer = self.send(head, request_body).map_err(RuntimeApiError::from);
        let answer = answer.and_then(|()| self.read_answer(body));
        match &answer {
            Ok(head) if !head.close => {}
            // Closed by the server, or left in an unknown state: the next request reconnects.
            _ => self.connection = None,
        }
        answer
    }

    fn send(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        if self.connection.is_none() {
            let stream = TcpStream::connect(&self.authority)?;
            stream.set_nodelay(true)?;
            self.connection = Some(Connection {
                writer: stream.try_clone()?,
                reader: BufReader::with_capacity(64 * 1024, stream),
            });
        }
        let connection = self.connection.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        connection.writer.write_all(head)?;
        connection.writer.write_all(body)?;
        connection.writer.flush()
    }

    fn read_answer(&mut self, body: &mut Vec<u8>) -> Result<Head, RuntimeApiError> {
        let connection = self
            .connection
            .as_mut()
            .ok_or(io::Error::from(io::ErrorKind::NotConnected))?;
        read_head(&mut connection.reader, &mut self.head)?;
        let head = parse_head(&self.head)?;
        body.clear();
        if head.chunked {
            read_chunked(&mut connection.reader, body)?;
        } else if let Some(length) = head.content_length {
            body.reserve(length);
            let read = (&mut connection.reader).take(length as u64).read_to_end(body)?;
            if read < length {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        }
        Ok(head)
    }
}

/// Reads up to and including the blank line that ends a response head, and no further.
/// `head` must be empty; it holds what was read so far even when reading fails.
fn read_head(reader: &mut BufReader<TcpStream>, head: &mut Vec<u8>) -> Result<(), RuntimeApiError> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let (offered, searched_from) = (available.len(), head.len().saturating_sub(3));
        head.extend_from_slice(available);
        if let Some(end) = memchr::memmem::find(&head[searched_from..], b"\r\n\r\n") {
            let head_len = searched_from + end + 4;
            reader.consume(offered - (head.len() - head_len));
            head.truncate(head_len);
            return Ok(());
        }
        reader.consume(offered);
        if head.len() > MAX_HEAD_BYTES {
            return Err(RuntimeApiError::Malformed(
                "a response head over 64 KiB".to_owned(),
            ));
        }
    }
}

fn parse_head(bytes: &[u8]) -> Result<Head, RuntimeApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(RuntimeApiError::Malformed("a partial head".to_owned())),
        Err(e) => return Err(RuntimeApiError::Malformed(e.to_string())),
    }
    let mut head = Head {
        status: response.code.unwrap_or_default(),
        ..Head::default()
    };
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| RuntimeApiError::Malformed(format!("a {} header that is not text", header.name)))?
            .trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse()
                .map_err(|_| RuntimeApiError::Malformed(format!("Content-Length {value:?}")))?;
            head.content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.eq_ignore_ascii_case("chunked");
            if !head.chunked {
                return Err(RuntimeApiError::Malformed(format!("Transfer-Encoding {value:?}")));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case(REQUEST_ID) {
            head.request_id = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case(INVOCATION_ID) {
            head.invocation_id = Some(value.to_owned());
        }
    }
    // Without a length the body would run to the end of the connection: read none, and do not
    // reuse the connection.
    if head.content_length.is_none() && !head.chunked {
        head.close = true;
    }
    Ok(head)
}

/// A `Transfer-Encoding: chunked` body, appended to `body`.
fn read_chunked(reader: &mut BufReader<TcpStream>, body: &mut Vec<u8>) -> Result<(), RuntimeApiError> {
    let mut line = Vec::new();
    loop {
        line.clear();
        reader.read_until(b'\n', &mut line)?;
        let size = match httparse::parse_chunk_size(&line) {
            Ok(httparse::Status::Complete((_, size))) => usize::try_from(size)
                .map_err(|_| RuntimeApiError::Malformed("a chunk larger than memory".to_owned()))?,
            _ => return Err(RuntimeApiError::Malformed("a chunk size line".to_owned())),
        };
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                line.clear();
                reader.read_until(b'\n', &mut line)?;
                if line == b"\r\n" || line.is_empty() {
                    return Ok(());
                }
            }
        }
        let read = (&mut *reader).take(size as u64).read_to_end(body)?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if read < size || crlf != *b"\r\n" {
            return Err(RuntimeApiError::Malformed(
                "a chunk shorter than its size".to_owned(),
            ));
        }
    }
}

/// A byte a path segment may hold as it is (RFC 3986 `pchar`, without percent-encoding).
fn is_segment_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte)
}

/// A panic in the handler, reported like any other invocation error.
fn panicked(payload: &(dyn std::any::Any + Send)) -> Diagnostic {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the handler panicked".to_owned());
    tracing::error!(error = %message, "The handler panicked; the invocation fails.");
    Diagnostic {
        error_type: "panic".to_owned(),
        error_message: message,
    }
}
