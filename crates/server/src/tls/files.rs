//! Reading the PEM certificate chain and private key into a rustls configuration, with a
//! message naming the file for each way it can be wrong: missing or unreadable, no
//! certificate or no key in it, a key file that group or others can read, a key that does not
//! match the certificate.

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The server speaks HTTP/1.1 only (WebSocket upgrades included).
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// A configuration serving the chain in `cert` with the key in `key`.
pub(super) fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = certificate_chain(cert)?;
    let key_der = private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "the TLS private key {} (setting tls_key) does not match the certificate {} \
                 (setting tls_cert)",
                key.display(),
                cert.display()
            ),
            e => format!(
                "the TLS certificate {} or key {} cannot be used: {e}",
                cert.display(),
                key.display()
            ),
        })?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate in the PEM file `path`, in order (the server's own first).
fn certificate_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let read = |e: pem::Error| {
        format!(
            "cannot read the TLS certificate file {} (setting tls_cert): {}",
            path.display(),
            describe(e)
        )
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if chain.is_empty() {
        return Err(format!(
            "the TLS certificate file {} (setting tls_cert) holds no PEM certificate \
             (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(chain)
}

/// The private key in the PEM file `path`, which must be private to the server's user.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    crate::data_dir::refuse_if_shared(path, "TLS private key file", 0o600)?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => format!(
            "the TLS private key file {} (setting tls_key) holds no PEM private key \
             (PKCS#8, RSA or EC)",
            path.display()
        ),
        e => format!(
            "cannot read the TLS private key file {} (setting tls_key): {}",
            path.display(),
            describe(e)
        ),
    })
}

fn describe(e: pem::Error) -> String {
    match e {
        pem::Error::Io(e) => e.to_string(),
        e => format!("not valid PEM: {e}"),
    }
}
