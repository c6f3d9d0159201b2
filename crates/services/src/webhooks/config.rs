//! Webhooks as configured: Infrahub's `CoreStandardWebhook`, a generic stored node (kind
//! `CoreStandardWebhook`, JSON `data`) like a Git repository, listed, created, changed and
//! removed by the operations of [`crate::nodes`].
//!
//! Infrahub's attributes (`name`, `description`, `url`, `event_type`, `branch_scope`,
//! `node_kind`, `validate_certificates`, `shared_key`, `active`) plus infrastream's:
//! `event_types` and `node_kinds` (lists; see [`super::matching`]) and `signature_scheme`
//! (`standard`, the default: Standard Webhooks 1.0 with `whsec_` secrets; `infrahub`: the raw
//! key as Infrahub signs). Every create or update is checked: the URL is `http(s)://`, the
//! branch scope one of the three values, the shared key parses under the scheme. A Standard
//! webhook created without a `shared_key` gets a generated one (readable by admins).
//!
//! Changes take the webhook's configuration lock (`webhook-config/<id>`), as does the
//! engine when a 410 disables a webhook, so neither writes back a stale copy.

use super::signing::{self, Scheme};
use crate::nodes::{Attribute, NodeError, NodeKind, Scope, store_code};
use crate::{LockGuard, Services};
use async_trait::async_trait;
use infrastream_core::Node;
use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_store::{Change, Commit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Node kind of standard webhooks.
pub const KIND: &str = "CoreStandardWebhook";

/// `branch_scope` values.
pub mod scope {
    /// Events of every branch, and global events.
    pub const ALL: &str = "all_branches";
    /// Events of the default branch (`main`) and global events.
    pub const DEFAULT: &str = "default_branch";
    /// Events of branches other than the default one.
    pub const OTHER: &str = "other_branches";
}

/// `signature_scheme` values.
pub mod schemes {
    /// Standard Webhooks 1.0 (`whsec_` secrets).
    pub const STANDARD: &str = "standard";
    /// Infrahub's raw-key HMAC.
    pub const INFRAHUB: &str = "infrahub";
}

/// What went wrong with a webhook.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A value is not acceptable; why.
    #[error("{0}")]
    Invalid(String),
    /// A failure every kind shares.
    #[error(transparent)]
    Node(#[from] NodeError),
}

crate::nodes::store_errors_via_node!(WebhookError);

impl DomainError for WebhookError {
    fn code(&self) -> &'static Code {
        match self {
            WebhookError::Invalid(_) => &codes::BAD_USER_INPUT,
            WebhookError::Node(NodeError::Store(e)) => store_code(e),
            WebhookError::Node(e) => e.code(),
        }
    }
}

fn default_scope() -> String {
    scope::DEFAULT.into()
}
fn default_scheme() -> String {
    schemes::STANDARD.into()
}
fn yes() -> bool {
    true
}

/// What a webhook node keeps in its `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookData {
    /// Where requests are sent.
    pub url: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Infrahub's single event type (`all` or empty: every type).
    #[serde(default)]
    pub event_type: Option<String>,
    /// `all_branches`, `default_branch` (the default, as Infrahub) or `other_branches`.
    #[serde(default = "default_scope")]
    pub branch_scope: String,
    /// Infrahub's single node kind filter.
    #[serde(default)]
    pub node_kind: Option<String>,
    /// Whether `https://` certificates are verified.
    #[serde(default = "yes")]
    pub validate_certificates: bool,
    /// The signing secret(s).
    #[serde(default)]
    pub shared_key: String,
    /// Event types (infrastream); joined with `event_type`.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Node kinds (infrastream); joined with `node_kind`.
    #[serde(default)]
    pub node_kinds: Vec<String>,
    /// `standard` or `infrahub`.
    #[serde(default = "default_scheme")]
    pub signature_scheme: String,
    /// Whether events are delivered; a 410 answer sets it to false.
    #[serde(default = "yes")]
    pub active: bool,
    /// The head of the log when the webhook was created: the dispatcher gives it only later
    /// events, whatever its cursor (configuration takes effect at the next event, also after
    /// a restart from an older cursor).
    #[serde(default)]
    pub since: u64,
}

/// A webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Its id.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// Everything else.
    pub data: WebhookData,
}

impl Webhook {
    /// The webhook stored as `node`, if it is one.
    pub fn from_node(node: Node) -> Option<Self> {
        if node.kind != KIND {
            return None;
        }
        match serde_json::from_value(node.data) {
            Ok(data) => Some(Self {
                id: node.id,
                name: node.name,
                data,
            }),
            Err(e) => {
                tracing::error!(id = %node.id, error = %e, "unreadable webhook node");
                None
            }
        }
    }

