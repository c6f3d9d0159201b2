//! Credentials primitives for infrastream: Argon2id password hashing, random API tokens and
//! passwords, the hash under which an API token is stored, and HS256 JWT access/refresh
//! tokens, and constant-time comparison of secrets. This crate holds no state and knows nothing about accounts or storage: the store
//! keeps the hashes, the server decides who may do what, and this crate only turns secrets
//! into hashes and tokens and back. No secret or token text ever appears in an error message
//! or in `Debug` output.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod password;

pub use password::{DUMMY_PASSWORD_HASH, HashingMemory, hash_password, verify_password};

/// Length in characters of a generated password.
const PASSWORD_LEN: usize = 24;

/// Characters a generated password is drawn from.
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Failure while hashing a password.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The operating system's random number generator failed.
    #[error("random number generator unavailable: {0}")]
    Rng(String),
    /// Argon2 refused to hash (the message never contains the password).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A JWT signing secret must not be empty.
    #[error("the JWT signing secret is empty")]
    EmptySecret,
}

impl AuthError {
    /// Stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Rng(_) => "AUTH_RNG_FAILURE",
            AuthError::Hash(_) => "AUTH_HASH_FAILURE",
            AuthError::EmptySecret => "AUTH_EMPTY_SECRET",
        }
    }

    /// Whether this is a server-side fault (always true: a client cannot cause it).
    pub fn is_internal(&self) -> bool {
        true
    }
}

/// Fills `buf` from the OS random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), AuthError> {
    getrandom::fill(buf).map_err(|e| AuthError::Rng(e.to_string()))
}

/// Like [`fill_random`] for callers whose signature cannot fail: an OS without a working
/// random source cannot issue credentials safely, so stopping is the only sound choice.
fn fill_random_or_panic(buf: &mut [u8]) {
    if let Err(e) = fill_random(buf) {
        panic!("{e}");
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only, never on
/// where they first differ: the comparison for secrets, tokens and their hashes.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // Different lengths answer at once: a length is not a secret.
    a.ct_eq(b).into()
}

/// Generates a new API token: 32 random bytes as 64 lowercase hex characters.
///
/// Panics only if the operating system's random number generator fails.
pub fn generate_api_token() -> String {
    hex::encode(generate_secret_bytes())
}

/// Generates a 24-character password drawn uniformly from `[A-Za-z0-9]`.
///
/// Panics only if the operating system's random number generator fails.
pub fn generate_password() -> String {
    // Rejection sampling: 248 = 4 * 62 is the largest multiple of the alphabet size that fits
    // in a byte, so keeping only bytes below it makes `b % 62` exactly uniform.
    let limit = (256 / PASSWORD_ALPHABET.len() * PASSWORD_ALPHABET.len()) as u8;
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LEN {
        fill_random_or_panic(&mut buf);
        for &b in buf.iter().filter(|&&b| b < limit) {
            if out.len() == PASSWORD_LEN {
                break;
            }
            out.push(char::from(
                PASSWORD_ALPHABET[usize::from(b) % PASSWORD_ALPHABET.len()],
            ));
        }
    }
    out
}

/// Generates 32 random bytes, e.g. for the server's JWT signing secret.
///
/// Panics only if the operating system's random number generator fails.
pub fn generate_secret_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    fill_random_or_panic(&mut bytes);
    bytes
}

/// Hashes an API token for storage and lookup: lowercase hex SHA-256.
pub fn hash_api_token(token: &str) -> String {
    // A fast unsalted hash is right here, unlike for passwords: tokens carry 256 bits of
    // entropy, so there is nothing to brute-force, and a deterministic hash lets the store
    // find a token by its hash with one indexed lookup on every request.
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Kind of a JWT, carried in its `type` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Short-lived token that authenticates requests.
    Access,
    /// Long-lived token that can only be exchanged for a new access token.
    Refresh,
}

/// Claims of an infrastream JWT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Account id.
    pub sub: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry, seconds since the Unix epoch; the token is refused from this second on.
    pub exp: i64,
    /// Whether the token came straight from a password login (not from a refresh).
    pub fresh: bool,
    /// Id of the login session the token belongs to.
    pub session_id: String,
    /// Access or refresh.
    #[serde(rename = "type")]
    pub kind: TokenKind,
}

/// Why a JWT was refused; messages are fixed texts that never contain the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The token's `exp` has passed.
    // Infrahub's SDK re-authenticates when it sees exactly this text.
    #[error("Expired Signature")]
    Expired,
    /// Malformed, badly signed or otherwise unacceptable token.
    #[error("Invalid token")]
    Invalid,
    /// A valid token of the other kind (e.g. a refresh token used as an access token).
    #[error("Invalid token type")]
    WrongType,
}

