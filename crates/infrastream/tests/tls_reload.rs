//! TLS in the real binary: it announces `https://` and `wss://`, SIGHUP re-reads the
//! certificate (new connections get the new one while an established `wss://` session goes
//! on), a bad file on reload keeps the certificate in force with an error naming the file,
//! and half a TLS configuration is refused at start.

use infrastream_testkit::tls::{self, TestCertificate};
use infrastream_testkit::ws::TRANSPORT_WS;
use infrastream_testkit::{ADMIN_TOKEN, Binary, WsClient};
use serde_json::json;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_infrastream");

fn hangup(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP {pid}: {status}");
}

/// Waits up to 10 s for new connections to be shown `expected`.
async fn until_presented(config: &std::sync::Arc<tls::ClientConfig>, addr: &str, expected: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = tls::handshake(config.clone(), addr).await.unwrap();
        if shown.certificate == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn emit(http: &reqwest::Client, url: &str, event: &str) -> String {
    let q = format!("mutation {{ EventEmit(data: {{event: \"{event}\"}}) {{ object {{ id }} }} }}");
    let body: serde_json::Value = http
        .post(format!("{url}/graphql"))
        .header("x-infrahub-key", ADMIN_TOKEN)
        .json(&json!({"query": q}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]["EventEmit"]["object"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string()
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_a_bad_file_keeps_the_old_one() {
    let first = TestCertificate::generate();
    let second = TestCertificate::generate();
    let (cert, key) = (first.cert_path(), first.key_path());
    let mut server = Binary::builder(EXE)
        .set("tls_cert", &cert.display().to_string())
        .set("tls_key", &key.display().to_string())
        .capture_stderr()
        .spawn();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    // The lines after the first are read while the test goes on.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stdout().iter().any(|l| l.contains(&server.ws_url())) {
        assert!(
            Instant::now() < deadline,
            "the startup lines name {}: {:?}",
            server.ws_url(),
            server.stdout()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.ws_url().starts_with("wss://"));
    let trusting_both = tls::client_config(&[&first, &second]);
    let http = tls::http_client(&[&first, &second]);
    let shown = tls::handshake(trusting_both.clone(), server.addr())
        .await
        .unwrap();
    assert_eq!(shown.certificate, first.der());

    // A session established under the first certificate.
    let mut ws =
        WsClient::connect_tls(&server.ws_url(), Some(TRANSPORT_WS), trusting_both.clone()).await;
    ws.init(ADMIN_TOKEN).await;
    ws.subscribe(
        "1",
        "subscription { events(event_type: [\"reload.x\"]) { id } }",
        json!(null),
    )
    .await;

    second.install(&cert, &key);
    hangup(server.pid());
    until_presented(&trusting_both, server.addr(), second.der()).await;
    let id = emit(&http, &server.url, "reload.x").await;
    assert_eq!(
        ws.next_data("1").await["events"]["id"],
        id.as_str(),
        "the established session goes on"
    );

    // A bad certificate file: the error names it, and the second certificate stays in force.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    hangup(server.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("not reloaded") {
        assert!(
            Instant::now() < deadline,
            "no reload error logged: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logged = server.stderr();
    assert!(logged.contains(&cert.display().to_string()), "{logged}");
    let shown = tls::handshake(trusting_both.clone(), server.addr())
        .await
        .unwrap();
    assert_eq!(
        shown.certificate,
        second.der(),
        "the previous certificate stays"
    );
    let id = emit(&http, &server.url, "reload.x").await;
    assert_eq!(ws.next_data("1").await["events"]["id"], id.as_str());

    // Good files again: reloaded.
    first.install(&cert, &key);
    hangup(server.pid());
    until_presented(&trusting_both, server.addr(), first.der()).await;
    ws.close().await;
    let status = server.stop(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn half_a_tls_configuration_is_refused_at_start() {
    let cert = TestCertificate::generate();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let out = infrastream_testkit::binary::run(
        EXE,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
            "--set",
            &format!("tls_cert={}", cert.cert_path().display()),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls_key") && err.contains("required with tls_cert"),
        "{err}"
    );
}
