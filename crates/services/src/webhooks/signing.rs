//! Webhook signatures: Standard Webhooks 1.0, and Infrahub's own variant of it.
//!
//! # Standard Webhooks 1.0 ([`Scheme::Standard`])
//!
//! As `spec/standard-webhooks.md` of github.com/standard-webhooks/standard-webhooks specifies
//! (symmetric signatures, `v1`):
//!
//! - three headers: `webhook-id` (the message id, the same on every retry of a message),
//!   `webhook-timestamp` (integer Unix seconds of the attempt) and `webhook-signature`;
//! - the signed content is the bytes `{webhook-id}.{webhook-timestamp}.{body}`, the body
//!   being exactly the bytes sent;
//! - the signature is HMAC-SHA256 of that content, base64 (standard alphabet, padded), and
//!   the header value is `v1,<signature>`;
//! - a secret is written `whsec_<base64 of the key bytes>`; the HMAC key is the
//!   base64-**decoded** bytes, not the text;
//! - during a key rotation several secrets are active: `shared_key` holds them separated by
//!   spaces, every request is signed with each, and the header lists the signatures separated
//!   by spaces (`v1,<sig1> v1,<sig2>`); a receiver accepts the request when any of them
//!   verifies with its key.
//!
//! Receivers SHOULD refuse a timestamp more than [`TOLERANCE_SECONDS`] (5 minutes) away from
//! their clock; [`verify`] does.
//!
//! # Infrahub's scheme ([`Scheme::Infrahub`])
//!
//! Found in opsmill/infrahub, `backend/infrahub/webhook/models.py`, `Webhook._assign_headers`
//! and `Webhook._sign` (in older releases the same code sat on `StandardWebhook`); the
//! receiver Infrahub documents is `docs/docs/media/fastapi_webhook_receiver.txt`
//! (`verify_signature`), shown by `docs/docs/topics/webhooks.mdx` ("Shared key for
//! security"). When the webhook has a `shared_key`, Infrahub sends
//!
//! - `Accept: application/json`, `Content-Type: application/json`,
//! - `webhook-id: msg_<uuid4 as 32 lowercase hex digits>` (a fresh one per send),
//! - `webhook-timestamp: <integer Unix seconds>` (`Timestamp().to_timestamp()`),
//! - `webhook-signature: v1,<base64(HMAC-SHA256(key, content))>`, where the key is
//!   `shared_key.encode()` — the **raw UTF-8 bytes** of the key as typed, no `whsec_`
//!   prefix, no base64 decoding — and the content is
//!   `f"{message_id}.{timestamp}.{payload}".encode()` with
//!   `payload = json.dumps(self._payload, separators=(",", ":"))` (older releases:
//!   `json.dumps(self._payload)`, i.e. `", "` and `": "` separators). Python's `json.dumps`
//!   escapes every non-ASCII character as `\uXXXX` (`ensure_ascii` defaults to true).
//!
//! The body is then sent with httpx's `json=` argument, which serializes the payload again
//! itself (httpx 0.28: compact, non-ASCII characters left as UTF-8). So Infrahub's signature
//! covers its `json.dumps` text, which equals the bytes on the wire only when the payload is
//! ASCII (and, for the older releases, never with httpx 0.28). infrastream therefore sends,
//! in this scheme as in the other, a body that is compact and escapes every non-ASCII
//! character (see [`super::body`]): those bytes are at once what is sent, what is signed, and
//! what Infrahub's `json.dumps(…, separators=(",", ":"))` gives for that payload, so a receiver
//! written either way (over the raw body, as Infrahub's documented receiver does, or over
//! `json.dumps` of the parsed body) verifies it. [`verify_infrahub`], for requests that a
//! real Infrahub sends, accepts a signature over the raw body or over either `json.dumps`
//! form of it.
//!
//! HMAC-SHA256 is computed here over `sha2` directly (RFC 2104): the workspace's `hmac` 0.13
//! is built on `digest` 0.11 while its `sha2` is 0.10 (`digest` 0.10), so the two do not
//! combine. The RFC 4231 test vectors are in the unit tests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};

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

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} bytes)", self.0.len())
    }
}

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// How far (seconds) a `webhook-timestamp` may be from the receiver's clock, either way:
/// 5 minutes, as Standard Webhooks recommends.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Header names (lowercase; HTTP header names are case-insensitive).
pub const HEADER_ID: &str = "webhook-id";
/// See [`HEADER_ID`].
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// See [`HEADER_ID`].
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Base64 as the Standard Webhooks libraries read secrets: standard alphabet, padding
/// optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The keys of `shared_key` under `scheme`: for `Standard`, one or more space-separated
/// `whsec_<base64>` secrets; for `Infrahub`, the raw key.
///
/// `Standard` refuses an empty `shared_key`, a secret without the `whsec_` prefix and one
/// that is not base64 (or decodes to nothing); the message names the secret by its position
/// and never repeats it. `Infrahub` takes the whole string as one key (spaces included, as
/// Infrahub does); an empty one gives no key: Infrahub sends such webhooks unsigned, and so
/// does infrastream ([`headers`] then adds no signature headers).
pub fn parse_keys(scheme: Scheme, shared_key: &str) -> Result<Vec<SigningKey>, String> {
    match scheme {
        Scheme::Infrahub => {
            if shared_key.is_empty() {
                Ok(Vec::new())
            } else {
                Ok(vec![SigningKey(shared_key.as_bytes().to_vec())])
            }
        }
        Scheme::Standard => {
            let secrets: Vec<&str> = shared_key.split_whitespace().collect();
            if secrets.is_empty() {
                return Err(
                    "shared_key: a Standard Webhooks secret is required ('whsec_' followed by \
                     the base64 of the key)"
                        .into(),
                );
            }
            let many = secrets.len() > 1;
            let name = |i: usize| {
                if many {
                    format!("secret {} of {} ('whsec_…')", i + 1, secrets.len())
                } else {
                    "'whsec_…'".to_owned()
                }
            };
            secrets
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let Some(b64) = s.strip_prefix(SECRET_PREFIX) else {
                        return Err(format!(
                            "shared_key: {} does not start with 'whsec_' (a Standard Webhooks \
                             secret is 'whsec_' followed by the base64 of the key)",
                            if many {
                                format!("secret {} of {}", i + 1, secrets.len())
                            } else {
                                "the secret".to_owned()
                            }
                        ));
                    };
                    match LENIENT.decode(b64) {
                        Ok(key) if !key.is_empty() => Ok(SigningKey(key)),
                        Ok(_) => Err(format!("shared_key: {} has an empty key", name(i))),
                        Err(_) => Err(format!("shared_key: {} is not valid base64", name(i))),
                    }
                })
                .collect()
        }
    }
}

