//! The git adapter: fetching a repository into a bare mirror in the data directory, with the
//! `git` binary.
//!
//! The mirror of a repository lives in `<repositories dir>/<repository id>/`. The first sync
//! initialises a bare repository in a temporary directory next to it (`.tmp-<id>-<uuid>`) and
//! renames it into place only when the fetch succeeded, so a half-written clone is never seen;
//! the temporary directory is removed on failure, on timeout and when the sync is cancelled.
//! Later syncs fetch into the mirror in place with `--atomic`: git writes the objects first and
//! updates every ref in one transaction, so a failed fetch leaves the refs as they were.
//!
//! Only branches (`refs/heads/*`) and tags (`refs/tags/*`) are mirrored; refs gone from the
//! source are pruned. A fetch may take `git_fetch_timeout_secs`, a local command (init,
//! for-each-ref) `git_local_timeout_secs`. Failures are a [`GitError`] whose message is one
//! clear sentence, with any userinfo (`user:password@`) removed from URLs: it is what a failed
//! sync records on the repository and in its event, not an error answer.

pub use super::location::{Location, LocationError, redact};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Refs mirrored from the source.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// Why fetching a repository failed; the message is what the sync records.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The location cannot be fetched from.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// A local location that is not a directory, or not a Git repository.
    #[error("Repository location {0} is not a Git repository")]
    NotARepository(String),
    /// A local location that does not exist.
    #[error("Repository location {0} does not exist")]
    NoSuchLocation(String),
    /// The server could not be reached; why, as git says.
    #[error("Could not reach {0}: {1}")]
    Unreachable(String, String),
    /// The server says there is no such repository.
    #[error("Repository {0} was not found")]
    RemoteNotFound(String),
    /// The server wants credentials, or refused them.
    #[error("Could not fetch from {0}: authentication failed or credentials are required")]
    Authentication(String),
    /// Any other fetch failure; git's message.
    #[error("Could not fetch from {0}: {1}")]
    Fetch(String, String),
    /// The repositories directory could not be created.
    #[error("Could not create the repositories directory: {0}")]
    CreateDir(#[source] std::io::Error),
    /// The new clone could not be renamed into place.
    #[error("Could not move the new clone into place: {0}")]
    MoveIntoPlace(#[source] std::io::Error),
    /// The default branch is not among the fetched branches.
    #[error("Branch {0} does not exist in {1}")]
    NoDefaultBranch(String, String),
    /// A git command failed to run, timed out, was interrupted or failed; what it did.
    #[error("{0}{1}")]
    Command(String, CommandError),
}

/// How running one git command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The binary could not be run.
    #[error(" failed: the git executable could not be run ({0})")]
    Spawn(#[source] std::io::Error),
    /// It ran longer than allowed and was killed.
    #[error(" timed out after {} s", .0.as_secs())]
    Timeout(Duration),
    /// The server is shutting down.
    #[error(" was interrupted: the server is shutting down")]
    Cancelled,
    /// It exited unsuccessfully; the first line of its standard error (userinfo removed).
    #[error(" failed: {0}")]
    Failed(String),
}

/// Branch and tag heads of a mirror: ref name → commit id (annotated tags peeled).
pub type Heads = BTreeMap<String, String>;

/// The git adapter: where mirrors live and how long git may take.
#[derive(Debug, Clone)]
pub struct Git {
    /// The directory of the mirrors (`<data_dir>/repositories`).
    pub repos_dir: PathBuf,
    /// Longest a fetch (or first clone) may take.
    pub fetch_timeout: Duration,
    /// Longest a local git command (init, for-each-ref) may take.
    pub local_timeout: Duration,
}

impl Git {
    /// The adapter configured by `settings`.
    pub fn new(settings: &infrastream_config::Settings) -> Self {
        Self {
            repos_dir: settings.data_dir.join("repositories"),
            fetch_timeout: Duration::from_secs(settings.git_fetch_timeout_secs),
            local_timeout: Duration::from_secs(settings.git_local_timeout_secs),
        }
    }

    /// Fetches `location` into the mirror `<repos_dir>/<id>` and returns its heads. Never
    /// leaves a partial clone behind.
    pub async fn sync_mirror(
        &self,
        id: &str,
        location: &Location,
        cancel: &CancellationToken,
    ) -> Result<Heads, GitError> {
        let repos_dir = self.repos_dir.as_path();
        if let Some(path) = location.local_path() {
            match tokio::fs::metadata(path).await {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(GitError::NotARepository(location.display())),
                Err(_) => return Err(GitError::NoSuchLocation(location.display())),
            }
        }
        remove_stale_temp_dirs(repos_dir, id).await;
        let mirror = repos_dir.join(id);
        if tokio::fs::metadata(&mirror).await.is_ok_and(|m| m.is_dir()) {
            self.fetch(&mirror, location, cancel).await?;
        } else {
            tokio::fs::create_dir_all(repos_dir)
                .await
                .map_err(GitError::CreateDir)?;
            let temp = TempDir(Some(
                repos_dir.join(format!(".tmp-{id}-{}", uuid::Uuid::new_v4().simple())),
            ));
            let path = temp.0.clone().unwrap_or_default();
            let mut init: Vec<&OsStr> = vec!["init".as_ref(), "--bare".as_ref(), "-q".as_ref()];
            init.push(path.as_os_str());
            git(&init, self.local_timeout, cancel)
                .await
                .map_err(|e| e.described("git init"))?;
            self.fetch(&path, location, cancel).await?;
            tokio::fs::rename(&path, &mirror)
                .await
                .map_err(GitError::MoveIntoPlace)?;
            temp.disarm();
        }
        self.heads(&mirror, cancel).await
    }

    /// Removes the mirror of a deleted repository.
    pub async fn remove_mirror(&self, id: &str) {
        remove_mirror(&self.repos_dir, id).await;
    }

    async fn fetch(
        &self,
        git_dir: &Path,
        location: &Location,
        cancel: &CancellationToken,
    ) -> Result<(), GitError> {
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
        match git(&args, self.fetch_timeout, cancel).await {
            Ok(_) => Ok(()),
            Err(CommandError::Failed(stderr)) => Err(fetch_failure(location, &stderr)),
            Err(e) => Err(e.described(&format!("Fetching from {}", location.display()))),
        }
    }

    async fn heads(&self, git_dir: &Path, cancel: &CancellationToken) -> Result<Heads, GitError> {
        let args: [&OsStr; 6] = [
            "--git-dir".as_ref(),
            git_dir.as_os_str(),
            "for-each-ref".as_ref(),
            "--format=%(refname)%00%(objectname)%00%(*objectname)".as_ref(),
            "refs/heads".as_ref(),
            "refs/tags".as_ref(),
        ];
        let out = git(&args, self.local_timeout, cancel)
            .await
            .map_err(|e| e.described("Listing the refs of the mirror"))?;
        Ok(out
            .lines()
            .filter_map(|line| {
                let mut parts = line.split('\0');
                let name = parts.next()?;
                let object = parts.next()?;
                let peeled = parts.next().unwrap_or("");
                let commit = if peeled.is_empty() { object } else { peeled };
                (!name.is_empty() && !commit.is_empty())
                    .then(|| (name.to_string(), commit.to_string()))
            })
            .collect())
    }
}

/// Removes the mirror of a deleted repository.
async fn remove_mirror(repos_dir: &Path, id: &str) {
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

/// One sentence naming the problem, from git's standard error (run with `LC_ALL=C`).
fn fetch_failure(location: &Location, stderr: &str) -> GitError {
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
            GitError::NotARepository(shown)
        }
        Location::Http(_) if lower.contains("unable to access") => {
            let why = fatal.rsplit_once("': ").map_or(fatal.as_str(), |(_, w)| w);
            GitError::Unreachable(shown, why.to_owned())
        }
        Location::Http(_) if lower.contains("not found") => GitError::RemoteNotFound(shown),
        Location::Http(_)
            if lower.contains("authentication failed")
                || lower.contains("could not read username")
                || lower.contains("could not read password") =>
        {
            GitError::Authentication(shown)
        }
        _ => GitError::Fetch(shown, fatal),
    }
}

