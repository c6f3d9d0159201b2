//! Credentials on the socket: the `connection_init` payload (keys `X-INFRAHUB-KEY`,
//! `authToken`, `Authorization: Bearer …`, or a `headers` object with any of those) wins over
//! the upgrade request's headers and cookie.

use crate::auth::Credential;
use serde_json::{Map, Value};

fn from_object(obj: &Map<String, Value>) -> Option<Credential> {
    let get = |name: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(key) = get("X-INFRAHUB-KEY") {
        return Some(Credential::ApiToken(key.to_owned()));
    }
    for name in ["Authorization", "authToken"] {
        if let Some(v) = get(name) {
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or(v);
            // A bare `authToken` may be an API token or a JWT: JWTs have three dot-separated parts.
            return Some(if token.split('.').count() == 3 {
                Credential::Jwt(token.trim().to_owned())
            } else {
                Credential::ApiToken(token.trim().to_owned())
            });
        }
    }
    None
}

/// The credential named by an init payload, if any.
pub(crate) fn from_init_payload(payload: Option<&Map<String, Value>>) -> Option<Credential> {
    let payload = payload?;
    from_object(payload).or_else(|| {
        payload
            .get("headers")
            .and_then(Value::as_object)
            .and_then(from_object)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cred(v: Value) -> Option<String> {
        from_init_payload(v.as_object()).map(|c| match c {
            Credential::ApiToken(t) => format!("api:{t}"),
            Credential::Jwt(t) => format!("jwt:{t}"),
        })
    }

    #[test]
    fn payload_keys() {
        assert_eq!(cred(json!({"X-INFRAHUB-KEY": "k"})), Some("api:k".into()));
        assert_eq!(
            cred(json!({"authToken": "a.b.c"})),
            Some("jwt:a.b.c".into())
        );
        assert_eq!(
            cred(json!({"authToken": "plain"})),
            Some("api:plain".into())
        );
        assert_eq!(
            cred(json!({"Authorization": "Bearer x.y.z"})),
            Some("jwt:x.y.z".into())
        );
        assert_eq!(
            cred(json!({"headers": {"x-infrahub-key": "h"}})),
            Some("api:h".into())
        );
        assert_eq!(cred(json!({"other": 1})), None);
    }
}
