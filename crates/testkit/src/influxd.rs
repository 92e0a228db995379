//! A real InfluxDB 1.x server (`influxd`, Debian's `influxdb` package) on 127.0.0.1, for tests
//! that check line protocol against a real parser: it accepts line protocol at `/write` and
//! answers InfluxQL at `/query`.
//!
//! The binary is `$INFLUXD`, else `/usr/bin/influxd` (the test command installs the package
//! when it is missing). A test that needs it and cannot start it fails saying how to install
//! it: it never skips. Each server gets free ports and its own temporary directories, and a
//! small shell watchdog stops it and removes them when the test process exits.
#![allow(clippy::panic, clippy::expect_used)] // test support: failing loudly is the point

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::free_port;

/// A running `influxd`.
#[derive(Debug)]
pub struct Influxd {
    addr: SocketAddr,
    _watchdog: Child,
}

/// Runs the server until the test process (the shell's parent) is gone, then cleans up.
const WATCHDOG: &str = r#"
"$1" -config "$2" >"$3/influxd.log" 2>&1 &
server=$!
while kill -0 "$PPID" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.2; done
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
rm -rf "$3"
"#;

/// An HTTP answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Influxd {
    /// The server shared by every test in this process, started on first use.
    pub fn shared() -> &'static Influxd {
        static SHARED: OnceLock<Influxd> = OnceLock::new();
        SHARED.get_or_init(Influxd::start)
    }

    /// Starts a new server and waits until `/ping` answers.
    pub fn start() -> Influxd {
        let binary =
            std::env::var_os("INFLUXD").map_or_else(|| PathBuf::from("/usr/bin/influxd"), PathBuf::from);
        assert!(
            binary.exists(),
            "influxd not found at {} and INFLUXD is not set. Install Debian's package with \
             `apt-get install -y influxdb`, or run the test command (scripts/test), which does this.",
            binary.display()
        );
        let http_port = free_port();
        let rpc_port = free_port();
        let dir = std::env::temp_dir().join(format!("metrics-influxd-{}-{http_port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let d = dir.display();
        let config = format!(
            "reporting-disabled = true\n\
             bind-address = \"127.0.0.1:{rpc_port}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{http_port}\"\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [continuous_queries]\n  enabled = false\n"
        );
        let config_path = dir.join("influxd.conf");
        std::fs::write(&config_path, config).expect("write the server's config");
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("influxd-watchdog")
            .arg(&binary)
            .arg(&config_path)
            .arg(&dir)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let server = Influxd {
            addr: SocketAddr::from(([127, 0, 0, 1], http_port)),
            _watchdog: watchdog,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if server.request("GET", "/ping", "").is_ok_and(|a| a.status == 204) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "influxd did not answer /ping on {} within 60 s; its log is {d}/influxd.log",
                server.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs an InfluxQL statement (`CREATE DATABASE …`, `SELECT …`) in `db`.
    pub fn query(&self, db: &str, q: &str) -> Answer {
        let path = format!("/query?db={}&epoch=ms&q={}", encode(db), encode(q));
        self.request("POST", &path, "").expect("influxd /query")
    }

    /// Writes line protocol to `db` with `precision` (`ms`, `s`, …).
    pub fn write(&self, db: &str, precision: &str, body: &str) -> Answer {
        let path = format!("/write?db={}&precision={}", encode(db), encode(precision));
        self.request("POST", &path, body).expect("influxd /write")
    }

    /// One HTTP/1.0 exchange (no chunked answers, the connection closes at the end).
    fn request(&self, method: &str, path: &str, body: &str) -> std::io::Result<Answer> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {head:?}")))?;
        Ok(Answer {
            status,
            body: body.to_owned(),
        })
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
