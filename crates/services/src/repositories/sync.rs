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
use infrastream_core::{EventName, NewEvent, ParentRef, Position, format_timestamp, now};
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
///
/// Requests that race are served by one sync: when, once this request holds the lock, a sync
/// that *started* after the request was made has completed (on this instance or another one
/// sharing the database), that sync fetched everything pushed before the request, so its
/// outcome is returned and nothing is fetched or committed again. "After" is decided by the
/// log, not by clocks: the request notes the store's committed head, and a sync started after
/// it when its `sync_started` event has a greater position. A request made while a sync is
/// already fetching waits for it and then syncs again, since that fetch may have missed what
/// was pushed just before the request.
pub async fn sync_repository(
    s: &Services,
    id: &str,
    actor: &Actor,
    cancel: &CancellationToken,
) -> Result<(bool, Repository), RepositoryError> {
    let requested = s.store.committed_head().await?;
    let outcome = sync_unless(s, id, actor, cancel, Skip::IfStartedAfter(requested)).await?;
    Ok(outcome.expect("a sync skipped by its start position has an outcome"))
}

/// When a sync, once it holds the repository's lock, is not needed.
enum Skip {
    /// A sync that started after this position completed: it is this request's outcome.
    IfStartedAfter(Position),
    /// The repository was synced less than this long ago (the periodic sync: another
    /// instance's sync counts for this interval too).
    IfSyncedWithin(chrono::Duration),
}

/// Syncs repository `id` unless `skip` says, under its lock, that a sync already did the
/// work; returns whether the sync (this one, or the one that did the work) succeeded and the
/// repository after it. `None` when skipped by [`Skip::IfSyncedWithin`].
async fn sync_unless(
    s: &Services,
    id: &str,
    actor: &Actor,
    cancel: &CancellationToken,
    skip: Skip,
) -> Result<Option<(bool, Repository)>, RepositoryError> {
    let _guard = tokio::select! {
        g = super::lock(s, id) => g,
        () = cancel.cancelled() => return Err(RepositoryError::Cancelled),
    };
    let mut repo = Repository::by_id(s, id)
        .await?
        .ok_or_else(|| NodeError::not_found::<Repository>(id))?;
    match skip {
        Skip::IfStartedAfter(requested) => {
            if repo
                .data
                .last_sync_started_position
                .is_some_and(|started| started > requested.0)
            {
                let ok = repo.data.sync_status == status::IN_SYNC;
                return Ok(Some((ok, repo)));
            }
        }
        Skip::IfSyncedWithin(min_age) => {
            let last = repo
                .data
                .last_synced_at
                .as_deref()
                .and_then(infrastream_core::parse_timestamp);
            if last.is_some_and(|last| now() - last < min_age) {
                return Ok(None);
            }
        }
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
    let started = s
        .store
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
    repo.data.last_sync_started_position = started.first().map(|e| e.position.0);
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
                let skip = Skip::IfSyncedWithin(min_age);
                match sync_unless(&services, &r.id, &actor, &shutdown, skip).await {
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
