//! Keeping secrets out of `Debug` output: a placeholder for whole secrets, and
//! [`redact_database_url`] for URLs whose password is the only secret part.

use std::fmt;

/// Text shown instead of a secret.
const REDACTED: &str = "<redacted>";

/// Wrapper whose `Debug` prints a fixed placeholder instead of the value.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `database_url` with any password (URL userinfo, `password=` parameter) replaced.
pub fn redact_database_url(url: &str) -> String {
    let mut out = url.to_owned();
    // scheme://user:password@host/...
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            let userinfo = auth_start..auth_start + at;
            if let Some(colon) = out[userinfo.clone()].find(':') {
                out.replace_range(userinfo.start + colon + 1..userinfo.end, REDACTED);
            }
        }
    }
    // ?password=... in URLs, or password=... in key/value connection strings.
    let lower = out.to_ascii_lowercase();
    let mut result = String::with_capacity(out.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(i) = lower[search..].find("password=") {
        let start = search + i;
        let boundary = start == 0 || matches!(lower.as_bytes()[start - 1], b'?' | b'&' | b' ');
        let value_start = start + "password=".len();
        let value_end = out[value_start..]
            .find(['&', ' ', '#'])
            .map_or(out.len(), |j| value_start + j);
        if boundary {
            result.push_str(&out[rest..value_start]);
            result.push_str(REDACTED);
            rest = value_end;
        }
        search = value_end.max(value_start);
    }
    result.push_str(&out[rest..]);
    result
}