    /// The node that stores it.
    pub fn to_node(&self) -> Node {
        Node {
            id: self.id.clone(),
            kind: KIND.into(),
            name: self.name.clone(),
            data: serde_json::to_value(&self.data).unwrap_or(Value::Null),
        }
    }

    /// Its signature scheme.
    pub fn scheme(&self) -> Scheme {
        match self.data.signature_scheme.as_str() {
            schemes::INFRAHUB => Scheme::Infrahub,
            _ => Scheme::Standard,
        }
    }

    /// Checks every value (see the module documentation).
    pub fn check(&self) -> Result<(), WebhookError> {
        let invalid = |m: String| Err(WebhookError::Invalid(m));
        if self.name.trim().is_empty() {
            return Err(NodeError::Required("name").into());
        }
        match reqwest::Url::parse(&self.data.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            Ok(u) => {
                return invalid(format!(
                    "Invalid url '{}': only http:// and https:// URLs with a host are accepted (got scheme '{}')",
                    self.data.url,
                    u.scheme()
                ));
            }
            Err(e) => return invalid(format!("Invalid url '{}': {e}", self.data.url)),
        }
        if ![scope::ALL, scope::DEFAULT, scope::OTHER].contains(&self.data.branch_scope.as_str()) {
            return invalid(format!(
                "Invalid branch_scope '{}': expected all_branches, default_branch or other_branches",
                self.data.branch_scope
            ));
        }
        if ![schemes::STANDARD, schemes::INFRAHUB].contains(&self.data.signature_scheme.as_str()) {
            return invalid(format!(
                "Invalid signature_scheme '{}': expected standard or infrahub",
                self.data.signature_scheme
            ));
        }
        signing::parse_keys(self.scheme(), &self.data.shared_key)
            .map_err(|e| WebhookError::Invalid(format!("Invalid shared_key: {e}")))?;
        Ok(())
    }
}

/// The attribute values of a webhook mutation.
#[derive(Debug, Default)]
pub struct Values {
    /// `name`.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `url`.
    pub url: Option<String>,
    /// `event_type`.
    pub event_type: Option<String>,
    /// `branch_scope`.
    pub branch_scope: Option<String>,
    /// `node_kind`.
    pub node_kind: Option<String>,
    /// `validate_certificates`.
    pub validate_certificates: Option<bool>,
    /// `shared_key`.
    pub shared_key: Option<String>,
    /// `active`.
    pub active: Option<bool>,
    /// `event_types` (a JSON list of strings).
    pub event_types: Option<Value>,
    /// `node_kinds` (a JSON list of strings).
    pub node_kinds: Option<Value>,
    /// `signature_scheme`.
    pub signature_scheme: Option<String>,
}

/// A JSON list of strings (`null`: empty).
fn string_list(attr: &str, v: Value) -> Result<Vec<String>, WebhookError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) if !s.trim().is_empty() => Ok(s),
                other => Err(WebhookError::Invalid(format!(
                    "Invalid {attr}: expected a list of non-empty strings, found {other}"
                ))),
            })
            .collect(),
        other => Err(WebhookError::Invalid(format!(
            "Invalid {attr}: expected a list of strings, found {other}"
        ))),
    }
}

/// Waits for and takes the configuration lock of webhook `id`.
pub(crate) async fn config_lock(s: &Services, id: &str) -> LockGuard {
    s.locks.lock(&format!("webhook-config/{id}")).await
}

/// Every webhook.
pub async fn webhooks(s: &Services) -> Result<Vec<Webhook>, WebhookError> {
    Ok(s.store
        .nodes(KIND)
        .await?
        .into_iter()
        .filter_map(Webhook::from_node)
        .collect())
}

/// The webhook with this id.
pub async fn webhook(s: &Services, id: &str) -> Result<Option<Webhook>, WebhookError> {
    Ok(s.store.node(id).await?.and_then(Webhook::from_node))
}

async fn put(
    s: &Services,
    w: Webhook,
    change: fn(Node) -> Change,
) -> Result<Webhook, WebhookError> {
    w.check()?;
    s.store.commit(Commit::change(change(w.to_node()))).await?;
    super::wake();
    Ok(w)
}

