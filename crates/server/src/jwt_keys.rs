//! Where the JWT keys come from: the key file `jwt_secret_file`, the single secret
//! `jwt_secret`, or else the secret generated at first start and kept in the store.
//!
//! The key file holds one key per line. The **first** key signs new tokens; every key
//! verifies the tokens that name it (`kid`), so rotating is adding a key on top and, once the
//! tokens it signed have expired, removing the old line. Blank lines and lines starting with
//! `#` are ignored and white space around a key is trimmed; everything else on a line is the
//! key (there are no trailing comments: `#` inside a key is part of it). Each key must be at
//! least [`MIN_JWT_SECRET_BYTES`] long and appear once. The file must be private to the
//! server's user. Errors name the file and the line, never a key. A one-line file means what
//! it meant before keys had ids: that secret signs and verifies.

use infrastream_auth::KeyRing;
use infrastream_config::{MIN_JWT_SECRET_BYTES, Settings};
use std::path::Path;

use crate::ServerError;

/// Where the keys in force came from (for the logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeySource {
    /// The `jwt_secret_file` setting.
    File,
    /// The `jwt_secret` setting.
    Setting,
    /// The secret generated at first start, kept in the data directory.
    Stored,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeySource::File => "jwt_secret_file",
            KeySource::Setting => "jwt_secret",
            KeySource::Stored => "the data directory",
        })
    }
}

/// The key ring in force at start: the configured keys if any, else the `stored` secret;
/// logs where the keys came from and their ids.
pub(crate) fn initial(settings: &Settings, stored: &[u8]) -> Result<KeyRing, ServerError> {
    let (ring, source) = if let Some(file) = &settings.jwt_secret_file {
        let ring = read_key_file(Path::new(file)).map_err(ServerError::Config)?;
        (ring, KeySource::File)
    } else {
        let (secret, source) = match &settings.jwt_secret {
            Some(secret) => (secret.trim().as_bytes(), KeySource::Setting),
            None => (stored, KeySource::Stored),
        };
        // Validation refuses an empty or short `jwt_secret`, and the stored one is 32 random
        // bytes; the message names the source only.
        let ring = KeyRing::single(secret)
            .map_err(|e| ServerError::Config(format!("the JWT key from {source}: {e}")))?;
        (ring, source)
    };
    tracing::info!(
        source = %source,
        signing_kid = %ring.signing_kid(),
        kids = %describe(&ring),
        "JWT keys loaded"
    );
    Ok(ring)
}

/// Reads the key file at `path` (which must be private to the server's user) into a ring;
/// the error names the file, and the line when one is at fault.
pub(crate) fn read_key_file(path: &Path) -> Result<KeyRing, String> {
    crate::data_dir::refuse_if_shared(path, "JWT secret file", 0o600)?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the JWT secret file {} (setting jwt_secret_file): {e}",
            path.display()
        )
    })?;
    let keys = parse_keys(&text).map_err(|e| {
        format!(
            "the JWT secret file {} (setting jwt_secret_file): {e}",
            path.display()
        )
    })?;
    // `parse_keys` refused empty lists, empty keys and repeats, all that `KeyRing` refuses.
    KeyRing::new(keys).map_err(|e| {
        format!(
            "the JWT secret file {} (setting jwt_secret_file): {e}",
            path.display()
        )
    })
}

/// The keys of a key file, in order; the error names the line (counted from 1), never a key.
fn parse_keys(text: &str) -> Result<Vec<&[u8]>, String> {
    let mut keys: Vec<(usize, &[u8])> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let key = line.trim();
        if key.is_empty() || key.starts_with('#') {
            continue;
        }
        if key.len() < MIN_JWT_SECRET_BYTES {
            return Err(format!(
                "line {number}: the key holds {} bytes; at least {MIN_JWT_SECRET_BYTES} are required",
                key.len()
            ));
        }
        if let Some((first, _)) = keys.iter().find(|(_, k)| *k == key.as_bytes()) {
            return Err(format!(
                "line {number}: the key repeats the one on line {first}; each key must appear once"
            ));
        }
        keys.push((number, key.as_bytes()));
    }
    if keys.is_empty() {
        return Err(
            "holds no key (only blank lines or # comments); the first line holding a key signs tokens"
                .into(),
        );
    }
    Ok(keys.into_iter().map(|(_, k)| k).collect())
}

/// The ids of `ring`'s keys for the logs: the signing one first.
pub(crate) fn describe(ring: &KeyRing) -> String {
    ring.kids().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "key-a-0123456789abcdef0123456789abcdef";
    const B: &str = "key-b-0123456789abcdef0123456789abcdef";

    #[test]
    fn keys_one_per_line_first_signs() {
        let text = format!("# rotated 2025-01-01\n\n  {B}  \r\n# old\n{A}\n");
        assert_eq!(parse_keys(&text).unwrap(), [B.as_bytes(), A.as_bytes()]);
        // A key may hold `#` after its first character.
        let hashed = format!("{A}#x");
        assert_eq!(parse_keys(&hashed).unwrap(), [hashed.as_bytes()]);
    }

    #[test]
    fn bad_files_name_the_line_never_the_key() {
        let short = "short-key";
        let cases = [
            (format!("{A}\n\n{short}\n"), "line 3: the key holds 9 bytes"),
            (
                format!("{A}\n{B}\n# again\n{A}\n"),
                "line 4: the key repeats the one on line 1",
            ),
            ("\n# nothing\n   \n".to_string(), "holds no key"),
            (String::new(), "holds no key"),
        ];
        for (text, expected) in cases {
            let e = parse_keys(&text).unwrap_err();
            assert!(e.contains(expected), "{e}");
            assert!(
                !e.contains(A) && !e.contains(B) && !e.contains(short),
                "{e}"
            );
        }
    }
}