impl JwtError {
    /// Stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            JwtError::Expired => "TOKEN_EXPIRED",
            JwtError::Invalid => "TOKEN_INVALID",
            JwtError::WrongType => "TOKEN_WRONG_TYPE",
        }
    }
}

/// HS256 signing and verification keys derived from the server secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys { .. }")
    }
}

/// Seconds since the Unix epoch.
fn now_secs() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    i64::try_from(secs).unwrap_or(i64::MAX)
}

impl JwtKeys {
    /// Builds the keys from the server's HS256 secret; panics if `secret` is empty.
    pub fn new(secret: &[u8]) -> Self {
        match Self::try_new(secret) {
            Ok(keys) => keys,
            Err(e) => panic!("{e}"),
        }
    }

    /// Builds the keys from the server's HS256 secret; fails if `secret` is empty.
    pub fn try_new(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.is_empty() {
            return Err(AuthError::EmptySecret);
        }
        // jsonwebtoken picks its crypto backend from crate features and panics at first use
        // if feature unification ever enables both; installing ours explicitly avoids that.
        // An `Err` only means a provider is already installed, which is fine.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        // Both constructors fail only on an empty secret, refused above; their error text
        // never contains the secret.
        let encoding = EncodingKey::from_secret(secret).map_err(|_| AuthError::EmptySecret)?;
        let decoding = DecodingKey::from_secret(secret).map_err(|_| AuthError::EmptySecret)?;
        Ok(Self {
            encoding,
            decoding,
            validation,
        })
    }

