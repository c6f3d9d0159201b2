//! Fetching a Git repository into a bare mirror in the data directory, with the `git` binary.
//!
//! The mirror of a repository lives in `<repositories dir>/<repository id>/`. The first sync
//! initialises a bare repository in a temporary directory next to it (`.tmp-<id>-<uuid>`) and
//! renames it into place only when the fetch succeeded, so a half-written clone is never seen;
//! the temporary directory is removed on failure, on timeout and when the sync is cancelled.
//! Later syncs fetch into the mirror in place with `--atomic`: git writes the objects first and
//! updates every ref in one transaction, so a failed fetch leaves the refs as they were.
//!
//! Only branches (`refs/heads/*`) and tags (`refs/tags/*`) are mirrored; refs gone from the
//! source are pruned. Failures come back as one clear sentence, with any userinfo
//! (`user:password@`) removed from URLs.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Longest a fetch (or first clone) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest a local git command (init, for-each-ref) may take.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Refs mirrored from the source.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Where a repository is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// An absolute local path.
    Path(PathBuf),
    /// A `file://` URL and the local path it names.
    File(String, PathBuf),
    /// An `http://` or `https://` URL.
    Http(String),
}

impl Location {
    /// Parses a repository location: an absolute path, a `file://` URL or an `http(s)://` URL.
    pub(crate) fn parse(location: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            Err(format!(
                "Invalid repository location '{}': {why}",
                redact(location)
            ))
        };
        if location.trim().is_empty() {
            return Err("location.value is required".into());
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
    fn remote(&self) -> &OsStr {
        match self {
            Location::Path(p) => p.as_os_str(),
            Location::File(url, _) | Location::Http(url) => OsStr::new(url),
        }
    }

    /// The location as shown in messages: userinfo removed.
    pub(crate) fn display(&self) -> String {
        match self {
            Location::Path(p) => p.display().to_string(),
            Location::File(url, _) | Location::Http(url) => redact(url),
        }
    }

    fn local_path(&self) -> Option<&Path> {
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
pub(crate) fn redact(text: &str) -> String {
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

/// Branch and tag heads of a mirror: ref name → commit id (annotated tags peeled).
pub(crate) type Heads = BTreeMap<String, String>;

/// Fetches `location` into the mirror `<repos_dir>/<id>` and returns its heads, or a message
/// saying clearly what went wrong. Never leaves a partial clone behind.
pub(crate) async fn sync_mirror(
    repos_dir: &Path,
    id: &str,
    location: &Location,
    cancel: &CancellationToken,
) -> Result<Heads, String> {
    if let Some(path) = location.local_path() {
        match tokio::fs::metadata(path).await {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "Repository location {} is not a Git repository",
                    location.display()
                ));
            }
            Err(_) => {
                return Err(format!(
                    "Repository location {} does not exist",
                    location.display()
                ));
            }
        }
    }
    remove_stale_temp_dirs(repos_dir, id).await;
    let mirror = repos_dir.join(id);
    if tokio::fs::metadata(&mirror).await.is_ok_and(|m| m.is_dir()) {
        fetch(&mirror, location, cancel).await?;
    } else {
        tokio::fs::create_dir_all(repos_dir)
            .await
            .map_err(|e| format!("Could not create the repositories directory: {e}"))?;
        let temp = TempDir(Some(
            repos_dir.join(format!(".tmp-{id}-{}", uuid::Uuid::new_v4().simple())),
        ));
        let path = temp.0.clone().unwrap_or_default();
        let mut init: Vec<&OsStr> = vec!["init".as_ref(), "--bare".as_ref(), "-q".as_ref()];
        init.push(path.as_os_str());
        git(&init, LOCAL_TIMEOUT, cancel)
            .await
            .map_err(|e| e.describe("git init"))?;
        fetch(&path, location, cancel).await?;
        tokio::fs::rename(&path, &mirror)
            .await
            .map_err(|e| format!("Could not move the new clone into place: {e}"))?;
        temp.disarm();
    }
    heads(&mirror, cancel).await
}

/// Removes the mirror of a deleted repository.
pub(crate) async fn remove_mirror(repos_dir: &Path, id: &str) {
    let mirror = repos_dir.join(id);
    if let Err(e) = tokio::fs::remove_dir_all(&mirror).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %mirror.display(), error = %e, "could not remove a repository mirror");
    }
    remove_stale_temp_dirs(repos_dir, id).await;
}

/// Temporary clones of `id` left by a crash (the caller holds the repository's lock, so no
/// clone of it is in progress).
async fn remove_stale_temp_dirs(repos_dir: &Path, id: &str) {
    let Ok(mut entries) = tokio::fs::read_dir(repos_dir).await else {
        return;
    };
    let prefix = format!(".tmp-{id}-");
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

/// A directory removed when dropped (also when the sync future is dropped mid-way).
struct TempDir(Option<PathBuf>);

impl TempDir {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = std::fs::remove_dir_all(&p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "could not remove a temporary clone");
        }
    }
}

