#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
use std::io::{Read, Write};
use std::net::TcpStream;

use metrics_testkit::Moto;

#[test]
fn shared_server_answers_its_state_api_on_loopback() {
    let moto = Moto::shared();
    let addr = moto.endpoint().trim_start_matches("http://");
    assert!(addr.starts_with("127.0.0.1:"));
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /moto-api/data.json HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.") && response.contains(" 200 "),
        "{response:.200}"
    );
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(
        body.trim_start().starts_with('{'),
        "moto's state dump is a JSON object: {body:.200}"
    );
}
