//! Credentials primitives for infrastream: Argon2id password hashing, random API tokens and
//! passwords, the hash under which an API token is stored, and HS256 JWT access/refresh
//! tokens signed with a ring of identified keys ([`KeyRing`]), and constant-time comparison
//! of secrets. This crate holds no state but the key ring in force and knows nothing about
//! accounts or storage: the store keeps the hashes, the server decides who may do what and
//! where keys come from, and this crate only turns secrets into hashes and tokens and back.
//! No secret or token text ever appears in an error message or in `Debug` output.

mod key_ring;

pub use key_ring::{KeyRing, key_id};

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
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
    /// A JWT key ring needs at least one key.
    #[error("no JWT signing key")]
    NoKey,
    /// The same JWT key was given twice (positions counted from 0).
    #[error("JWT key {index} repeats key {first}")]
    DuplicateKey {
        /// Position of the repeated key.
        index: usize,
        /// Position of its first occurrence.
        first: usize,
    },
}

impl AuthError {
    /// Stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Rng(_) => "AUTH_RNG_FAILURE",
            AuthError::Hash(_) => "AUTH_HASH_FAILURE",
            AuthError::EmptySecret => "AUTH_EMPTY_SECRET",
            AuthError::NoKey => "AUTH_NO_KEY",
            AuthError::DuplicateKey { .. } => "AUTH_DUPLICATE_KEY",
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

/// HS256 signing and verification with the key ring in force, which can be replaced while
/// the server runs ([`JwtKeys::replace`]).
///
/// Every token carries the `kid` header of the key that signed it and is verified with the
/// key of that id only: a token whose key is not in the ring (retired, or never known) is
/// [`JwtError::Invalid`]. A token without `kid` was issued before keys had ids; it is tried
/// with the signing key, then with the other keys in ring order, so that tokens issued before
/// the upgrade survive a first rotation exactly like later ones (a ring holds a handful of
/// keys, so the extra HMACs cost nothing that matters).
pub struct JwtKeys {
    ring: RwLock<Arc<KeyRing>>,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JwtKeys").field(&*self.ring()).finish()
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

/// jsonwebtoken picks its crypto backend from crate features and panics at first use if
/// feature unification ever enables both; installing ours explicitly avoids that.
pub(crate) fn install_crypto_provider() {
    // An `Err` only means a provider is already installed, which is fine.
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
    );
}

impl JwtKeys {
    /// Keys of one secret, which signs and verifies; panics if `secret` is empty.
    pub fn new(secret: &[u8]) -> Self {
        match Self::try_new(secret) {
            Ok(keys) => keys,
            Err(e) => panic!("{e}"),
        }
    }

    /// Keys of one secret, which signs and verifies; fails if `secret` is empty.
    pub fn try_new(secret: &[u8]) -> Result<Self, AuthError> {
        Ok(Self::with_ring(KeyRing::single(secret)?))
    }

    /// Signs and verifies with `ring`.
    pub fn with_ring(ring: KeyRing) -> Self {
        install_crypto_provider();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            ring: RwLock::new(Arc::new(ring)),
            validation,
        }
    }

    /// The key ring in force.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `ring` in force for every token signed or verified from now on, atomically;
    /// returns the ring it replaces.
    pub fn replace(&self, ring: KeyRing) -> Arc<KeyRing> {
        let mut current = self.ring.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *current, Arc::new(ring))
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

    /// Signs the given claims as an HS256 JWT with the ring's signing key, naming it in the
    /// `kid` header.
    pub fn sign(&self, claims: &Claims) -> String {
        let ring = self.ring();
        let key = ring.signing();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        // HMAC accepts keys of any length and the claims always serialize, so this cannot fail.
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .unwrap_or_else(|e| panic!("HS256 signing failed: {:?}", e.kind()))
    }