async fn fetch(
    git_dir: &Path,
    location: &Location,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let mut args: Vec<&OsStr> = vec![
        "--git-dir".as_ref(),
        git_dir.as_os_str(),
        "fetch".as_ref(),
        "--quiet".as_ref(),
        "--prune".as_ref(),
        "--atomic".as_ref(),
        "--no-tags".as_ref(),
        "--no-recurse-submodules".as_ref(),
        "--end-of-options".as_ref(),
        location.remote(),
    ];
    args.extend(REFSPECS.iter().map(OsStr::new));
    match git(&args, FETCH_TIMEOUT, cancel).await {
        Ok(_) => Ok(()),
        Err(GitError::Failed(stderr)) => Err(fetch_failure(location, &stderr)),
        Err(e) => Err(e.describe(&format!("Fetching from {}", location.display()))),
    }
}

/// One sentence naming the problem, from git's standard error (run with `LC_ALL=C`).
fn fetch_failure(location: &Location, stderr: &str) -> String {
    let shown = location.display();
    let fatal = stderr
        .lines()
        .map(str::trim)
        .find_map(|l| {
            l.strip_prefix("fatal: ")
                .or_else(|| l.strip_prefix("error: "))
        })
        .map(redact)
        .unwrap_or_else(|| redact(stderr.trim()));
    let lower = stderr.to_ascii_lowercase();
    match location {
        Location::Path(_) | Location::File(..)
            if lower.contains("does not appear to be a git repository")
                || lower.contains("not a git repository") =>
        {
            format!("Repository location {shown} is not a Git repository")
        }
        Location::Http(_) if lower.contains("unable to access") => {
            let why = fatal.rsplit_once("': ").map_or(fatal.as_str(), |(_, w)| w);
            format!("Could not reach {shown}: {why}")
        }
        Location::Http(_) if lower.contains("not found") => {
            format!("Repository {shown} was not found")
        }
        Location::Http(_)
            if lower.contains("authentication failed")
                || lower.contains("could not read username")
                || lower.contains("could not read password") =>
        {
            format!(
                "Could not fetch from {shown}: authentication failed or credentials are required"
            )
        }
        _ => format!("Could not fetch from {shown}: {fatal}"),
    }
}

async fn heads(git_dir: &Path, cancel: &CancellationToken) -> Result<Heads, String> {
    let args: [&OsStr; 6] = [
        "--git-dir".as_ref(),
        git_dir.as_os_str(),
        "for-each-ref".as_ref(),
        "--format=%(refname)%00%(objectname)%00%(*objectname)".as_ref(),
        "refs/heads".as_ref(),
        "refs/tags".as_ref(),
    ];
    let out = git(&args, LOCAL_TIMEOUT, cancel)
        .await
        .map_err(|e| e.describe("Listing the refs of the mirror"))?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\0');
            let name = parts.next()?;
            let object = parts.next()?;
            let peeled = parts.next().unwrap_or("");
            let commit = if peeled.is_empty() { object } else { peeled };
            (!name.is_empty() && !commit.is_empty()).then(|| (name.to_string(), commit.to_string()))
        })
        .collect())
}

enum GitError {
    /// The binary could not be run.
    Spawn(std::io::Error),
    /// It ran longer than allowed and was killed.
    Timeout(Duration),
    /// The server is shutting down.
    Cancelled,
    /// It exited unsuccessfully; its standard error.
    Failed(String),
}

impl GitError {
    fn describe(&self, what: &str) -> String {
        match self {
            GitError::Spawn(e) => {
                format!("{what} failed: the git executable could not be run ({e})")
            }
            GitError::Timeout(d) => format!("{what} timed out after {} s", d.as_secs()),
            GitError::Cancelled => format!("{what} was interrupted: the server is shutting down"),
            GitError::Failed(stderr) => {
                let line = stderr
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("");
                let line = line.strip_prefix("fatal: ").unwrap_or(line);
                format!("{what} failed: {}", redact(line))
            }
        }
    }
}

/// Runs git without a terminal, prompts, inherited repository variables or localisation;
/// returns its standard output. The process is killed when the timeout or `cancel` fires.
async fn git(
    args: &[&OsStr],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<String, GitError> {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GCM_INTERACTIVE", "never")
        .env("GIT_ALLOW_PROTOCOL", "file:http:https")
        .env("LC_ALL", "C")
        .env("LANGUAGE", "C");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_COMMON_DIR",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
    ] {
        cmd.env_remove(var);
    }
    let output = tokio::select! {
        r = tokio::time::timeout(timeout, cmd.output()) => match r {
            Err(_) => return Err(GitError::Timeout(timeout)),
            Ok(Err(e)) => return Err(GitError::Spawn(e)),
            Ok(Ok(o)) => o,
        },
        () = cancel.cancelled() => return Err(GitError::Cancelled),
    };
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(GitError::Failed(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }
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
        let msg = Location::parse("ssh://bob:pw@h/x").unwrap_err();
        assert!(!msg.contains("pw"), "{msg}");
    }
}
