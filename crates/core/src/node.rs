//! Generic stored nodes: artifact definitions, artifacts, repositories, … Each is a `kind`
//! with a name unique within that kind and its attributes as JSON, so a new node family needs
//! no new table.

use serde_json::Value;

/// A stored node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// UUID string.
    pub id: String,
    /// Node kind, e.g. `CoreArtifact`.
    pub kind: String,
    /// Unique within the kind.
    pub name: String,
    /// Attributes, as a JSON object.
    pub data: Value,
}
