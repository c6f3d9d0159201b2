//! Outgoing webhooks over GraphQL: Infrahub's `CoreStandardWebhook` in its node shape (list,
//! Create, Update, Upsert, Delete, over the generic operations of
//! [`infrastream_services::nodes`]), the delivery history (`InfrahubWebhookDelivery`) and
//! replays (`WebhookDeliveryReplay`, `WebhookReplay`).
//!
//! Written out rather than produced by `node_kind!`: Infrahub declares `active` and
//! `validate_certificates` as checkbox attributes (`CheckboxAttribute`,
//! `CheckboxAttributeCreate`, `CheckboxAttributeUpdate`, declared here), which the macro's
//! attribute types do not include.
//!
//! `shared_key` is shown to admins only (others read `null`); Infrahub shows it to every
//! reader. Listing webhooks and their deliveries is open to every reader, as for
//! repositories; changes and replays need write rights.

use crate::context::{Res, caller, domain, require_write, services, url_branch};
use crate::node::{
    AttributeValue, DeleteInput, Dropdown, JsonAttribute, JsonAttributeCreate, JsonAttributeUpdate,
    TextAttribute, TextAttributeCreate, TextAttributeUpdate, id_list,
};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use infrastream_core::Role;
use infrastream_services::nodes::{self, NodeFilter, Scope};
use infrastream_services::webhooks::config::{Values, Webhook};
use infrastream_services::webhooks::delivery::{self, Delivery};

/// Attribute of type Checkbox.
#[derive(SimpleObject, Clone)]
#[graphql(name = "CheckboxAttribute", rename_fields = "snake_case")]
pub(crate) struct CheckboxAttribute {
    value: Option<bool>,
}

impl CheckboxAttribute {
    fn of(value: bool) -> Option<Self> {
        Some(Self { value: Some(value) })
    }
}

/// Checkbox attribute of a create input; metadata is accepted and ignored.
#[derive(InputObject, Clone, Default)]
#[graphql(name = "CheckboxAttributeCreate", rename_fields = "snake_case")]
pub(crate) struct CheckboxAttributeCreate {
    value: Option<bool>,
    is_protected: Option<bool>,
    source: Option<String>,
    owner: Option<String>,
}

/// Checkbox attribute of an update or upsert input; metadata is accepted and ignored.
#[derive(InputObject, Clone, Default)]
#[graphql(name = "CheckboxAttributeUpdate", rename_fields = "snake_case")]
pub(crate) struct CheckboxAttributeUpdate {
    value: Option<bool>,
    is_default: Option<bool>,
    is_protected: Option<bool>,
    source: Option<String>,
    owner: Option<String>,
}

fn create_flag(a: Option<CheckboxAttributeCreate>) -> Option<bool> {
    a.and_then(|a| {
        let _ = (a.is_protected, a.source, a.owner);
        a.value
    })
}

fn update_flag(a: Option<CheckboxAttributeUpdate>) -> Option<bool> {
    a.and_then(|a| {
        let _ = (a.is_default, a.is_protected, a.source, a.owner);
        a.value
    })
}

/// A webhook in Infrahub's node shape.
pub(crate) struct CoreStandardWebhook(Webhook);

crate::node::node_object!(CoreStandardWebhook, {
    async fn description(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.description.as_deref())
    }
    /// Target URL to send webhook requests to
    async fn url(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.data.url)
    }
    /// The event type that triggers the webhook
    async fn event_type(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.event_type.as_deref())
    }
    /// Which branches should trigger this webhook
    async fn branch_scope(&self) -> Option<Dropdown> {
        Some(Dropdown {
            value: Some(self.0.data.branch_scope.clone()),
        })
    }
    /// Only send node mutation events for nodes of this kind
    async fn node_kind(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.node_kind.as_deref())
    }
    /// Whether to validate SSL/TLS certificates
    async fn validate_certificates(&self) -> Option<CheckboxAttribute> {
        CheckboxAttribute::of(self.0.data.validate_certificates)
    }
    /// Shared secret key for webhook authentication (shown to admins only).
    async fn shared_key(&self, ctx: &Context<'_>) -> Option<TextAttribute> {
        let admin = caller(ctx).role == Role::Admin;
        TextAttribute::opt(admin.then_some(self.0.data.shared_key.as_str()))
    }
    /// Indicates if this webhook is enabled
    async fn active(&self) -> Option<CheckboxAttribute> {
        CheckboxAttribute::of(self.0.data.active)
    }
    /// Event types delivered (with `event_type`); empty: every type.
    async fn event_types(&self) -> Option<JsonAttribute> {
        JsonAttribute::of(&serde_json::json!(self.0.data.event_types))
    }
    /// Kinds of primary node delivered (with `node_kind`); empty: any.
    async fn node_kinds(&self) -> Option<JsonAttribute> {
        JsonAttribute::of(&serde_json::json!(self.0.data.node_kinds))
    }
    /// `standard` (Standard Webhooks 1.0, `whsec_` secrets) or `infrahub` (raw key).
    async fn signature_scheme(&self) -> Option<Dropdown> {
        Some(Dropdown {
            value: Some(self.0.data.signature_scheme.clone()),
        })
    }
});

