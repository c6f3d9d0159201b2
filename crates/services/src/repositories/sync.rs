//! Syncing a repository, on demand (`RepositorySync`) or periodically
//! (`repository_sync_interval_secs`).
//!
//! A sync, serialized per repository by the lock `repository/<id>` (also taken by update and
//! delete):
//! 1. commits `infrahub.repository.sync_started` (status `started`) with the node marked
//!    `syncing`;
//! 2. fetches into the bare mirror `<data_dir>/repositories/<id>/` ([`super::git`]);
//! 3. commits, in one transaction, the updated node, `infrahub.repository.sync_completed`
//!    (`succeeded` with the default branch's head as `commit`, or `failed` with a message) and,
//!    as its children, one `infrahub.repository.update_commit` per branch or tag whose head
//!    moved (`commit_previous` null when the ref is new). Refs that disappeared are dropped
//!    from `refs` without an event (`commit` is non-null in that event type).
//!
//! All three events have the repository as primary node and no related nodes; they are
//! global (`branch` null). A sync returns once it has been committed, telling whether it
//! succeeded.

use super::git::{Git, GitError, Location};
use super::{Repository, RepositoryError, status};
use crate::nodes::{NodeError, NodeKind};
use crate::{Actor, Services};
use infrastream_core::{EventName, NewEvent, ParentRef, format_timestamp, now};
use infrastream_store::{Change, Commit};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn event(r: &Repository, name: &str, actor: &Actor, data: Value) -> NewEvent {
    let mut e = NewEvent::new(name);
    e.account_id = actor.account_id.clone();
    e.primary_node = Some(r.related());
    e.data = data;
    e.context = actor.context.clone();
    e
}

/// Fetches the repository's location; its default branch's head and every head.
async fn fetch(
    s: &Services,
    repo: &Repository,
    cancel: &CancellationToken,
) -> Result<(String, super::git::Heads), GitError> {
    let location = Location::parse(&repo.data.location)?;
    let heads = Git::new(&s.settings)
        .sync_mirror(&repo.id, &location, cancel)
        .await?;
    let branch = format!("refs/heads/{}", repo.data.default_branch);
    match heads.get(&branch) {
        Some(head) => Ok((head.clone(), heads)),
        None => Err(GitError::NoDefaultBranch(
            repo.data.default_branch.clone(),
            location.display(),
        )),
    }
}

/// Syncs repository `id` (see the module documentation) as `actor`; returns whether it
/// succeeded and the repository after it. Waits for any sync, update or delete of the same
/// repository first; `cancel` interrupts the wait and the fetch (a fetch interrupted is
/// recorded as failed).
pub async fn sync_repository(
    s: &Services,
    id: &str,
    actor: &Actor,
    cancel: &CancellationToken,
) -> Result<(bool, Repository), RepositoryError> {
    let outcome = sync_unless_recent(s, id, actor, cancel, None).await?;
    Ok(outcome.expect("a sync without a minimum age always runs"))
}

