//! End-to-end test support: the function binaries the workspace's test build made, run under
//! `cargo lambda watch`'s Lambda emulator and invoked with `cargo lambda invoke`, as the README
//! tells users to try them.
//!
//! The emulator runs with `--only-lambda-apis` and this crate starts the already built binaries
//! itself, so the tests build nothing and run exactly what the test build made. Left to build
//! them, `cargo lambda watch` runs `cargo run --bin <function>`, whose features (the
//! workspace's without dev-dependencies) differ from the test build's: it recompiles
//! `aws-config`, `tracing-subscriber`, `lambda_runtime` and the functions.
//!
//! Output of the emulator and the functions is collected and printed when the [`Emulator`] is
//! dropped, so the test harness shows it only for a failing test.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)] // test support: fail loudly

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod fixtures;

pub use metrics_testkit::workspace_root;

/// A file under the workspace root (`events/…`).
pub fn workspace_file(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}

/// A workspace binary built by the same `cargo test --workspace` run as this test (the
/// `debug/` directory above the test executable's `deps/`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in <target>/debug/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: these tests run the workspace's own binaries, so run them with \
         `cargo test --workspace` (as scripts/test does), which builds every binary first",
        path.display()
    );
    path
}

/// `cargo-lambda` at `$CARGO_LAMBDA`, else in the workspace's `.venv` (scripts/test installs it
/// there from PyPI).
fn cargo_lambda() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_LAMBDA") {
        return PathBuf::from(path);
    }
    let path = workspace_root().join(".venv/bin/cargo-lambda");
    assert!(
        path.exists(),
        "cargo-lambda not found at {} and CARGO_LAMBDA is not set. Install it with \
         `python3 -m venv .venv && .venv/bin/pip install cargo-lambda` at the workspace root, \
         or run scripts/test, which does this.",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// Output of child processes, kept for the failure report.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn collect(&self, child: &mut Child, label: &str) -> Vec<JoinHandle<()>> {
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        let mut readers = Vec::new();
        for mut stream in streams.into_iter().flatten() {
            let log = self.clone();
            let label = label.to_owned();
            readers.push(std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = stream.read_to_end(&mut text);
                let mut all = log.0.lock().unwrap();
                for line in text.split_inclusive(|b| *b == b'\n') {
                    all.extend_from_slice(format!("[{label}] ").as_bytes());
                    all.extend_from_slice(line);
                }
            }));
        }
        readers
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// `cargo lambda watch --only-lambda-apis` on a free port of 127.0.0.1, and the functions
/// started against it. Everything is stopped when it is dropped.
#[derive(Debug)]
pub struct Emulator {
    port: u16,
    children: Vec<Child>,
    readers: Vec<JoinHandle<()>>,
    log: Log,
}

impl Emulator {
    /// Starts the emulator and waits until it accepts connections.
    pub fn start() -> Emulator {
        let port = free_port();
        let mut watch = Command::new(cargo_lambda())
            .args(["lambda", "watch", "--only-lambda-apis"])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start cargo lambda watch");
        let log = Log::default();
        let readers = log.collect(&mut watch, "cargo lambda watch");
        let emulator = Emulator {
            port,
            children: vec![watch],
            readers,
            log,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on {addr} within 30 s:\n{}",
                emulator.log.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator
    }

    /// Starts the built binary `name` as the function `name`, with `env` on top of the test's
    /// own environment (the AWS SDK variables included).
    pub fn function(&mut self, name: &str, env: &[(&str, &str)]) {
        let mut child = Command::new(binary(name))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt/{name}", self.port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .envs(env.iter().copied())
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let readers = self.log.collect(&mut child, name);
        self.readers.extend(readers);
        self.children.push(child);
    }

    /// `cargo lambda invoke NAME --data-file FILE` against this emulator: the function's
    /// answer as JSON.
    pub async fn invoke(&self, name: &str, data_file: &Path) -> Value {
        let output = tokio::process::Command::new(cargo_lambda())
            .args(["lambda", "invoke", name, "--output-format", "json"])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &self.port.to_string(),
            ])
            .arg("--data-file")
            .arg(data_file)
            .current_dir(workspace_root())
            .output()
            .await
            .expect("cannot run cargo lambda invoke");
        assert!(
            output.status.success(),
            "cargo lambda invoke {name} --data-file {} failed: {}\n{}\n{}",
            data_file.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr),
            self.log.text()
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "cargo lambda invoke {name} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        // Printed from the test's own thread, so the harness shows it only when the test fails.
        print!("{}", self.log.text());
    }
}

/// A directory under the system's temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("metrics-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("cannot create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A JSON file's contents.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