crate::node::paginated!(
    PaginatedCoreStandardWebhook,
    EdgedCoreStandardWebhook,
    CoreStandardWebhook
);
crate::node::object_result!(CoreStandardWebhookCreate, CoreStandardWebhook);
crate::node::object_result!(CoreStandardWebhookUpdate, CoreStandardWebhook);
crate::node::object_result!(CoreStandardWebhookUpsert, CoreStandardWebhook);
crate::node::ok_result!(CoreStandardWebhookDelete);

/// Data of `CoreStandardWebhookCreate`.
#[derive(InputObject)]
#[graphql(name = "CoreStandardWebhookCreateInput", rename_fields = "snake_case")]
pub(crate) struct CreateInput {
    id: Option<String>,
    name: Option<TextAttributeCreate>,
    description: Option<TextAttributeCreate>,
    url: Option<TextAttributeCreate>,
    event_type: Option<TextAttributeCreate>,
    branch_scope: Option<TextAttributeCreate>,
    node_kind: Option<TextAttributeCreate>,
    validate_certificates: Option<CheckboxAttributeCreate>,
    shared_key: Option<TextAttributeCreate>,
    active: Option<CheckboxAttributeCreate>,
    event_types: Option<JsonAttributeCreate>,
    node_kinds: Option<JsonAttributeCreate>,
    signature_scheme: Option<TextAttributeCreate>,
}

/// Declares an input that designates an existing webhook and carries update values.
macro_rules! keyed_input {
    ($input:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(InputObject)]
        #[graphql(name = $name, rename_fields = "snake_case")]
        pub(crate) struct $input {
            id: Option<String>,
            hfid: Option<Vec<Option<String>>>,
            name: Option<TextAttributeUpdate>,
            description: Option<TextAttributeUpdate>,
            url: Option<TextAttributeUpdate>,
            event_type: Option<TextAttributeUpdate>,
            branch_scope: Option<TextAttributeUpdate>,
            node_kind: Option<TextAttributeUpdate>,
            validate_certificates: Option<CheckboxAttributeUpdate>,
            shared_key: Option<TextAttributeUpdate>,
            active: Option<CheckboxAttributeUpdate>,
            event_types: Option<JsonAttributeUpdate>,
            node_kinds: Option<JsonAttributeUpdate>,
            signature_scheme: Option<TextAttributeUpdate>,
        }

        impl $input {
            fn split(self) -> (Option<String>, Option<Vec<Option<String>>>, Values) {
                let values = Values {
                    name: self.name.value(),
                    description: self.description.value(),
                    url: self.url.value(),
                    event_type: self.event_type.value(),
                    branch_scope: self.branch_scope.value(),
                    node_kind: self.node_kind.value(),
                    validate_certificates: update_flag(self.validate_certificates),
                    shared_key: self.shared_key.value(),
                    active: update_flag(self.active),
                    event_types: self.event_types.value(),
                    node_kinds: self.node_kinds.value(),
                    signature_scheme: self.signature_scheme.value(),
                };
                (self.id, self.hfid, values)
            }
        }
    };
}

keyed_input!(
    UpdateInput,
    "CoreStandardWebhookUpdateInput",
    "Data of `CoreStandardWebhookUpdate`: the webhook is found by `id` or `hfid` (`[name]`)."
);
keyed_input!(
    UpsertInput,
    "CoreStandardWebhookUpsertInput",
    "Data of `CoreStandardWebhookUpsert`: updates the webhook found by `id`, `hfid` or name, or\ncreates it."
);

/// One attempt of a delivery.
#[derive(SimpleObject)]
#[graphql(name = "WebhookDeliveryAttempt", rename_fields = "snake_case")]
pub(crate) struct WebhookDeliveryAttempt {
    /// When it started (RFC 3339).
    at: String,
    /// The HTTP status answered, if any.
    status_code: Option<i32>,
    /// How long it took, in milliseconds.
    latency_ms: i64,
    /// Why it failed.
    error: Option<String>,
}