/// Like [`sync_repository`], but once it holds the repository's lock it skips the sync
/// (`Ok(None)`) when the repository was synced less than `min_age` ago — by this instance or
/// by another one sharing the database, whose lock it waited for. This is how several
/// instances running the periodic sync sync each repository once per interval between them.
async fn sync_unless_recent(
    s: &Services,
    id: &str,
    actor: &Actor,
    cancel: &CancellationToken,
    min_age: Option<chrono::Duration>,
) -> Result<Option<(bool, Repository)>, RepositoryError> {
    let _guard = tokio::select! {
        g = super::lock(s, id) => g,
        () = cancel.cancelled() => return Err(RepositoryError::Cancelled),
    };
    let mut repo = Repository::by_id(s, id)
        .await?
        .ok_or_else(|| NodeError::not_found::<Repository>(id))?;
    let last = repo
        .data
        .last_synced_at
        .as_deref()
        .and_then(infrastream_core::parse_timestamp);
    if let (Some(min_age), Some(last)) = (min_age, last)
        && now() - last < min_age
    {
        return Ok(None);
    }
    let base = json!({"repository_id": repo.id, "repository_name": repo.name});
    let with = |extra: Value| {
        let mut d = base.clone();
        if let (Some(d), Value::Object(extra)) = (d.as_object_mut(), extra) {
            d.extend(extra);
        }
        d
    };

    repo.data.sync_status = status::SYNCING.into();
    s.store
        .commit(Commit {
            changes: vec![Change::UpdateNode(repo.to_node())],
            events: vec![event(
                &repo,
                EventName::REPOSITORY_SYNC_STARTED,
                actor,
                with(json!({"status": "started", "message": null, "commit": null})),
            )],
        })
        .await?;

    let outcome = fetch(s, &repo, cancel).await;
    repo.data.last_synced_at = Some(format_timestamp(&now()));
    let mut events = Vec::new();
    let ok = match outcome {
        Ok((head, heads)) => {
            events.push(event(
                &repo,
                EventName::REPOSITORY_SYNC_COMPLETED,
                actor,
                with(json!({"status": "succeeded", "message": null, "commit": head})),
            ));
            for (git_ref, commit) in &heads {
                let previous = repo.data.refs.get(git_ref);
                if previous != Some(commit) {
                    let mut e = event(
                        &repo,
                        EventName::REPOSITORY_UPDATE_COMMIT,
                        actor,
                        with(json!({
                            "commit": commit,
                            "commit_previous": previous,
                            "ref": git_ref,
                        })),
                    );
                    e.parent = Some(ParentRef::InBatch(0));
                    events.push(e);
                }
            }
            repo.data.refs = heads;
            repo.data.commit = Some(head);
            repo.data.sync_status = status::IN_SYNC.into();
            repo.data.sync_message = None;
            true
        }
        Err(failure) => {
            let message = failure.to_string();
            tracing::info!(repository = %repo.name, %message, "repository sync failed");
            events.push(event(
                &repo,
                EventName::REPOSITORY_SYNC_COMPLETED,
                actor,
                with(json!({"status": "failed", "message": message, "commit": null})),
            ));
            repo.data.sync_status = status::ERROR.into();
            repo.data.sync_message = Some(message);
            false
        }
    };
    s.store
        .commit(Commit {
            changes: vec![Change::UpdateNode(repo.to_node())],
            events,
        })
        .await?;
    Ok(Some((ok, repo)))
}

/// Starts the periodic sync of every repository when `repository_sync_interval_secs > 0`:
/// one round every interval (counted from the end of the previous round), until `shutdown`
/// is cancelled. A repository synced less than half an interval ago — by any instance sharing
/// the database — is skipped, so several instances sync each repository once per interval
/// between them, one at a time (the repository's lock). A sync running at shutdown is interrupted and recorded as failed; await the
/// returned task before closing the store.
pub fn spawn_periodic_repository_sync(
    services: Services,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let secs = services.settings.repository_sync_interval_secs;
    if secs == 0 {
        return None;
    }
    let interval = std::time::Duration::from_secs(secs);
    Some(tokio::spawn(async move {
        let actor = Actor {
            account_id: None,
            context: json!({"account_id": null, "branch": null, "trigger": "periodic"}),
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = shutdown.cancelled() => return,
            }
            let repos = match Repository::all(&services).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "periodic repository sync: cannot list repositories");
                    continue;
                }
            };
            for r in repos {
                if shutdown.is_cancelled() {
                    return;
                }
                // Another instance sharing the database may have synced it meanwhile: its
                // sync counts for this interval too.
                let min_age = chrono::Duration::from_std(interval / 2).unwrap_or_default();
                match sync_unless_recent(&services, &r.id, &actor, &shutdown, Some(min_age)).await {
                    Ok(_) | Err(RepositoryError::Node(NodeError::NotFound { .. })) => {}
                    Err(RepositoryError::Cancelled) => return,
                    Err(e) => {
                        tracing::error!(repository = %r.name, error = %infrastream_core::Chain(&e), "periodic repository sync: store failure");
                    }
                }
            }
        }
    }))
}
