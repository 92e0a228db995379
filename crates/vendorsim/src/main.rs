//! `metrics-vendorsim`: runs the Segment / Mixpanel simulator in the foreground.
//!
//! ```text
//! metrics-vendorsim [--addr 127.0.0.1:8787] [--latency-ms 50]
//! ```
//! Credentials are the fixed test values printed at start (see `Credentials::test`).

use std::net::SocketAddr;

use metrics_vendorsim::{Credentials, Settings, Sim};

const USAGE: &str = "usage: metrics-vendorsim [--addr HOST:PORT] [--latency-ms MS]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8787));
    let mut latency_ms = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value.parse()?,
            ("--latency-ms", Some(value)) => latency_ms = Some(value.parse()?),
            _ => return Err(USAGE.into()),
        }
    }
    let credentials = Credentials::test();
    let sim = Sim::start(addr, credentials.clone()).await?;
    if latency_ms.is_some() {
        sim.client()
            .settings(&Settings {
                latency_ms,
                ..Settings::default()
            })
            .await?;
    }
    println!("metrics-vendorsim listening on {}", sim.endpoint());
    println!("credentials: {}", serde_json::to_string(&credentials)?);
    println!("control: GET /_sim/state, POST /_sim/faults, POST /_sim/settings, POST /_sim/reset");
    // Runs until the process is stopped (Ctrl-C ends it; nothing needs flushing).
    std::future::pending::<()>().await;
    Ok(())
}