    /// Issues a JWT of `kind` for `account_id`, valid for `ttl` (whole seconds) from now.
    ///
    /// `fresh` is true for access tokens (as after a password login) and false for refresh
    /// tokens; to mint a non-fresh access token (after a refresh) use [`JwtKeys::sign`].
    pub fn issue(
        &self,
        account_id: &str,
        kind: TokenKind,
        ttl: Duration,
        session_id: &str,
    ) -> String {
        let iat = now_secs();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: account_id.to_owned(),
            iat,
            exp: iat.saturating_add(ttl),
            fresh: kind == TokenKind::Access,
            session_id: session_id.to_owned(),
            kind,
        };
        self.sign(&claims)
    }

    /// Signs the given claims as an HS256 JWT.
    pub fn sign(&self, claims: &Claims) -> String {
        // HMAC accepts keys of any length and the claims always serialize, so this cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_else(|e| panic!("HS256 signing failed: {:?}", e.kind()))
    }

    /// Verifies signature, expiry and kind of `token`, returning its claims.
    pub fn verify(&self, token: &str, expected: TokenKind) -> Result<Claims, JwtError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => JwtError::Expired,
                _ => JwtError::Invalid,
            })?;
        let claims = data.claims;
        // jsonwebtoken accepts a token during its `exp` second (it rejects only `exp < now`);
        // we refuse it from that second on, so a token issued with a zero TTL is never valid.
        if claims.exp <= now_secs() {
            return Err(JwtError::Expired);
        }
        if claims.kind != expected {
            return Err(JwtError::WrongType);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"super-secret-signing-key-0123456789";

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"xbc"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        let h = hash_api_token("t");
        assert!(constant_time_eq(
            h.as_bytes(),
            hash_api_token("t").as_bytes()
        ));
        assert!(!constant_time_eq(
            h.as_bytes(),
            hash_api_token("u").as_bytes()
        ));
    }

    #[test]
    fn api_token_format() {
        let a = generate_api_token();
        let b = generate_api_token();
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_ne!(a, b);
        // 32 random bytes: a repeated byte run this long would be a broken generator.
        assert!(hex::decode(&a).unwrap().windows(8).all(|w| w != [w[0]; 8]));
    }

    #[test]
    fn secret_bytes_differ() {
        assert_ne!(generate_secret_bytes(), generate_secret_bytes());
    }

    #[test]
    fn password_format_and_spread() {
        let p = generate_password();
        assert_eq!(p.len(), 24);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(p, generate_password());
        // Every class of the alphabet shows up over many draws, so nothing is cut off.
        let many: String = (0..200).map(|_| generate_password()).collect();
        for c in PASSWORD_ALPHABET {
            assert!(
                many.contains(char::from(*c)),
                "{} never drawn",
                char::from(*c)
            );
        }
    }

    #[test]
    fn api_token_hash() {
        let h = hash_api_token("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(hash_api_token("abd"), h);
    }

    #[test]
    fn jwt_round_trip() {
        let keys = JwtKeys::new(SECRET);
        let t = keys.issue("acc-1", TokenKind::Access, Duration::from_secs(60), "s-1");
        let c = keys.verify(&t, TokenKind::Access).unwrap();
        assert_eq!(c.sub, "acc-1");
        assert_eq!(c.session_id, "s-1");
        assert_eq!(c.kind, TokenKind::Access);
        assert_eq!(c.exp - c.iat, 60);
        assert!(c.fresh);

        let r = keys.issue("acc-1", TokenKind::Refresh, Duration::from_secs(60), "s-1");
        assert_eq!(
            keys.verify(&r, TokenKind::Refresh).unwrap().kind,
            TokenKind::Refresh
        );
    }

    #[test]
    fn type_claim_is_lowercase() {
        let keys = JwtKeys::new(SECRET);
        let t = keys.issue("a", TokenKind::Refresh, Duration::from_secs(60), "s");
        let payload = t.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&base64_url_decode(payload).expect("payload is base64url"))
                .unwrap();
        assert_eq!(claims["type"], "refresh");
        assert_eq!(claims["sub"], "a");
    }

    /// Minimal unpadded base64url decoder so the test needs no extra dependency.
    fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
        let mut bits = 0u32;
        let mut n = 0;
        let mut out = Vec::new();
        for c in s.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return None,
            };
            bits = (bits << 6) | u32::from(v);
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        Some(out)
    }

    #[test]
    fn empty_secret_refused() {
        assert!(matches!(JwtKeys::try_new(b""), Err(AuthError::EmptySecret)));
    }

    #[test]
    fn expired_zero_ttl() {
        let keys = JwtKeys::new(SECRET);
        let t = keys.issue("a", TokenKind::Access, Duration::ZERO, "s");
        assert_eq!(keys.verify(&t, TokenKind::Access), Err(JwtError::Expired));
    }

    #[test]
    fn expired_in_the_past() {
        let keys = JwtKeys::new(SECRET);
        let now = now_secs();
        let t = keys.sign(&Claims {
            sub: "a".into(),
            iat: now - 100,
            exp: now - 10,
            fresh: true,
            session_id: "s".into(),
            kind: TokenKind::Access,
        });
        let err = keys.verify(&t, TokenKind::Access).unwrap_err();
        assert_eq!(err, JwtError::Expired);
        assert_eq!(err.to_string(), "Expired Signature");
    }

    #[test]
    fn tampered_is_invalid() {
        let keys = JwtKeys::new(SECRET);
        let t = keys.issue("a", TokenKind::Access, Duration::from_secs(60), "s");
        // Flip one character of the signature.
        let mut bytes = t.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            keys.verify(&tampered, TokenKind::Access),
            Err(JwtError::Invalid)
        );
        // Signed with another secret.
        let other = JwtKeys::new(b"another secret");
        assert_eq!(other.verify(&t, TokenKind::Access), Err(JwtError::Invalid));
        // Not a JWT at all.
        assert_eq!(
            keys.verify("garbage", TokenKind::Access),
            Err(JwtError::Invalid)
        );
        assert_eq!(JwtError::Invalid.to_string(), "Invalid token");
    }

    #[test]
    fn refresh_as_access_is_wrong_type() {
        let keys = JwtKeys::new(SECRET);
        let r = keys.issue("a", TokenKind::Refresh, Duration::from_secs(60), "s");
        let err = keys.verify(&r, TokenKind::Access).unwrap_err();
        assert_eq!(err, JwtError::WrongType);
        assert_eq!(err.to_string(), "Invalid token type");
        let a = keys.issue("a", TokenKind::Access, Duration::from_secs(60), "s");
        assert_eq!(
            keys.verify(&a, TokenKind::Refresh),
            Err(JwtError::WrongType)
        );
    }

    #[test]
    fn debug_does_not_leak() {
        let keys = JwtKeys::new(SECRET);
        let dbg = format!("{keys:?}");
        let secret = std::str::from_utf8(SECRET).unwrap();
        assert!(!dbg.contains(secret), "{dbg}");
        assert!(!dbg.contains("115, 117, 112"), "{dbg}"); // "sup" as a byte list
        let t = keys.issue("a", TokenKind::Access, Duration::from_secs(60), "s");
        let claims = keys.verify(&t, TokenKind::Access).unwrap();
        let dbg = format!("{claims:?}");
        assert!(!dbg.contains(secret) && !dbg.contains(&t), "{dbg}");
        for e in [JwtError::Expired, JwtError::Invalid, JwtError::WrongType] {
            assert!(!format!("{e:?}{e}").contains(&t));
        }
    }
}
