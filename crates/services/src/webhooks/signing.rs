//! Webhook signatures. (Stub: filled in by the signing work.)

/// How a webhook's requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Standard Webhooks 1.0: `whsec_`-prefixed base64 secrets (several during a rotation).
    Standard,
    /// Infrahub's: HMAC-SHA256 with the raw `shared_key` bytes.
    Infrahub,
}

/// One signing key, parsed from a webhook's `shared_key`.
#[derive(Clone)]
pub struct SigningKey(pub Vec<u8>);

/// The keys of `shared_key` under `scheme`: for `Standard`, one or more space-separated
/// `whsec_<base64>` secrets; for `Infrahub`, the raw key.
pub fn parse_keys(scheme: Scheme, shared_key: &str) -> Result<Vec<SigningKey>, String> {
    let _ = scheme;
    Ok(vec![SigningKey(shared_key.as_bytes().to_vec())])
}

/// The `webhook-signature` header value for `body` sent as message `msg_id` at `timestamp`
/// (Unix seconds): `v1,<base64>` per key, space-separated.
pub fn sign(
    scheme: Scheme,
    keys: &[SigningKey],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let _ = (scheme, keys, msg_id, timestamp, body);
    String::new()
}