/// The delivery of one event to one webhook.
#[derive(SimpleObject)]
#[graphql(name = "WebhookDelivery", rename_fields = "snake_case")]
pub(crate) struct WebhookDelivery {
    /// `<webhook id>:<event id>`.
    id: String,
    webhook_id: String,
    event_id: String,
    /// `pending`, `delivered` or `dead`.
    status: String,
    /// Attempts since creation or the last replay.
    attempts: i32,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    /// When the next attempt is due (RFC 3339), while pending.
    next_attempt_at: Option<String>,
    /// The most recent attempts, oldest first.
    history: Vec<WebhookDeliveryAttempt>,
}

impl From<Delivery> for WebhookDelivery {
    fn from(d: Delivery) -> Self {
        let next = (d.is_pending())
            .then(|| chrono::DateTime::from_timestamp_millis(d.data.next_attempt_at))
            .flatten()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        Self {
            id: d.id,
            webhook_id: d.data.webhook_id,
            event_id: d.data.event_id.to_string(),
            status: d.data.status,
            attempts: d.data.attempts as i32,
            last_status_code: d.data.last_status_code.map(i32::from),
            last_error: d.data.last_error,
            next_attempt_at: next,
            history: d
                .data
                .history
                .into_iter()
                .map(|a| WebhookDeliveryAttempt {
                    at: a.at,
                    status_code: a.status_code.map(i32::from),
                    latency_ms: a.latency_ms as i64,
                    error: a.error,
                })
                .collect(),
        }
    }
}

/// `{node}`.
#[derive(SimpleObject)]
#[graphql(name = "WebhookDeliveryEdge")]
pub(crate) struct WebhookDeliveryEdge {
    node: WebhookDelivery,
}

/// Deliveries, newest first: `count` regardless of paging, and the page.
#[derive(SimpleObject)]
#[graphql(name = "WebhookDeliveries")]
pub(crate) struct WebhookDeliveries {
    count: i64,
    edges: Vec<WebhookDeliveryEdge>,
}

/// `{id}` of the delivery to send again.
#[derive(InputObject)]
#[graphql(name = "WebhookDeliveryReplayInput", rename_fields = "snake_case")]
pub(crate) struct WebhookDeliveryReplayInput {
    id: String,
}

/// Result of `WebhookDeliveryReplay`.
#[derive(SimpleObject)]
#[graphql(name = "WebhookDeliveryReplay", rename_fields = "snake_case")]
pub(crate) struct WebhookDeliveryReplayResult {
    ok: bool,
}

/// The webhook and the log range (`after`, exclusive; `until`, inclusive; event ids) to
/// deliver again.
#[derive(InputObject)]
#[graphql(name = "WebhookReplayInput", rename_fields = "snake_case")]
pub(crate) struct WebhookReplayInput {
    webhook_id: String,
    /// From the log's start when absent.
    after: Option<String>,
    /// To the log's head when absent.
    until: Option<String>,
}

/// Result of `WebhookReplay`: how many deliveries were queued.
#[derive(SimpleObject)]
#[graphql(name = "WebhookReplay", rename_fields = "snake_case")]
pub(crate) struct WebhookReplayResult {
    ok: bool,
    count: i64,
}

#[derive(Default)]
pub(crate) struct WebhookQuery;

#[Object(rename_args = "snake_case")]
impl WebhookQuery {
    /// Webhooks, optionally by name or ids.
    #[graphql(name = "CoreStandardWebhook")]
    async fn list(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "name__value")] name_value: Option<String>,
        ids: Option<Vec<Option<ID>>>,
    ) -> Res<PaginatedCoreStandardWebhook> {
        let filter = NodeFilter {
            ids: id_list(ids),
            name: name_value,
            ..Default::default()
        };
        let found = nodes::list::<Webhook>(services(ctx), &filter)
            .await
            .map_err(domain)?;
        Ok(PaginatedCoreStandardWebhook::of(
            found.into_iter().map(CoreStandardWebhook).collect(),
        ))
    }

    /// Webhook deliveries, newest first, optionally of some webhooks or with some statuses
    /// (`pending`, `delivered`, `dead`).
    #[graphql(name = "InfrahubWebhookDelivery")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "webhook__ids")] webhook_ids: Option<Vec<String>>,
        status: Option<Vec<String>>,
        limit: Option<i32>,
        offset: Option<i32>,
    ) -> Res<WebhookDeliveries> {
        let (count, page) = delivery::list(
            services(ctx),
            webhook_ids.as_deref(),
            status.as_deref(),
            offset.unwrap_or(0).max(0) as usize,
            limit.map(|l| l.max(0) as usize),
        )
        .await
        .map_err(domain)?;
        Ok(WebhookDeliveries {
            count: count as i64,
            edges: page
                .into_iter()
                .map(|d| WebhookDeliveryEdge { node: d.into() })
                .collect(),
        })
    }
}

