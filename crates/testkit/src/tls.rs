//! TLS for tests: a self-signed certificate generated on the spot (rcgen, ring) for
//! `127.0.0.1` and `localhost`, written as the PEM files the server reads (the key `0600`, as
//! the server requires), and clients that trust it and nothing else: a reqwest client, a
//! rustls configuration (for `wss://` through [`WsClient::connect_tls`](crate::WsClient)),
//! and a bare handshake that tells which certificate the server presents.

pub use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A self-signed certificate and its key, as PEM files in a temporary directory.
pub struct TestCertificate {
    dir: tempfile::TempDir,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
    der: CertificateDer<'static>,
}

impl TestCertificate {
    /// A new certificate for `127.0.0.1` and `localhost`, with its files written.
    ///
    /// # Panics
    /// When the certificate cannot be generated or written.
    pub fn generate() -> Self {
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(names).expect("generate a certificate");
        let made = Self {
            dir: tempfile::tempdir().unwrap(),
            cert_pem: cert.pem(),
            key_pem: signing_key.serialize_pem(),
            der: cert.der().clone(),
        };
        made.install(&made.cert_path(), &made.key_path());
        made
    }

    /// The certificate's PEM file.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The key's PEM file (mode `0600`).
    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// `tls_cert` and `tls_key` pointing at the files.
    pub fn settings(&self) -> [(String, String); 2] {
        [
            ("tls_cert".into(), self.cert_path().display().to_string()),
            ("tls_key".into(), self.key_path().display().to_string()),
        ]
    }

    /// Writes this certificate to `cert` and its key to `key` (mode `0600`), e.g. over
    /// another certificate's files before a reload.
    ///
    /// # Panics
    /// When a file cannot be written.
    pub fn install(&self, cert: &Path, key: &Path) {
        std::fs::write(cert, &self.cert_pem).unwrap();
        std::fs::write(key, &self.key_pem).unwrap();
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// A rustls client configuration trusting this certificate only.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        client_config(&[self])
    }

    /// A reqwest client trusting this certificate only.
    ///
    /// # Panics
    /// When the client cannot be built.
    pub fn http_client(&self) -> reqwest::Client {
        http_client(&[self])
    }
}

/// A reqwest client trusting `trusted` only.
///
/// # Panics
/// When the client cannot be built.
pub fn http_client(trusted: &[&TestCertificate]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().tls_built_in_root_certs(false);
    for c in trusted {
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(c.cert_pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A rustls client configuration (ring, ALPN `http/1.1`) trusting `trusted` only.
///
/// # Panics
/// When a certificate cannot be added.
pub fn client_config(trusted: &[&TestCertificate]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add(c.der.clone()).expect("a trust anchor");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// What a TLS handshake with `addr` (`127.0.0.1:PORT`) shows.
#[derive(Debug)]
pub struct Handshake {
    /// The server's certificate, DER.
    pub certificate: Vec<u8>,
    /// The protocol chosen by ALPN.
    pub alpn: Option<Vec<u8>>,
}

/// Completes a TLS handshake with `addr` under `config` (as `127.0.0.1`).
pub async fn handshake(config: Arc<ClientConfig>, addr: &str) -> Result<Handshake, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    let (_, conn) = stream.get_ref();
    Ok(Handshake {
        certificate: conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.to_vec())
            .unwrap_or_default(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
    })
}
