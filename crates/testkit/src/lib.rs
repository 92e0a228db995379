//! Test support: a real moto server (AWS APIs over HTTP on 127.0.0.1) for tests that use the
//! official SDK clients.
//!
//! The server is found at `$MOTO_SERVER`, else `.venv/bin/moto_server` at the workspace root
//! (the test command installs it there). A test that needs it and cannot start it fails with a
//! message saying how to install it: it never skips.
//!
//! Each test binary shares one server ([`Moto::shared`]); tests keep apart by using their own
//! resource names. A small watchdog stops the server when the test process exits, so no server
//! outlives its tests.
#![allow(clippy::panic, clippy::expect_used)] // test support: failing loudly is the point

pub mod influxd;
#[cfg(feature = "s3")]
pub mod s3;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// The account id moto uses.
pub const ACCOUNT_ID: &str = "123456789012";
/// The region every test client uses.
pub const REGION: &str = "us-east-1";

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
    _watchdog: Child,
}

/// Stops the server when the process that started the watchdog is gone (tests end without
/// running destructors of statics, so the server cannot be stopped from Rust).
const WATCHDOG: &str = r#"
import os, subprocess, sys, time
parent = os.getppid()
server = subprocess.Popen([sys.argv[1], "-H", "127.0.0.1", "-p", sys.argv[2]],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    while os.getppid() == parent and server.poll() is None:
        time.sleep(0.2)
finally:
    server.terminate()
    try:
        server.wait(5)
    except Exception:
        server.kill()
"#;

impl Moto {
    /// The server shared by every test in this process, started on first use.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    /// Starts a new server on a free port and waits until it accepts connections.
    pub fn start() -> Moto {
        let server = moto_server_path();
        let python = server.with_file_name("python3");
        let python = if python.exists() {
            python
        } else {
            PathBuf::from("python3")
        };
        let port = free_port();
        let watchdog = Command::new(&python)
            .arg("-c")
            .arg(WATCHDOG)
            .arg(&server)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto via {}: {e}", python.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {addr} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint: format!("http://{addr}"),
            _watchdog: watchdog,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An SDK config for this server: fixed region, static test credentials, no retries (so
    /// injected faults surface at once).
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "metrics-testkit",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await
    }
}

fn moto_server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let root = workspace_root();
    let path = root.join(".venv/bin/moto_server");
    assert!(
        path.exists(),
        "moto_server not found at {} and MOTO_SERVER is not set. Install it with \
         `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'` at the workspace root, \
         or run the test command from the README, which does this.",
        path.display()
    );
    path
}

/// The workspace root: two levels above this crate's manifest.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .expect("the test kit lives at crates/testkit")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// An environment for a configuration's `from_lookup`: `vars` are set, everything else is not.
pub fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}