#[derive(Default)]
pub(crate) struct WebhookMutation;

#[Object(rename_args = "snake_case")]
impl WebhookMutation {
    /// Registers a webhook; events are delivered to it from the next one on.
    #[graphql(name = "CoreStandardWebhookCreate")]
    async fn create(
        &self,
        ctx: &Context<'_>,
        data: CreateInput,
    ) -> Res<Option<CoreStandardWebhookCreate>> {
        let caller = require_write(ctx)?;
        let branch = url_branch(ctx);
        let at = Scope {
            caller,
            branch: &branch,
        };
        let values = Values {
            name: data.name.value(),
            description: data.description.value(),
            url: data.url.value(),
            event_type: data.event_type.value(),
            branch_scope: data.branch_scope.value(),
            node_kind: data.node_kind.value(),
            validate_certificates: create_flag(data.validate_certificates),
            shared_key: data.shared_key.value(),
            active: create_flag(data.active),
            event_types: data.event_types.value(),
            node_kinds: data.node_kinds.value(),
            signature_scheme: data.signature_scheme.value(),
        };
        let w = nodes::create::<Webhook>(services(ctx), at, data.id, values)
            .await
            .map_err(domain)?;
        Ok(CoreStandardWebhookCreate::done(CoreStandardWebhook(w)))
    }

    /// Changes a webhook, found by `id` or `hfid`; effective from the next event.
    #[graphql(name = "CoreStandardWebhookUpdate")]
    async fn update(
        &self,
        ctx: &Context<'_>,
        data: UpdateInput,
    ) -> Res<Option<CoreStandardWebhookUpdate>> {
        let caller = require_write(ctx)?;
        let branch = url_branch(ctx);
        let at = Scope {
            caller,
            branch: &branch,
        };
        let (id, hfid, values) = data.split();
        let w = nodes::update::<Webhook>(services(ctx), at, id, hfid, values)
            .await
            .map_err(domain)?;
        Ok(CoreStandardWebhookUpdate::done(CoreStandardWebhook(w)))
    }

    /// Creates or changes a webhook, found by `id`, `hfid` or else by name.
    #[graphql(name = "CoreStandardWebhookUpsert")]
    async fn upsert(
        &self,
        ctx: &Context<'_>,
        data: UpsertInput,
    ) -> Res<Option<CoreStandardWebhookUpsert>> {
        let caller = require_write(ctx)?;
        let branch = url_branch(ctx);
        let at = Scope {
            caller,
            branch: &branch,
        };
        let (id, hfid, values) = data.split();
        let w = nodes::upsert::<Webhook>(services(ctx), at, id, hfid, values)
            .await
            .map_err(domain)?;
        Ok(CoreStandardWebhookUpsert::done(CoreStandardWebhook(w)))
    }

    /// Removes a webhook, found by `id` or `hfid`; its delivery records stay as history.
    #[graphql(name = "CoreStandardWebhookDelete")]
    async fn delete(
        &self,
        ctx: &Context<'_>,
        data: DeleteInput,
    ) -> Res<Option<CoreStandardWebhookDelete>> {
        let caller = require_write(ctx)?;
        let branch = url_branch(ctx);
        let at = Scope {
            caller,
            branch: &branch,
        };
        nodes::delete::<Webhook>(services(ctx), at, data.id, data.hfid)
            .await
            .map_err(domain)?;
        Ok(CoreStandardWebhookDelete::done())
    }

    /// Sends one delivery again (back to `pending`, attempts reset, history kept, the same
    /// `webhook-id`).
    #[graphql(name = "WebhookDeliveryReplay")]
    async fn replay_delivery(
        &self,
        ctx: &Context<'_>,
        data: WebhookDeliveryReplayInput,
    ) -> Res<WebhookDeliveryReplayResult> {
        require_write(ctx)?;
        delivery::replay_delivery(services(ctx), &data.id)
            .await
            .map_err(domain)?;
        Ok(WebhookDeliveryReplayResult { ok: true })
    }

    /// Delivers the events of a log range again to one webhook (those it matches now).
    #[graphql(name = "WebhookReplay")]
    async fn replay(
        &self,
        ctx: &Context<'_>,
        data: WebhookReplayInput,
    ) -> Res<WebhookReplayResult> {
        require_write(ctx)?;
        let count = delivery::replay_range(
            services(ctx),
            &data.webhook_id,
            data.after.as_deref(),
            data.until.as_deref(),
        )
        .await
        .map_err(domain)?;
        Ok(WebhookReplayResult {
            ok: true,
            count: count as i64,
        })
    }
}
