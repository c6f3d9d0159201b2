//! TLS (`tls_cert`, `tls_key`) with a certificate the test generates: GraphQL over
//! `https://`, subscriptions over `wss://` (frames larger than one TLS write, and a backlog
//! drained after the client stalls), a plain-HTTP client refused with a hint, a handshake
//! that never comes does not hold up other connections, and bad files refused at start with
//! the file named.

use infrastream_testkit::tls::{self, TestCertificate};
use infrastream_testkit::ws::LEGACY_WS;
use infrastream_testkit::{ADMIN_TOKEN, TestServer, WsClient};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const EVENTS: &str =
    "subscription($types: [String!]) { events(event_type: $types) { id event payload } }";

#[tokio::test]
async fn https_and_wss_serve_queries_and_subscriptions() {
    let cert = TestCertificate::generate();
    let s = TestServer::start_tls(&cert, &[]).await;
    assert!(s.url.starts_with("https://"), "{}", s.url);

    let shown = tls::handshake(cert.client_config(), s.addr())
        .await
        .unwrap();
    assert_eq!(shown.certificate, cert.der(), "the configured certificate");
    assert_eq!(shown.alpn.as_deref(), Some(&b"http/1.1"[..]), "ALPN");

    let data = s.admin("{ InfrahubInfo { version } }", json!({})).await;
    assert_eq!(data["InfrahubInfo"]["version"], env!("CARGO_PKG_VERSION"));

    let mut ws = s.ws().await;
    assert!(s.ws_url().starts_with("wss://"));
    ws.init(ADMIN_TOKEN).await;
    ws.subscribe("1", EVENTS, json!({"types": ["tls.a"]})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = s.emit("tls.a", r#", payload: {over: "tls"}"#).await;
    let event = ws.next_data("1").await;
    assert_eq!(event["events"]["id"], id.as_str());
    assert_eq!(event["events"]["payload"]["data"], json!({"over": "tls"}));
    ws.close().await;

    // The legacy protocol too; at shutdown the socket closes with 1001 over TLS.
    let mut legacy =
        WsClient::connect_tls(&s.ws_url(), Some(LEGACY_WS), cert.client_config()).await;
    legacy.init(ADMIN_TOKEN).await;
    legacy
        .subscribe("l", EVENTS, json!({"types": ["tls.b"]}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = s.emit("tls.b", "").await;
    assert_eq!(legacy.next_data("l").await["events"]["id"], id.as_str());
    let stopping = tokio::spawn(s.shutdown());
    legacy.expect_close(1001).await;
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_wss_backlog_is_drained_in_order_once_the_client_reads_again() {
    let cert = TestCertificate::generate();
    let s = TestServer::start_tls(&cert, &[]).await;
    // A 4 KiB receive buffer: the server's writes soon find the kernel full, so frames wait
    // as TLS records and in the outbox.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr().parse().unwrap()).await.unwrap();
    let mut ws = WsClient::connect_tls_on(
        stream,
        &s.ws_url(),
        Some("graphql-transport-ws"),
        cert.client_config(),
    )
    .await;
    ws.init(ADMIN_TOKEN).await;
    ws.subscribe("1", EVENTS, json!({"types": ["tls.big"]}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Frames larger than what rustls takes in one write (64 KiB), while the client does not
    // read: the backlog is kept and drained in order once it reads again.
    let big = "x".repeat(150_000);
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(
            s.emit(
                "tls.big",
                &format!(r#", payload: {{n: {n}, big: "{big}"}}"#),
            )
            .await,
        );
    }
    for (n, id) in ids.iter().enumerate() {
        let event = ws.next_data("1").await;
        assert_eq!(event["events"]["id"], id.as_str(), "event {n}");
        assert_eq!(event["events"]["payload"]["data"]["n"], n);
        assert_eq!(event["events"]["payload"]["data"]["big"], big.as_str());
    }
    ws.close().await;
    s.shutdown().await;
}

#[tokio::test]
async fn plain_http_and_ws_to_the_tls_port_fail_cleanly() {
    let cert = TestCertificate::generate();
    let s = TestServer::start_tls(&cert, &[]).await;
    let plain = format!("http://{}/health", s.addr());
    let r = reqwest::get(&plain).await.unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("use https://"), "{text}");

    let e = WsClient::try_connect(
        &format!("ws://{}/graphql", s.addr()),
        Some("graphql-transport-ws"),
    )
    .await
    .err()
    .expect("ws:// to a TLS port fails");
    assert!(e.contains("400"), "{e}");

    // A client that does not trust the certificate cannot connect.
    let stranger = TestCertificate::generate();
    let e = tls::handshake(stranger.client_config(), s.addr())
        .await
        .unwrap_err();
    assert!(e.contains("certificate"), "{e}");

    // The server still serves.
    let data = s.admin("{ InfrahubInfo { version } }", json!({})).await;
    assert!(data["InfrahubInfo"]["version"].is_string());
    s.shutdown().await;
}

#[tokio::test]
async fn a_stalled_handshake_holds_up_nobody_and_is_dropped_in_time() {
    let cert = TestCertificate::generate();
    let s = TestServer::start_tls(&cert, &[("tls_handshake_timeout_ms", "3000")]).await;
    // Connects and sends nothing: no ClientHello.
    let mut stalled = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    // Half a ClientHello: a TLS record header promising more.
    let mut halfway = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut halfway, &[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let data = s.admin("{ InfrahubInfo { version } }", json!({})).await;
        assert!(data["InfrahubInfo"]["version"].is_string());
    }
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "served while two handshakes hang: {:?}",
        started.elapsed()
    );
    for (name, stream) in [("silent", &mut stalled), ("halfway", &mut halfway)] {
        let mut buf = [0u8; 64];
        let ended = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("the {name} connection is still open after 10 s"));
        assert!(matches!(ended, Ok(0) | Err(_)), "{name}: {ended:?}");
    }
    s.shutdown().await;
}

/// The error `Server::start` gives for `settings` (the data directory in `dir`).
async fn refusal(dir: &std::path::Path, tls: &[(&str, String)]) -> String {
    let mut overrides = vec![(
        "data_dir".to_string(),
        dir.join("data").display().to_string(),
    )];
    overrides.extend(tls.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let settings = infrastream_config::load(None, Vec::new(), &overrides).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    infrastream_server::Server::start(settings, listener)
        .await
        .err()
        .expect("refused")
        .to_string()
}

#[tokio::test]
async fn bad_certificate_or_key_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCertificate::generate();
    let other = TestCertificate::generate();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (cert_file, key_file) = (
        cert.cert_path().display().to_string(),
        cert.key_path().display().to_string(),
    );
    let write = |name: &str, text: &str, mode: u32| {
        std::fs::write(dir.path().join(name), text).unwrap();
        std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(mode))
            .unwrap();
    };

    let missing = path("missing.pem");
    let e = refusal(
        dir.path(),
        &[("tls_cert", missing.clone()), ("tls_key", key_file.clone())],
    )
    .await;
    assert!(e.contains(&missing) && e.contains("tls_cert"), "{e}");
    let e = refusal(
        dir.path(),
        &[
            ("tls_cert", cert_file.clone()),
            ("tls_key", missing.clone()),
        ],
    )
    .await;
    assert!(e.contains(&missing), "{e}");

    // A key where the certificate should be, and a certificate where the key should be.
    write("key-as-cert.pem", &cert.key_pem, 0o600);
    let e = refusal(
        dir.path(),
        &[
            ("tls_cert", path("key-as-cert.pem")),
            ("tls_key", key_file.clone()),
        ],
    )
    .await;
    assert!(
        e.contains("holds no PEM certificate") && e.contains(&path("key-as-cert.pem")),
        "{e}"
    );
    write("cert-as-key.pem", &cert.cert_pem, 0o600);
    let e = refusal(
        dir.path(),
        &[
            ("tls_cert", cert_file.clone()),
            ("tls_key", path("cert-as-key.pem")),
        ],
    )
    .await;
    assert!(
        e.contains("holds no PEM private key") && e.contains(&path("cert-as-key.pem")),
        "{e}"
    );

    // Another certificate's key.
    let e = refusal(
        dir.path(),
        &[
            ("tls_cert", cert_file.clone()),
            ("tls_key", other.key_path().display().to_string()),
        ],
    )
    .await;
    assert!(e.contains("does not match the certificate"), "{e}");

    // A key that group or others can read: refused with the chmod that fixes it, and the key
    // itself is never shown.
    write("shared-key.pem", &cert.key_pem, 0o644);
    let shared = path("shared-key.pem");
    let e = refusal(
        dir.path(),
        &[("tls_cert", cert_file.clone()), ("tls_key", shared.clone())],
    )
    .await;
    assert!(e.contains(&format!("chmod 600 {shared}")), "{e}");
    let key_body = cert.key_pem.lines().nth(1).unwrap();
    assert!(!e.contains(key_body), "the key is never shown: {e}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing created before the refusal"
    );
}