#[async_trait]
impl NodeKind for Webhook {
    const KIND: &'static str = KIND;
    const LABEL: &'static str = "Webhook";
    // Checkbox attributes are declared as text: the attribute kinds have no checkbox, and
    // this description is only used to check the served inputs.
    const ATTRIBUTES: &'static [Attribute] = &[
        Attribute::text("name", true),
        Attribute::text("description", false),
        Attribute::text("url", true),
        Attribute::text("event_type", false),
        Attribute::text("branch_scope", false),
        Attribute::text("node_kind", false),
        Attribute::text("validate_certificates", false),
        Attribute::text("shared_key", false),
        Attribute::text("active", false),
        Attribute::json("event_types", false),
        Attribute::json("node_kinds", false),
        Attribute::text("signature_scheme", false),
    ];
    type Values = Values;
    type Error = WebhookError;

    crate::nodes::named_by_fields!();

    async fn build(
        s: &Services,
        _: Scope<'_>,
        id: Option<String>,
        v: Values,
    ) -> Result<Self, WebhookError> {
        let scheme = v.signature_scheme.unwrap_or_else(default_scheme);
        let shared_key = match v.shared_key {
            Some(k) => k,
            None if scheme == schemes::STANDARD => {
                signing::generate_secret().map_err(WebhookError::Invalid)?
            }
            None => String::new(),
        };
        Ok(Webhook {
            id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            name: v.name.ok_or(NodeError::Required("name"))?,
            data: WebhookData {
                url: v.url.ok_or(NodeError::Required("url"))?,
                description: v.description,
                event_type: v.event_type,
                branch_scope: v.branch_scope.unwrap_or_else(default_scope),
                node_kind: v.node_kind,
                validate_certificates: v.validate_certificates.unwrap_or(true),
                shared_key,
                event_types: string_list("event_types", v.event_types.unwrap_or(Value::Null))?,
                node_kinds: string_list("node_kinds", v.node_kinds.unwrap_or(Value::Null))?,
                signature_scheme: scheme,
                active: v.active.unwrap_or(true),
                since: s.bus.head().borrow().0,
            },
        })
    }

    async fn merge(mut self, _: &Services, v: Values) -> Result<Self, WebhookError> {
        let d = &mut self.data;
        if let Some(name) = v.name {
            self.name = name;
        }
        if let Some(x) = v.description {
            d.description = Some(x);
        }
        if let Some(x) = v.url {
            d.url = x;
        }
        if let Some(x) = v.event_type {
            d.event_type = Some(x);
        }
        if let Some(x) = v.branch_scope {
            d.branch_scope = x;
        }
        if let Some(x) = v.node_kind {
            d.node_kind = Some(x);
        }
        if let Some(x) = v.validate_certificates {
            d.validate_certificates = x;
        }
        if let Some(x) = v.shared_key {
            d.shared_key = x;
        }
        if let Some(x) = v.active {
            d.active = x;
        }
        if let Some(x) = v.event_types {
            d.event_types = string_list("event_types", x)?;
        }
        if let Some(x) = v.node_kinds {
            d.node_kinds = string_list("node_kinds", x)?;
        }
        if let Some(x) = v.signature_scheme {
            d.signature_scheme = x;
        }
        Ok(self)
    }

    async fn all(s: &Services) -> Result<Vec<Self>, WebhookError> {
        webhooks(s).await
    }

    async fn by_id(s: &Services, id: &str) -> Result<Option<Self>, WebhookError> {
        webhook(s, id).await
    }

    async fn insert(s: &Services, _: Scope<'_>, w: Self) -> Result<Self, WebhookError> {
        w.check()?;
        let _guard = config_lock(s, &w.id).await;
        if s.store.node(&w.id).await?.is_some() {
            return Err(NodeError::IdTaken(w.id).into());
        }
        put(s, w, Change::CreateNode).await
    }

    async fn replace(s: &Services, _: Scope<'_>, w: Self) -> Result<Self, WebhookError> {
        put(s, w, Change::UpdateNode).await
    }

    async fn update(
        s: &Services,
        _: Scope<'_>,
        id: &str,
        values: Values,
    ) -> Result<Self, WebhookError> {
        let _guard = config_lock(s, id).await;
        let existing = webhook(s, id)
            .await?
            .ok_or_else(|| NodeError::not_found::<Self>(id))?;
        put(s, existing.merge(s, values).await?, Change::UpdateNode).await
    }

    /// Removes a webhook; its deliveries stay (as history) but are never attempted again.
    async fn remove(s: &Services, _: Scope<'_>, id: String) -> Result<Option<Self>, WebhookError> {
        let _guard = config_lock(s, &id).await;
        let existing = webhook(s, &id)
            .await?
            .ok_or_else(|| NodeError::not_found::<Self>(&id))?;
        s.store
            .commit(Commit::change(Change::DeleteNode {
                id: existing.id.clone(),
            }))
            .await?;
        Ok(Some(existing))
    }
}