/// A new Standard Webhooks secret, `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> Result<String, String> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("no randomness for a webhook secret: {e}"))?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The `webhook-id` of the message that delivers event `event_id`: `msg_` + the id as 32
/// lowercase hex digits (the shape Infrahub uses). Being derived from the event, it is the
/// same on every retry, which is what lets a receiver deduplicate.
pub fn message_id(event_id: &uuid::Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// The `webhook-signature` header value for `body` sent as message `msg_id` at `timestamp`
/// (Unix seconds): `v1,<base64>` per key, space-separated.
///
/// Both schemes sign the same content, `{msg_id}.{timestamp}.{body}`; they differ only in
/// how [`parse_keys`] turns `shared_key` into keys. No key gives an empty string.
pub fn sign(
    scheme: Scheme,
    keys: &[SigningKey],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let _ = scheme;
    let content = signed_content(msg_id, &timestamp.to_string(), body);
    keys.iter()
        .map(|k| format!("v1,{}", STANDARD.encode(hmac_sha256(&k.0, &content))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The signature headers of a request: `webhook-id`, `webhook-timestamp`,
/// `webhook-signature` (none when `keys` is empty — an unsigned Infrahub-scheme webhook).
/// The engine adds `content-type: application/json` itself.
pub fn headers(
    scheme: Scheme,
    keys: &[SigningKey],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    if keys.is_empty() {
        return Vec::new();
    }
    vec![
        (HEADER_ID.into(), msg_id.into()),
        (HEADER_TIMESTAMP.into(), timestamp.to_string()),
        (
            HEADER_SIGNATURE.into(),
            sign(scheme, keys, msg_id, timestamp, body),
        ),
    ]
}

/// Verifies a request as a Standard Webhooks receiver does: `webhook-id`,
/// `webhook-timestamp` and `webhook-signature` present (header names in any case), the
/// timestamp within [`TOLERANCE_SECONDS`] of `now` (Unix seconds), and at least one `v1,`
/// signature of the header equal (constant-time) to the HMAC of
/// `{id}.{timestamp}.{body}` under at least one of `keys`.
pub fn verify(
    keys: &[SigningKey],
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Result<(), String> {
    verify_any(keys, headers, &[body], now)
}

/// Verifies a request that an Infrahub sent to a webhook whose `shared_key` is `raw_key`
/// (for the companion ingest endpoint).
///
/// `headers` are the request's headers as (name, value) pairs, names in any case; `body` is
/// the raw request body; `now` is the receiver's clock in Unix seconds. Checks that
/// `webhook-id`, `webhook-timestamp` and `webhook-signature` are present, that the timestamp
/// is within [`TOLERANCE_SECONDS`] of `now`, and that a `v1,` signature equals
/// (constant-time) HMAC-SHA256 with the raw UTF-8 bytes of `raw_key` of
/// `{webhook-id}.{webhook-timestamp}.{content}`, where `content` is the raw body or — since
/// Infrahub signs its own `json.dumps` text, which differs from the bytes httpx sends when
/// the payload has non-ASCII characters (see the module docs) — the body re-serialized as
/// Python's `json.dumps` with `separators=(",", ":")` or with the default separators (key
/// order and number spelling kept, non-ASCII escaped). The error says what is wrong without
/// echoing the key or the signatures.
pub fn verify_infrahub(
    raw_key: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Result<(), String> {
    if raw_key.is_empty() {
        return Err("no shared key is configured to verify Infrahub's webhooks".into());
    }
    let keys = [SigningKey(raw_key.as_bytes().to_vec())];
    let compact = python_json(body, b",", b":");
    let spaced = python_json(body, b", ", b": ");
    let mut contents: Vec<&[u8]> = vec![body];
    for c in [&compact, &spaced].into_iter().flatten() {
        if !contents.contains(&c.as_slice()) {
            contents.push(c);
        }
    }
    verify_any(&keys, headers, &contents, now)
}

/// [`verify`] with several candidate bodies: any (key, body, signature) match verifies.
fn verify_any(
    keys: &[SigningKey],
    headers: &[(String, String)],
    bodies: &[&[u8]],
    now: i64,
) -> Result<(), String> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let id = get(HEADER_ID).ok_or("missing header webhook-id")?;
    let ts = get(HEADER_TIMESTAMP).ok_or("missing header webhook-timestamp")?;
    let sigs = get(HEADER_SIGNATURE).ok_or("missing header webhook-signature")?;
    let t: i64 = ts
        .parse()
        .map_err(|_| format!("webhook-timestamp '{ts}' is not an integer"))?;
    if t < now.saturating_sub(TOLERANCE_SECONDS) {
        return Err(format!(
            "webhook-timestamp {t} is too old ({}s before now; at most {TOLERANCE_SECONDS}s)",
            now.saturating_sub(t)
        ));
    }
    if t > now.saturating_add(TOLERANCE_SECONDS) {
        return Err(format!(
            "webhook-timestamp {t} is too new ({}s after now; at most {TOLERANCE_SECONDS}s)",
            t.saturating_sub(now)
        ));
    }
    if keys.is_empty() {
        return Err("no key to verify the signature with".into());
    }
    let given: Vec<Vec<u8>> = sigs
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| LENIENT.decode(b64).ok())
        .collect();
    if given.is_empty() {
        return Err("webhook-signature has no v1 signature".into());
    }
    let mut ok = false;
    for body in bodies {
        let content = signed_content(id, ts, body);
        for key in keys {
            let expected = hmac_sha256(&key.0, &content);
            for sig in &given {
                // No early exit: every comparison is made, each in constant time.
                ok |= ct_eq(&expected, sig);
            }
        }
    }
    if ok {
        Ok(())
    } else {
        Err("webhook-signature does not match the body".into())
    }
}

/// `{msg_id}.{timestamp}.{body}`.
fn signed_content(msg_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(msg_id.len() + timestamp.len() + body.len() + 2);
    c.extend_from_slice(msg_id.as_bytes());
    c.push(b'.');
    c.extend_from_slice(timestamp.as_bytes());
    c.push(b'.');
    c.extend_from_slice(body);
    c
}

/// HMAC-SHA256 (RFC 2104; block size 64 bytes).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Constant-time equality (time depends only on the lengths).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The JSON text `body` as Python's `json.dumps` writes it (default `ensure_ascii=True`) with
/// the given item and key separators: whitespace between tokens dropped, strings re-escaped
/// Python's way (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, anything else outside
/// `' '..='~'` as lowercase `\uXXXX`, surrogate pairs above U+FFFF), numbers, literals and
/// key order kept as they are. `None` when `body` is not UTF-8 or has a string that does
/// not decode (e.g. a lone surrogate).
pub fn python_json(body: &[u8], item_sep: &[u8], key_sep: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len() + b.len() / 4);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b',' => {
                out.extend_from_slice(item_sep);
                i += 1;
            }
            b':' => {
                out.extend_from_slice(key_sep);
                i += 1;
            }
            b'"' => {
                let mut j = i + 1;
                loop {
                    match b.get(j)? {
                        b'\\' => j += 2,
                        b'"' => break,
                        _ => j += 1,
                    }
                }
                let s: String = serde_json::from_str(text.get(i..=j)?).ok()?;
                out.extend_from_slice(python_escape(&s).as_bytes());
                i = j + 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// A JSON string literal as Python's `json.dumps` (`ensure_ascii=True`) writes it.
fn python_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hx(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn hdrs(id: &str, ts: i64, sig: &str) -> Vec<(String, String)> {
        vec![
            ("Webhook-Id".into(), id.into()),
            ("webhook-timestamp".into(), ts.to_string()),
            ("WEBHOOK-SIGNATURE".into(), sig.into()),
        ]
    }

    #[test]
    fn hmac_rfc4231_vectors() {
        // Test case 1.
        assert_eq!(
            hx(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        assert_eq!(
            hx(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hx(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example of the official libraries' tests (e.g. libraries/python tests):
        // secret MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek,
        // timestamp 1614265330, body {"test": 2432232314}.
        let keys = parse_keys(Scheme::Standard, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            Scheme::Standard,
            &keys,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rotation_signs_with_every_key() {
        let k = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw  whsec_c2Vjb25kLWtleS1zZWNvbmQta2V5LTI0Ynl0ZXM=";
        let keys = parse_keys(Scheme::Standard, k).unwrap();
        assert_eq!(keys.len(), 2);
        let sig = sign(Scheme::Standard, &keys, "msg_1", 100, b"{}");
        let parts: Vec<&str> = sig.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        for key in &keys {
            let h = hdrs("msg_1", 100, &sig);
            verify(std::slice::from_ref(key), &h, b"{}", 100).unwrap();
        }
    }

    #[test]
    fn malformed_secrets_are_refused_without_echo() {
        let e = parse_keys(Scheme::Standard, "whsec_not*base64!").unwrap_err();
        assert_eq!(e, "shared_key: 'whsec_…' is not valid base64");
        assert!(!e.contains("not*base64"));
        let e = parse_keys(Scheme::Standard, "plainsecret").unwrap_err();
        assert!(e.contains("does not start with 'whsec_'"), "{e}");
        assert!(!e.contains("plainsecret"));
        let e = parse_keys(
            Scheme::Standard,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_%%",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "shared_key: secret 2 of 2 ('whsec_…') is not valid base64"
        );
        assert!(parse_keys(Scheme::Standard, "   ").is_err());
        assert!(parse_keys(Scheme::Standard, "whsec_").is_err());
        // Padding is optional, as in the official libraries.
        assert!(parse_keys(Scheme::Standard, "whsec_c2VjcmV0").is_ok());
        assert!(parse_keys(Scheme::Standard, "whsec_c2VjcmV0cw").is_ok());
    }

    #[test]
    fn infrahub_key_is_raw_bytes() {
        let keys = parse_keys(Scheme::Infrahub, "supersecretkey").unwrap();
        assert_eq!(keys[0].0, b"supersecretkey");
        assert!(parse_keys(Scheme::Infrahub, "").unwrap().is_empty());
        assert!(headers(Scheme::Infrahub, &[], "msg_1", 1, b"{}").is_empty());
        // Same content and encoding as Infrahub's _assign_headers.
        let body = br#"{"data":{},"id":"x"}"#;
        let sig = sign(Scheme::Infrahub, &keys, "msg_ab", 1700000000, body);
        let mut content = b"msg_ab.1700000000.".to_vec();
        content.extend_from_slice(body);
        let expected = format!(
            "v1,{}",
            STANDARD.encode(hmac_sha256(b"supersecretkey", &content))
        );
        assert_eq!(sig, expected);
    }

    #[test]
    fn verify_checks_window_and_tampering() {
        let keys = parse_keys(Scheme::Standard, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(Scheme::Standard, &keys, "msg_1", 1000, b"{\"a\":1}");
        let h = hdrs("msg_1", 1000, &sig);
        verify(&keys, &h, b"{\"a\":1}", 1000 + 300).unwrap();
        verify(&keys, &h, b"{\"a\":1}", 1000 - 300).unwrap();
        assert!(
            verify(&keys, &h, b"{\"a\":1}", 1000 + 301)
                .unwrap_err()
                .contains("too old")
        );
        assert!(
            verify(&keys, &h, b"{\"a\":1}", 1000 - 301)
                .unwrap_err()
                .contains("too new")
        );
        assert!(verify(&keys, &h, b"{\"a\":2}", 1000).is_err());
        let other = parse_keys(Scheme::Standard, "whsec_c2VjcmV0").unwrap();
        assert!(verify(&other, &h, b"{\"a\":1}", 1000).is_err());
        assert!(verify(&keys, &h[..2], b"{\"a\":1}", 1000).is_err());
    }

    #[test]
    fn python_json_forms() {
        let body =
            "{\"a\":\"Zürich — 東京 ✓ 😀\",\"b\":[1,2.5,true,null],\"c\":\"q\\\"/\\n\\u0001\"}";
        let compact = python_json(body.as_bytes(), b",", b":").unwrap();
        assert_eq!(
            String::from_utf8(compact).unwrap(),
            r#"{"a":"Z\u00fcrich \u2014 \u6771\u4eac \u2713 \ud83d\ude00","b":[1,2.5,true,null],"c":"q\"/\n\u0001"}"#
        );
        let spaced = python_json(body.as_bytes(), b", ", b": ").unwrap();
        assert!(
            String::from_utf8(spaced)
                .unwrap()
                .starts_with(r#"{"a": "Z\u00fcrich"#)
        );
        assert!(python_json(b"{\"a\":\"\\ud800\"}", b",", b":").is_none());
    }

    #[test]
    fn verify_infrahub_accepts_what_infrahub_signs() {
        // Infrahub signs json.dumps(payload, separators=(",", ":")) (non-ASCII escaped) and
        // httpx sends the payload compact with UTF-8: the signature must still verify.
        let key = "supersecretkey";
        let keys = parse_keys(Scheme::Infrahub, key).unwrap();
        let sent = "{\"data\":{\"name\":\"Zürich\"},\"id\":\"1\"}";
        let signed = r#"{"data":{"name":"Z\u00fcrich"},"id":"1"}"#;
        let sig = sign(Scheme::Infrahub, &keys, "msg_0", 50, signed.as_bytes());
        verify_infrahub(key, &hdrs("msg_0", 50, &sig), sent.as_bytes(), 60).unwrap();
        // Older releases: json.dumps with the default separators.
        let signed_old = r#"{"data": {"name": "Z\u00fcrich"}, "id": "1"}"#;
        let sig = sign(Scheme::Infrahub, &keys, "msg_0", 50, signed_old.as_bytes());
        verify_infrahub(key, &hdrs("msg_0", 50, &sig), sent.as_bytes(), 60).unwrap();
        // Exactly the body.
        let sig = sign(Scheme::Infrahub, &keys, "msg_0", 50, sent.as_bytes());
        verify_infrahub(key, &hdrs("msg_0", 50, &sig), sent.as_bytes(), 60).unwrap();
        // Tampered, wrong key, stale.
        let tampered = sent.replace("Zürich", "Zurich");
        assert!(verify_infrahub(key, &hdrs("msg_0", 50, &sig), tampered.as_bytes(), 60).is_err());
        assert!(verify_infrahub("other", &hdrs("msg_0", 50, &sig), sent.as_bytes(), 60).is_err());
        assert!(verify_infrahub(key, &hdrs("msg_0", 50, &sig), sent.as_bytes(), 400).is_err());
        assert!(verify_infrahub("", &hdrs("msg_0", 50, &sig), sent.as_bytes(), 60).is_err());
    }

    #[test]
    fn message_id_and_secret_shapes() {
        let id = uuid::Uuid::parse_str("0191e0b6-7a9e-7c00-8000-000000000001").unwrap();
        assert_eq!(message_id(&id), "msg_0191e0b67a9e7c008000000000000001");
        let s = generate_secret().unwrap();
        assert_eq!(parse_keys(Scheme::Standard, &s).unwrap()[0].0.len(), 32);
    }
}
