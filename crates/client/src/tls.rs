//! `https://` and `wss://`: one rustls configuration for both, trusting the certificates of a
//! CA file — `--ca-file`, else `SSL_CERT_FILE`, else the system's bundle
//! (`/etc/ssl/certs/ca-certificates.crt` on Debian and Ubuntu,
//! `/etc/pki/tls/certs/ca-bundle.crt` on Fedora and RHEL).

use crate::ClientError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The system bundles tried when no CA file is named.
const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The CA file to trust: `ca_file`, else `SSL_CERT_FILE`, else the first system bundle there is.
fn bundle(ca_file: Option<&Path>) -> Result<PathBuf, ClientError> {
    if let Some(path) = ca_file {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        return Ok(path.into());
    }
    SYSTEM_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            ClientError::Usage(
                "no CA certificates to verify the server with: give --ca-file (or SSL_CERT_FILE)"
                    .into(),
            )
        })
}

/// A client configuration trusting the certificates of the CA file (see the module docs).
pub(crate) fn config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let path = bundle(ca_file)?;
    let unreadable = |e: &dyn std::fmt::Display| {
        ClientError::Usage(format!("cannot read CA file {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| unreadable(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(unreadable(&"no certificate in it"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