    /// Verifies signature, expiry and kind of `token`, returning its claims.
    pub fn verify(&self, token: &str, expected: TokenKind) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Invalid)?;
        let ring = self.ring();
        let claims = match header.kid {
            Some(kid) => {
                let key = ring.get(&kid).ok_or(JwtError::Invalid)?;
                self.decode(token, &key.decoding)?
            }
            None => self.decode_with_any(token, ring.all())?,
        };
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

    /// Checks the signature with `key`, then the expiry.
    fn decode(&self, token: &str, key: &DecodingKey) -> Result<Claims, JwtError> {
        use jsonwebtoken::errors::ErrorKind;
        // jsonwebtoken checks the signature before the claims, so `Expired` means the
        // signature was good.
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => JwtError::Expired,
                _ => JwtError::Invalid,
            })
    }

    /// A token without `kid`: the first key whose signature matches decides.
    fn decode_with_any(&self, token: &str, keys: &[key_ring::RingKey]) -> Result<Claims, JwtError> {
        for key in keys {
            match self.decode(token, &key.decoding) {
                Err(JwtError::Invalid) => continue,
                decided => return decided,
            }
        }
        Err(JwtError::Invalid)
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

    const OTHER: &[u8] = b"rotated-signing-key-abcdefghijklmnopqrst";

    /// The `kid` header of `token`, if any.
    fn kid(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).unwrap().kid
    }

    /// A token signed with `secret` the way tokens were signed before keys had ids.
    fn without_kid(secret: &[u8], exp_in: i64) -> String {
        let now = now_secs();
        let claims = Claims {
            sub: "a".into(),
            iat: now,
            exp: now + exp_in,
            fresh: true,
            session_id: "s".into(),
            kind: TokenKind::Access,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn tokens_name_their_key() {
        let keys = JwtKeys::new(SECRET);
        let t = keys.issue("a", TokenKind::Access, Duration::from_secs(60), "s");
        assert_eq!(kid(&t), Some(key_id(SECRET)));
        assert_eq!(keys.ring().signing_kid(), key_id(SECRET));
    }

    #[test]
    fn rotation_keeps_old_tokens_until_their_key_is_removed() {
        let keys = JwtKeys::new(SECRET);
        let old = keys.issue("a", TokenKind::Access, Duration::from_secs(60), "s");
        let previous = keys.replace(KeyRing::new([OTHER, SECRET]).unwrap());
        assert_eq!(previous.signing_kid(), key_id(SECRET));
        // The old token still verifies with its (now verification-only) key.
        assert_eq!(keys.verify(&old, TokenKind::Access).unwrap().sub, "a");
        // New tokens are signed with the new first key.
        let new = keys.issue("a", TokenKind::Access, Duration::from_secs(60), "s");
        assert_eq!(kid(&new), Some(key_id(OTHER)));
        assert!(keys.verify(&new, TokenKind::Access).is_ok());
        // The old key retired: its tokens are invalid, the new ones still good.
        keys.replace(KeyRing::single(OTHER).unwrap());
        assert_eq!(keys.verify(&old, TokenKind::Access), Err(JwtError::Invalid));
        assert!(keys.verify(&new, TokenKind::Access).is_ok());
    }

    #[test]
    fn an_expired_token_of_a_verification_key_says_expired() {
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
        keys.replace(KeyRing::new([OTHER, SECRET]).unwrap());
        assert_eq!(keys.verify(&t, TokenKind::Access), Err(JwtError::Expired));
    }

    #[test]
    fn an_unknown_or_forged_kid_is_invalid() {
        let keys = JwtKeys::new(SECRET);
        let foreign =
            JwtKeys::new(OTHER).issue("a", TokenKind::Access, Duration::from_secs(60), "s");
        assert_eq!(
            keys.verify(&foreign, TokenKind::Access),
            Err(JwtError::Invalid)
        );
        // A header naming a known key does not help a token signed with another one.
        let (_, rest) = foreign.split_once('.').unwrap();
        let ours = keys.issue("a", TokenKind::Access, Duration::from_secs(60), "s");
        let (our_header, _) = ours.split_once('.').unwrap();
        let forged = format!("{our_header}.{rest}");
        assert_eq!(
            keys.verify(&forged, TokenKind::Access),
            Err(JwtError::Invalid)
        );
    }

    #[test]
    fn a_token_without_kid_is_verified_with_the_ring() {
        let keys = JwtKeys::new(SECRET);
        let legacy = without_kid(SECRET, 60);
        assert_eq!(kid(&legacy), None);
        assert!(
            keys.verify(&legacy, TokenKind::Access).is_ok(),
            "signing key"
        );
        keys.replace(KeyRing::new([OTHER, SECRET]).unwrap());
        assert!(
            keys.verify(&legacy, TokenKind::Access).is_ok(),
            "verification key"
        );
        assert_eq!(
            keys.verify(&without_kid(SECRET, -10), TokenKind::Access),
            Err(JwtError::Expired)
        );
        keys.replace(KeyRing::single(OTHER).unwrap());
        assert_eq!(
            keys.verify(&legacy, TokenKind::Access),
            Err(JwtError::Invalid)
        );
        assert_eq!(
            keys.verify(
                &without_kid(b"never-a-key-0123456789abcdef0123", 60),
                TokenKind::Access
            ),
            Err(JwtError::Invalid)
        );
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
        keys.replace(KeyRing::new([OTHER, SECRET]).unwrap());
        let dbg = format!("{keys:?}");
        assert!(dbg.contains(&key_id(OTHER)), "ids are shown: {dbg}");
        let secret = std::str::from_utf8(SECRET).unwrap();
        assert!(!dbg.contains(secret), "{dbg}");
        assert!(!dbg.contains("rotated-signing"), "{dbg}");
        assert!(!dbg.contains("115, 117, 112"), "{dbg}"); // "sup" as a byte list
        assert!(!dbg.contains("114, 111, 116"), "{dbg}"); // "rot" as a byte list
        let t = keys.issue("a", TokenKind::Access, Duration::from_secs(60), "s");
        let claims = keys.verify(&t, TokenKind::Access).unwrap();
        let dbg = format!("{claims:?}");
        assert!(!dbg.contains(secret) && !dbg.contains(&t), "{dbg}");
        for e in [JwtError::Expired, JwtError::Invalid, JwtError::WrongType] {
            assert!(!format!("{e:?}{e}").contains(&t));
        }
    }
}
