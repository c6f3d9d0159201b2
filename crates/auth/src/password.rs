//! Argon2id password hashes as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
//!
//! One Argon2 computation works in `m` KiB of memory (19 MiB with the default parameters).
//! [`HashingMemory`] keeps that memory between computations, so a thread that hashes
//! passwords holds one buffer for its whole life instead of asking the allocator for 19 MiB
//! each time (glibc keeps freed buffers per thread arena, several of them each, which made a
//! login flood cost hundreds of MiB even with few hashing threads). The free functions use a
//! fresh buffer per call.

use crate::{AuthError, constant_time_eq, fill_random};
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Length in bytes of the random salt of a new hash (the PHC recommendation).
const SALT_LEN: usize = 16;

/// Most memory a stored hash may ask for (its `m` parameter): 1 GiB. A hash asking for more
/// is refused instead of allocated.
const MAX_MEMORY_BLOCKS: usize = 1 << 20;

/// A PHC string with the parameters of [`hash_password`] whose password nobody knows (it was
/// random and thrown away). A login for an account that does not exist is verified against
/// it, so that it costs exactly what a wrong password costs and its timing does not tell
/// whether the account exists.
pub const DUMMY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$HN75nEeB7ksiAaF9NRI+SQ$581/rT06eOHkjKGC9b1UkpcC3xJxxzRK69pvoJ0yhLE";

/// Argon2's working memory, kept from one computation to the next (it grows to the largest
/// `m` seen and never shrinks). Its content after a computation is overwritten by the next.
#[derive(Default)]
pub struct HashingMemory {
    blocks: Vec<Block>,
}

impl std::fmt::Debug for HashingMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashingMemory({} bytes)", self.bytes())
    }
}

impl HashingMemory {
    /// No memory yet; the first computation allocates it.
    pub const fn new() -> Self {
        Self { blocks: Vec::new() }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.blocks.len() * Block::SIZE
    }

    /// The first `count` blocks, growing the buffer if needed.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::new());
        }
        &mut self.blocks[..count]
    }

    /// Hashes `password` with Argon2id (default parameters, random salt) into a PHC string.
    pub fn hash(&mut self, password: &str) -> Result<String, AuthError> {
        let failed = |e: &dyn std::fmt::Display| AuthError::Hash(e.to_string());
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let (algorithm, version, params) = (Algorithm::Argon2id, Version::V0x13, Params::default());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let blocks = self.blocks(params.block_count());
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
            .map_err(|e| failed(&e))?;
        let phc = PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Checks `password` against a PHC string; false on mismatch or a malformed hash. The
    /// algorithm, version, cost and salt come from the string itself, so hashes made with
    /// older parameters keep verifying; the outputs are compared in constant time.
    pub fn verify(&mut self, password: &str, phc: &str) -> bool {
        self.try_verify(password, phc).unwrap_or(false)
    }

    fn try_verify(&mut self, password: &str, phc: &str) -> Option<bool> {
        let hash = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(hash.algorithm.as_str()).ok()?;
        let version = match hash.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        // Sets the output length to the stored output's.
        let params = Params::try_from(&hash).ok()?;
        let salt = hash.salt.as_ref()?;
        let expected = hash.hash.as_ref()?.as_bytes();
        let count = params.block_count();
        if count > MAX_MEMORY_BLOCKS {
            return None;
        }
        let mut out = vec![0u8; expected.len()];
        let blocks = self.blocks(count);
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
            .ok()?;
        Some(constant_time_eq(&out, expected))
    }
}

/// Hashes `password` with Argon2id (default parameters, random salt) into a PHC string, in
/// fresh memory (see [`HashingMemory::hash`]).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    HashingMemory::new().hash(password)
}

/// Checks `password` against a PHC string from [`hash_password`], in fresh memory (see
/// [`HashingMemory::verify`]); false on mismatch or a malformed hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    HashingMemory::new().verify(password, phc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn password_round_trip() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        // Same password, new salt.
        assert_ne!(phc, hash_password("correct horse").unwrap());
    }

    /// Hashes from the argon2 crate's own API verify here and the other way round, also in
    /// memory reused from other computations (with other parameters).
    #[test]
    fn agrees_with_the_argon2_crate_in_reused_memory() {
        let mut memory = HashingMemory::new();
        let theirs = Argon2::default()
            .hash_password_with_salt(b"pass one", b"0123456789abcdef")
            .unwrap()
            .to_string();
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password_with_salt(b"pass two", b"fedcba9876543210")
        .unwrap()
        .to_string();
        let v10 = Argon2::new(Algorithm::Argon2i, Version::V0x10, Params::default())
            .hash_password_with_salt(b"pass three", b"salt-salt-salt-1")
            .unwrap()
            .to_string();
        for _ in 0..2 {
            assert!(memory.verify("pass one", &theirs));
            assert!(!memory.verify("pass two", &theirs));
            assert!(memory.verify("pass two", &small));
            assert!(!memory.verify("pass one", &small));
            assert!(memory.verify("pass three", &v10));
            assert!(!memory.verify("pass one", &v10));
        }
        let ours = memory.hash("pass four").unwrap();
        assert!(memory.verify("pass four", &ours));
        assert!(
            Argon2::default()
                .verify_password(b"pass four", ours.as_str())
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"pass one", ours.as_str())
                .is_err()
        );
        assert_eq!(memory.bytes(), 19456 * 1024, "the largest m seen, kept");
    }

    #[test]
    fn malformed_or_oversized_hashes_are_false() {
        let mut memory = HashingMemory::new();
        assert!(!memory.verify("x", ""));
        assert!(!memory.verify("x", "not a phc string"));
        assert!(!memory.verify("x", "$argon2id$v=19$m=19456,t=2,p=1$garbage"));
        assert!(!memory.verify("x", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"));
        // 4 GiB of memory: refused, not allocated.
        let huge = DUMMY_PASSWORD_HASH.replace("m=19456", "m=4194304");
        assert!(!memory.verify("x", &huge));
        assert_eq!(memory.bytes(), 0);
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        // Same algorithm, version and cost parameters as a fresh hash: only salt and output
        // differ, so verifying against it takes as long as verifying a real account.
        let real = hash_password("anything").unwrap();
        let params = |phc: &str| phc.rsplitn(3, '$').nth(2).unwrap().to_owned();
        assert_eq!(params(DUMMY_PASSWORD_HASH), params(&real));
        assert!(DUMMY_PASSWORD_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let mut memory = HashingMemory::new();
        assert!(!memory.verify("", DUMMY_PASSWORD_HASH));
        assert!(!memory.verify("anything", DUMMY_PASSWORD_HASH));
        assert_eq!(memory.bytes(), 19456 * 1024, "verified, not refused early");
    }
}
