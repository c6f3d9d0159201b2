//! The JWT key ring: one key that signs new tokens and any number of keys that only verify,
//! each known by an id (`kid`) derived from its secret.
//!
//! Decisions:
//! - **Ids are derived, never invented**: a key's id is the first 16 hex characters of
//!   SHA-256 over a fixed domain-separation prefix and the secret ([`key_id`]). The same
//!   secret always has the same id (across restarts, instances and releases), nobody has to
//!   name keys, and two keys in a ring can never share an id by mistake. The id reveals
//!   nothing usable about the secret: it is a truncated one-way hash, and any token signed
//!   with the key (an HMAC over a known payload) already lets whoever holds it test guesses
//!   of the secret, so the id adds no new exposure. The prefix keeps the id from being the
//!   hash of the bare secret, should that ever be used elsewhere.
//! - **Rotation is adding a key**: the ring is built from a list whose first key signs; the
//!   others only verify, so tokens signed before a rotation keep working until they expire,
//!   and stop as soon as their key is removed from the list.
//! - A ring never holds the same secret twice (it would be the same id, and almost surely an
//!   editing mistake), and never holds no key.

use std::fmt;

use jsonwebtoken::{DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

use crate::AuthError;

/// Prefix hashed before the secret to derive a key id (domain separation).
const KID_DOMAIN: &[u8] = b"infrastream jwt key id v1\0";

/// Hex characters in a key id (64 bits: unique among any realistic number of keys).
const KID_LEN: usize = 16;

/// The id (`kid` header) of the HS256 key `secret`; see the module documentation.
pub fn key_id(secret: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(KID_DOMAIN);
    hash.update(secret);
    let mut id = hex::encode(hash.finalize());
    id.truncate(KID_LEN);
    id
}

/// One HS256 key: its id and the key material in the forms signing and verification need.
pub(crate) struct RingKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
}

/// The keys in force: the first signs new tokens, every one verifies tokens carrying its id.
pub struct KeyRing {
    /// Never empty; `keys[0]` signs.
    keys: Vec<RingKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids only: they are derived one-way from the secrets and safe to show.
        f.debug_struct("KeyRing")
            .field("signing", &self.signing_kid())
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// A ring of one key, which signs and verifies.
    pub fn single(secret: &[u8]) -> Result<Self, AuthError> {
        Self::new([secret])
    }

    /// A ring of `secrets`, in order: the first signs new tokens, all of them verify.
    ///
    /// Fails on an empty list, an empty secret, or a secret given twice (the error names the
    /// positions, counted from 0, never the secret).
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Result<Self, AuthError> {
        crate::install_crypto_provider();
        let mut keys: Vec<RingKey> = Vec::new();
        for (index, secret) in secrets.into_iter().enumerate() {
            let secret = secret.as_ref();
            if secret.is_empty() {
                return Err(AuthError::EmptySecret);
            }
            let kid = key_id(secret);
            if let Some(first) = keys.iter().position(|k| k.kid == kid) {
                return Err(AuthError::DuplicateKey { index, first });
            }
            // Both constructors fail only on an empty secret, refused above; their error
            // text never contains the secret.
            keys.push(RingKey {
                kid,
                encoding: EncodingKey::from_secret(secret).map_err(|_| AuthError::EmptySecret)?,
                decoding: DecodingKey::from_secret(secret).map_err(|_| AuthError::EmptySecret)?,
            });
        }
        if keys.is_empty() {
            return Err(AuthError::NoKey);
        }
        Ok(Self { keys })
    }

    /// Id of the key that signs new tokens.
    pub fn signing_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// Ids of every key, the signing key first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// The key that signs new tokens.
    pub(crate) fn signing(&self) -> &RingKey {
        &self.keys[0]
    }

    /// The key with id `kid`, if it is in the ring.
    pub(crate) fn get(&self, kid: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Every key, the signing key first.
    pub(crate) fn all(&self) -> &[RingKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"first-secret-0123456789abcdef-0123456789";
    const B: &[u8] = b"second-secret-0123456789abcdef-012345678";

    #[test]
    fn key_ids_are_stable_short_hex_and_distinct() {
        // Pinned: ids must not change between releases, or every token would turn invalid.
        assert_eq!(key_id(A), "6154992eb9850f08");
        assert_eq!(key_id(A).len(), 16);
        assert!(key_id(A).chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(key_id(A), key_id(B));
        let mut expected = Sha256::new();
        expected.update(b"infrastream jwt key id v1\0");
        expected.update(A);
        assert_eq!(key_id(A), hex::encode(expected.finalize())[..16]);
        // Not the hash of the bare secret.
        assert!(!hex::encode(Sha256::digest(A)).starts_with(&key_id(A)));
    }

    #[test]
    fn the_first_key_signs_and_every_key_is_known() {
        let ring = KeyRing::new([B, A]).unwrap();
        assert_eq!(ring.signing_kid(), key_id(B));
        assert_eq!(ring.kids().collect::<Vec<_>>(), [key_id(B), key_id(A)]);
        assert!(ring.get(&key_id(A)).is_some());
        assert!(ring.get("0123456789abcdef").is_none());
    }

    #[test]
    fn bad_rings_are_refused() {
        assert!(matches!(
            KeyRing::new(Vec::<&[u8]>::new()),
            Err(AuthError::NoKey)
        ));
        assert!(matches!(
            KeyRing::new([A, b""]),
            Err(AuthError::EmptySecret)
        ));
        let e = KeyRing::new([A, B, A]).unwrap_err();
        assert!(
            matches!(e, AuthError::DuplicateKey { index: 2, first: 0 }),
            "{e:?}"
        );
        assert!(!format!("{e}{e:?}").contains("secret-0123"), "{e}");
    }

    #[test]
    fn debug_shows_ids_only() {
        let ring = KeyRing::new([A, B]).unwrap();
        let dbg = format!("{ring:?}");
        assert!(
            dbg.contains(&key_id(A)) && dbg.contains(&key_id(B)),
            "{dbg}"
        );
        assert!(!dbg.contains("secret-0123"), "{dbg}");
        assert!(!dbg.contains("102, 105, 114"), "{dbg}"); // "fir" as a byte list
    }
}
