//! Delivery over the real client: every SSRF address class refused before a connection is
//! made, redirects refused, receivers' answers classified.

use std::sync::Arc;

use metrics_alerts::{Deliverer, Delivery, DeliveryReason, FixedClock, UrlPolicy};
use metrics_http::Secret;

use crate::common::{Receiver, T0, fast_delivery};

fn deliverer(policy: UrlPolicy) -> Deliverer {
    Deliverer::new(policy, fast_delivery(), Arc::new(FixedClock::new(T0))).unwrap()
}

fn secret() -> Secret {
    metrics_alerts::signing::new_secret().unwrap()
}

fn reason(d: &Delivery) -> Option<DeliveryReason> {
    match d {
        Delivery::DeadLettered { reason, .. } => Some(*reason),
        Delivery::Delivered { .. } => None,
    }
}

#[tokio::test]
async fn every_internal_address_class_is_refused_at_delivery_without_a_request() {
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();
    let d = deliverer(UrlPolicy::PUBLIC);
    // https URLs pass the form check; where they lead is refused by the client itself.
    for url in [
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://localhost:{port}/hook"),
        format!("https://[::1]:{port}/hook"),
        format!("https://[::ffff:127.0.0.1]:{port}/hook"),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://[fd00:ec2::254]/".to_owned(),
        "https://10.0.0.1/".to_owned(),
        "https://192.168.0.1/".to_owned(),
        "https://172.16.0.1/".to_owned(),
        "https://[fe80::1]/".to_owned(),
        "https://224.0.0.1/".to_owned(),
        "https://0.0.0.0/".to_owned(),
        "https://[::]/".to_owned(),
        "https://100.64.0.1/".to_owned(),
    ] {
        let sent = d.send(&url, &secret(), "al_x.1.firing", "{}").await;
        assert_eq!(
            reason(&sent),
            Some(DeliveryReason::AddressNotAllowed),
            "{url}: {sent:?}"
        );
        assert_eq!(
            sent,
            Delivery::DeadLettered {
                attempts: 1,
                reason: DeliveryReason::AddressNotAllowed,
                status: None
            },
            "{url}"
        );
    }
    assert!(receiver.received().is_empty());
    // Deployed, plain http is not even tried.
    let sent = d
        .send(&receiver.url("/hook"), &secret(), "al_x.1.firing", "{}")
        .await;
    assert_eq!(reason(&sent), Some(DeliveryReason::InvalidUrl));
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn redirects_are_refused_not_followed() {
    let receiver = Receiver::start().await;
    let sent = deliverer(UrlPolicy::LOCAL)
        .send(&receiver.url("/moved"), &secret(), "al_x.1.firing", "{}")
        .await;
    assert_eq!(
        sent,
        Delivery::DeadLettered {
            attempts: 1,
            reason: DeliveryReason::RedirectRefused,
            status: Some(302)
        }
    );
}

#[tokio::test]
async fn a_refusing_receiver_is_not_retried_and_a_closed_port_is() {
    let receiver = Receiver::start().await;
    receiver.script(&[400]);
    let d = deliverer(UrlPolicy::LOCAL);
    let sent = d
        .send(&receiver.url("/hook"), &secret(), "al_x.1.firing", "{}")
        .await;
    assert_eq!(
        sent,
        Delivery::DeadLettered {
            attempts: 1,
            reason: DeliveryReason::ReceiverRefused,
            status: Some(400)
        }
    );
    // A port nobody listens on: every attempt fails to connect.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sent = d
        .send(
            &format!("http://127.0.0.1:{closed}/hook"),
            &secret(),
            "al_x.1.firing",
            "{}",
        )
        .await;
    assert_eq!(
        sent,
        Delivery::DeadLettered {
            attempts: 3,
            reason: DeliveryReason::ConnectionFailed,
            status: None
        }
    );
}

#[tokio::test]
async fn each_attempt_is_signed_with_the_secret_and_the_body_sent() {
    let receiver = Receiver::start().await;
    let s = secret();
    let body = r#"{"type":"alert.firing","data":{}}"#;
    let sent = deliverer(UrlPolicy::LOCAL)
        .send(&receiver.url("/hook"), &s, "al_x.1.firing", body)
        .await;
    assert_eq!(
        sent,
        Delivery::Delivered {
            attempts: 1,
            status: 200
        }
    );
    let got = receiver.received();
    assert_eq!(got[0].body.as_ref(), body.as_bytes());
    assert_eq!(got[0].timestamp, (T0 / 1000).to_string());
    assert!(got[0].verifies(&s, T0 / 1000));
    assert!(!got[0].verifies(&secret(), T0 / 1000));
}
