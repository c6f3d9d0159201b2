//! Git repositories (`CoreRepository`) in Infrahub's node shape, produced by
//! [`node_kind!`](crate::node_kind::node_kind) from the domain's description
//! ([`infrastream_services::repositories`]), and their sync on demand (`RepositorySync`),
//! which returns once the sync has been committed, with `ok` telling whether it succeeded.

use crate::context::{Res, domain, require_write, services, url_branch};
use crate::node::{Dropdown, TextAttribute};
use crate::node_kind::{anyone, node_kind};
use async_graphql::{Context, InputObject, SimpleObject};
use infrastream_services::repositories::{Repository, Values, sync_repository};
use tokio_util::sync::CancellationToken;

/// A Git repository in Infrahub's node shape.
pub(crate) struct CoreRepository(Repository);

crate::node::node_object!(CoreRepository, {
    async fn description(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.description.as_deref())
    }
    /// Where it is fetched from; userinfo (`user:password@`) is never shown.
    async fn location(&self) -> Option<TextAttribute> {
        TextAttribute::of(self.0.shown_location())
    }
    async fn default_branch(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.data.default_branch)
    }
    /// Head of the default branch after the last successful sync.
    async fn commit(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.commit.as_deref())
    }
    /// `unknown`, `syncing`, `in-sync` or `error-import`.
    async fn sync_status(&self) -> Option<Dropdown> {
        Some(Dropdown {
            value: Some(self.0.data.sync_status.clone()),
        })
    }
    /// Why the last sync failed (null after a successful one).
    async fn sync_message(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.sync_message.as_deref())
    }
    /// When the last sync ended.
    async fn last_synced_at(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.last_synced_at.as_deref())
    }
});

/// Result of `CoreRepositoryDelete`: `{ok}` as in Infrahub, plus the removed repository.
#[derive(SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct CoreRepositoryDelete {
    ok: Option<bool>,
    /// The repository as it was before the delete (an infrastream extension).
    object: Option<CoreRepository>,
}

/// `{id}` of the repository to sync.
#[derive(InputObject)]
#[graphql(name = "RepositorySyncInput", rename_fields = "snake_case")]
pub(crate) struct RepositorySyncInput {
    id: String,
}

/// Result of `RepositorySync`: `ok` is whether the sync succeeded; `object` the repository
/// after it (its `sync_message` says why a sync failed).
#[derive(SimpleObject)]
#[graphql(name = "RepositorySyncResult", rename_fields = "snake_case")]
pub(crate) struct RepositorySyncResult {
    ok: bool,
    object: Option<CoreRepository>,
}

node_kind! {
    kind: Repository,
    values: Values,
    object: CoreRepository,
    query: RepositoryQuery,
    list: "CoreRepository" => (PaginatedCoreRepository, EdgedCoreRepository),
    list_guard: anyone,
    mutation: RepositoryMutation,
    guard: require_write,
    attributes: [name, description, location, default_branch],
    create: "CoreRepositoryCreate" => (CoreRepositoryCreate, "CoreRepositoryCreateInput"),
    update: "CoreRepositoryUpdate" => (CoreRepositoryUpdate, "CoreRepositoryUpdateInput"),
    upsert: "CoreRepositoryUpsert" => (CoreRepositoryUpsert, "CoreRepositoryUpsertInput"),
    delete: "CoreRepositoryDelete" => (CoreRepositoryDelete, |object| Some(CoreRepositoryDelete {
        ok: Some(true),
        object,
    })),
    docs: {
        list: "Git repositories, optionally by name or ids.",
        create_input: "Data of `CoreRepositoryCreate`.",
        update_input: "Data of `CoreRepositoryUpdate`: the repository is found by `id` or `hfid` (`[name]`).",
        upsert_input: "Data of `CoreRepositoryUpsert`: updates the repository found by `id`, `hfid` or name, or\ncreates it.",
        create: "Registers a repository (it is fetched by `RepositorySync` or the periodic sync).",
        update: "Changes a repository, found by `id` or `hfid`.",
        upsert: "Creates or changes a repository, found by `id`, `hfid` or else by name.",
        delete: "Removes a repository and its mirror, found by `id` or `hfid`; returns the removed\nrepository.",
    },
    extra_mutations: {
        /// Fetches the repository now and returns when the sync has been committed.
        #[graphql(name = "RepositorySync")]
        async fn sync(
            &self,
            ctx: &Context<'_>,
            data: RepositorySyncInput,
        ) -> Res<RepositorySyncResult> {
            let actor = require_write(ctx)?.actor(&url_branch(ctx));
            let (ok, repo) =
                sync_repository(services(ctx), &data.id, &actor, &CancellationToken::new())
                    .await
                    .map_err(domain)?;
            Ok(RepositorySyncResult {
                ok,
                object: Some(CoreRepository(repo)),
            })
        }
    },
}
