//! Where a repository is fetched from: an absolute path, a `file://` URL or an `http(s)://`
//! URL ([`Location`]), and how locations are shown: never with their userinfo
//! (`user:password@`, [`redact`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A location that cannot be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// No location given.
    #[error("location.value is required")]
    Missing,
    /// Not a supported location; the location (userinfo removed) and why.
    #[error("Invalid repository location '{location}': {why}")]
    Invalid {
        /// The location as shown.
        location: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Where a repository is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An absolute local path.
    Path(PathBuf),
    /// A `file://` URL and the local path it names.
    File(String, PathBuf),
    /// An `http://` or `https://` URL.
    Http(String),
}

impl Location {
    /// Parses a repository location: an absolute path, a `file://` URL or an `http(s)://` URL.
    pub fn parse(location: &str) -> Result<Self, LocationError> {
        let bad = |why: &'static str| {
            Err(LocationError::Invalid {
                location: redact(location),
                why,
            })
        };
        if location.trim().is_empty() {
            return Err(LocationError::Missing);
        }
        if location.chars().any(char::is_control) {
            return bad("it contains control characters");
        }
        let lower = location.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("file://") {
            // `file:///path` or `file://localhost/path`.
            let rest = &location[location.len() - rest.len()..];
            let path = match rest.strip_prefix("localhost") {
                Some(p) if p.starts_with('/') => p,
                _ if rest.starts_with('/') => rest,
                _ => return bad("a file:// URL must name an absolute local path"),
            };
            return Ok(Location::File(
                location.to_string(),
                PathBuf::from(percent_decode(path)),
            ));
        }
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let host = location
                .split_once("://")
                .map(|(_, r)| r.split(['/', '?', '#']).next().unwrap_or(""))
                .unwrap_or("");
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            if host.is_empty() {
                return bad("the URL has no host");
            }
            return Ok(Location::Http(location.to_string()));
        }
        if lower.contains("://") || lower.starts_with("git@") || lower.contains("::") {
            return bad("only local paths, file:// URLs and http(s):// URLs are supported");
        }
        let path = Path::new(location);
        if !path.is_absolute() {
            return bad("a local path must be absolute");
        }
        Ok(Location::Path(path.to_path_buf()))
    }

    /// What git is given to fetch from.
    pub(super) fn remote(&self) -> &OsStr {
        match self {
            Location::Path(p) => p.as_os_str(),
            Location::File(url, _) | Location::Http(url) => OsStr::new(url),
        }
    }

    /// The location as shown in messages: userinfo removed.
    pub fn display(&self) -> String {
        match self {
            Location::Path(p) => p.display().to_string(),
            Location::File(url, _) | Location::Http(url) => redact(url),
        }
    }

    pub(super) fn local_path(&self) -> Option<&Path> {
        match self {
            Location::Path(p) | Location::File(_, p) => Some(p),
            Location::Http(_) => None,
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Removes userinfo (`user:password@`) from every URL in `text`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => out.push_str(&authority[at + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_removed_from_urls() {
        assert_eq!(
            redact("fatal: unable to access 'https://bob:s3cret@example.com/r.git/': nope"),
            "fatal: unable to access 'https://example.com/r.git/': nope"
        );
        assert_eq!(redact("http://tok@h:8080"), "http://h:8080");
        assert_eq!(redact("/plain/path"), "/plain/path");
    }

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("/srv/repo").unwrap(),
            Location::Path("/srv/repo".into())
        );
        assert_eq!(
            Location::parse("file:///srv/my%20repo").unwrap(),
            Location::File("file:///srv/my%20repo".into(), "/srv/my repo".into())
        );
        assert!(matches!(
            Location::parse("https://u:p@example.com/x.git").unwrap(),
            Location::Http(_)
        ));
        for bad in [
            "relative/path",
            "ssh://h/x",
            "git@github.com:a/b",
            "ext::sh -c x",
            "file://host/x",
            "http:///x",
            "",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        let msg = Location::parse("ssh://bob:pw@h/x").unwrap_err().to_string();
        assert!(!msg.contains("pw"), "{msg}");
    }
}
