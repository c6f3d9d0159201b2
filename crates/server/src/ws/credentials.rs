//! Credentials on the socket: the `connection_init` payload (keys `X-INFRAHUB-KEY`,
//! `authToken`, `Authorization: Bearer …`, or a `headers` object with any of those) wins over
//! the upgrade request's headers and cookie. A bearer value is a JWT or an API token by its shape,
//! by the same rule as over HTTP ([`bearer_credential`]).

use crate::auth::{Credential, bearer_credential, strip_bearer};
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
            // `Bearer ` is optional here (clients put a bare token in `authToken`); the value
            // is classified as over HTTP.
            let token = strip_bearer(v).unwrap_or(v);
            return Some(bearer_credential(token));
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
        assert_eq!(
            cred(json!({"Authorization": "bearer 0123abcd"})),
            Some("api:0123abcd".into())
        );
        // Dots alone do not make a JWT.
        assert_eq!(cred(json!({"authToken": "a..c"})), Some("api:a..c".into()));
        assert_eq!(cred(json!({"other": 1})), None);
    }
}