impl CommandError {
    /// The failure of the command that did `what`; a failure keeps the first line of git's
    /// standard error.
    fn described(self, what: &str) -> GitError {
        let e = match self {
            CommandError::Failed(stderr) => {
                let line = stderr
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("");
                let line = line.strip_prefix("fatal: ").unwrap_or(line);
                CommandError::Failed(redact(line))
            }
            e => e,
        };
        GitError::Command(what.to_owned(), e)
    }
}

/// Runs git without a terminal, prompts, inherited repository variables or localisation;
/// returns its standard output. The process is killed when the timeout or `cancel` fires.
async fn git(
    args: &[&OsStr],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<String, CommandError> {
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
            Err(_) => return Err(CommandError::Timeout(timeout)),
            Ok(Err(e)) => return Err(CommandError::Spawn(e)),
            Ok(Ok(o)) => o,
        },
        () = cancel.cancelled() => return Err(CommandError::Cancelled),
    };
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(CommandError::Failed(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "infrastream-git-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn timeouts_come_from_the_settings() {
        let settings = infrastream_config::Settings {
            git_fetch_timeout_secs: 7,
            git_local_timeout_secs: 3,
            ..Default::default()
        };
        let git = Git::new(&settings);
        assert_eq!(git.fetch_timeout, Duration::from_secs(7));
        assert_eq!(git.local_timeout, Duration::from_secs(3));
        assert_eq!(git.repos_dir, settings.data_dir.join("repositories"));
    }

    #[tokio::test]
    async fn a_fetch_past_its_timeout_fails_clearly_and_leaves_nothing() {
        // A server that accepts the connection and never answers: the fetch can only end by
        // its timeout, however loaded the machine is.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/repo.git", silent.local_addr().unwrap());
        let repos_dir = scratch("mirrors");
        let git = Git {
            repos_dir: repos_dir.clone(),
            fetch_timeout: Duration::from_millis(300),
            local_timeout: Duration::from_secs(60),
        };
        let location = Location::parse(&url).unwrap();
        let e = git
            .sync_mirror("r1", &location, &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Fetching from {} timed out after 0 s", location.display())
        );
        assert_eq!(
            std::fs::read_dir(&repos_dir).unwrap().count(),
            0,
            "no partial clone is left"
        );
        let missing = Location::parse("/nonexistent/infrastream-repo").unwrap();
        let e = git
            .sync_mirror("r2", &missing, &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Repository location /nonexistent/infrastream-repo does not exist"
        );
        let _ = std::fs::remove_dir_all(repos_dir);
    }
}
