//! Branches, in Infrahub's shape.

use crate::{Error, Timestamp};
use serde::{Deserialize, Serialize};

/// Lifecycle state of a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BranchStatus {
    /// Open for changes.
    Open,
    /// `main` moved on; the branch should be rebased.
    NeedRebase,
    /// A merge is in progress.
    Merging,
    /// Merged into `main`.
    Merged,
    /// Being deleted.
    Deleting,
    /// The last merge failed.
    MergeFailed,
}

impl BranchStatus {
    /// The GraphQL / storage spelling (`OPEN`, `NEED_REBASE`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            BranchStatus::Open => "OPEN",
            BranchStatus::NeedRebase => "NEED_REBASE",
            BranchStatus::Merging => "MERGING",
            BranchStatus::Merged => "MERGED",
            BranchStatus::Deleting => "DELETING",
            BranchStatus::MergeFailed => "MERGE_FAILED",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "OPEN" => BranchStatus::Open,
            "NEED_REBASE" => BranchStatus::NeedRebase,
            "MERGING" => BranchStatus::Merging,
            "MERGED" => BranchStatus::Merged,
            "DELETING" => BranchStatus::Deleting,
            "MERGE_FAILED" => BranchStatus::MergeFailed,
            _ => return None,
        })
    }
}

/// A branch of the data platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    /// UUID string.
    pub id: String,
    /// Unique, Git-ref-like name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Always `main`.
    pub origin_branch: String,
    /// When the branch last started from `main` (moves on rebase).
    pub branched_from: Timestamp,
    /// Creation time.
    pub created_at: Timestamp,
    /// Lifecycle state.
    pub status: BranchStatus,
    /// Whether the branch is mirrored to Git repositories.
    pub sync_with_git: bool,
    /// True only for `main`.
    pub is_default: bool,
    /// Always false in infrastream (no schema engine).
    pub has_schema_changes: bool,
    /// Incremented on every merge into or rebase of the branch.
    pub graph_version: i64,
}

/// The name of the default branch.
pub const DEFAULT_BRANCH: &str = "main";

/// Maximum length of a branch name, in bytes.
pub const MAX_BRANCH_NAME_LEN: usize = 250;

/// Checks a branch name with Git's ref rules that matter to users: not empty, no whitespace or
/// control characters, no `..`, no leading `-` or `/`, no trailing `/` or `.lock`, none of
/// `~^:?*[\`, no `@{`, no empty path component.
pub fn validate_branch_name(name: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "Invalid branch name '{name}': {why}"
        )))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_BRANCH_NAME_LEN {
        return bad("it is longer than 250 characters");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace or control characters");
    }
    if name.contains("..") {
        return bad("it contains '..'");
    }
    if name.starts_with('-') {
        return bad("it starts with '-'");
    }
    if name.chars().any(|c| "~^:?*[\\".contains(c)) || name.contains("@{") {
        return bad("it contains one of ~ ^ : ? * [ \\ @{");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return bad("it has an empty path component");
    }
    if name.ends_with(".lock") || name.ends_with('.') || name.split('/').any(|p| p.starts_with('.'))
    {
        return bad("a component starts with '.' or ends with '.lock' or '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_git_like_names() {
        for ok in ["main", "feature/x", "release-1.2", "a_b", "x/y/z"] {
            assert!(validate_branch_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "", " ", "a b", "a..b", "-x", "a~b", "/a", "a/", "a//b", "x.lock", "a/.b", "a\tb",
        ] {
            let err = validate_branch_name(bad).unwrap_err();
            assert!(err.message.contains("Invalid branch name"), "{bad}: {err}");
        }
    }

    #[test]
    fn status_round_trips() {
        for s in [
            BranchStatus::Open,
            BranchStatus::NeedRebase,
            BranchStatus::Merging,
            BranchStatus::Merged,
            BranchStatus::Deleting,
            BranchStatus::MergeFailed,
        ] {
            assert_eq!(BranchStatus::parse(s.as_str()), Some(s));
        }
    }
}
