//! Who is calling: credentials from headers (`X-INFRAHUB-KEY`, `Authorization: Bearer`, cookie
//! `access_token`, in that order; a bearer value is a JWT or an API token by its shape, see
//! [`bearer_credential`]), checked against the store; and the login / refresh / logout
//! endpoints that issue and end JWT sessions (a login is judged by
//! `infrastream_services::login`: throttled, verified on the bounded password-hashing pool).
//! A logged-out session's tokens, refresh and access alike, are refused. Secrets are never
//! logged or echoed.

use crate::{AppState, reply};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use infrastream_auth::{Claims, JwtError, TokenKind};
use infrastream_core::{Account, DomainError, Error, ErrorKind, Timestamp, now};
use infrastream_graphql::Caller;
use infrastream_services::sessions::{self, Client};
use std::net::SocketAddr;
use std::time::Duration;

/// A credential presented by a client.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum Credential {
    /// An API token.
    ApiToken(String),
    /// A JWT access token.
    Jwt(String),
}

/// A verified caller and when its credential stops being valid.
pub(crate) struct Authenticated {
    pub(crate) caller: Caller,
    /// Expiry of the credential, if it has one.
    #[allow(dead_code)]
    pub(crate) expires_at: Option<Timestamp>,
    /// The login session of a JWT (its `session_id` claim).
    pub(crate) session_id: Option<String>,
}

fn unauthenticated(message: &str) -> Error {
    Error::new(ErrorKind::Unauthenticated, message)
}

/// The value of an `Authorization: Bearer <value>` header (scheme case-insensitive), if it is
/// one.
pub(crate) fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// What a bearer value is — the one rule for `Authorization: Bearer <value>` over HTTP and in
/// a WebSocket `connection_init` payload (`Authorization`, `authToken`): a value shaped like a
/// JWT (three non-empty dot-separated base64url parts) is verified as a JWT access token;
/// anything else is looked up as an API token. (`X-INFRAHUB-KEY` is always an API token, the
/// `access_token` cookie always a JWT.) API tokens are hex, so they never look like a JWT.
pub(crate) fn bearer_credential(value: &str) -> Credential {
    let value = value.trim();
    let base64url = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() == 3 && parts.iter().all(|p| base64url(p)) {
        Credential::Jwt(value.to_owned())
    } else {
        Credential::ApiToken(value.to_owned())
    }
}

/// The first credential in the headers, in the order of SPEC §8.
pub(crate) fn credential_from_headers(headers: &HeaderMap) -> Option<Credential> {
    let text = |name| reply::header_text(headers, name).map(str::trim);
    if let Some(key) =
        text(header::HeaderName::from_static("x-infrahub-key")).filter(|k| !k.is_empty())
    {
        return Some(Credential::ApiToken(key.to_owned()));
    }
    if let Some(token) = text(header::AUTHORIZATION).and_then(strip_bearer) {
        return Some(bearer_credential(token));
    }
    access_token_cookie(headers).map(|t| Credential::Jwt(t.to_owned()))
}

/// The value of the first `access_token` cookie.
fn access_token_cookie(headers: &HeaderMap) -> Option<&str> {
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    cookies
        .flat_map(|c| c.split(';'))
        .find_map(|cookie| cookie.trim().strip_prefix("access_token="))
}

/// Checks a credential; no credential means anonymous where allowed.
pub(crate) async fn authenticate(
    state: &AppState,
    credential: Option<Credential>,
) -> Result<Authenticated, Error> {
    let store = state.store();
    let internal = |e: infrastream_store::StoreError| {
        tracing::error!(error = %e, "store failure during authentication");
        Error::internal()
    };
    match credential {
        None if state.settings().allow_anonymous_access => Ok(Authenticated {
            caller: Caller::anonymous(),
            expires_at: None,
            session_id: None,
        }),
        None => Err(unauthenticated("Authentication is required")),
        Some(Credential::ApiToken(secret)) => {
            let hash = infrastream_auth::hash_api_token(&secret);
            let key = format!("token:{hash}");
            if let Some((caller, expires_at)) = state.services.domain.credentials.get(&key) {
                return Ok(Authenticated {
                    caller,
                    expires_at,
                    session_id: None,
                });
            }
            // Looked up by its SHA-256: the lookup's timing depends only on the hash of what
            // the client sent, which tells nothing about any stored token's secret. The stored
            // hash is then confirmed in constant time, whatever the backend's matching rules.
            let token = store.token_by_hash(&hash).await.map_err(internal)?;
            let token = token.filter(|t| {
                infrastream_auth::constant_time_eq(t.token_hash.as_bytes(), hash.as_bytes())
            });
            let Some(token) = token else {
                return Err(unauthenticated("Invalid token"));
            };
            if token.revoked {
                return Err(unauthenticated("The API token has been revoked"));
            }
            if token.expires_at.is_some_and(|t| t <= now()) {
                return Err(unauthenticated("The API token has expired"));
            }
            let account = store.account(&token.account_id).await.map_err(internal)?;
            let caller = cache_account_caller(state, key, account, token.expires_at)?;
            Ok(Authenticated {
                caller,
                expires_at: token.expires_at,
                session_id: None,
            })
        }
        Some(Credential::Jwt(jwt)) => {
            let claims = state
                .services
                .domain
                .jwt
                .verify(&jwt, TokenKind::Access)
                .map_err(jwt_error)?;
            let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0);
            // Per session: a logout ends one session, not the account's others.
            let key = format!("jwt:{}:{}", claims.sub, claims.session_id);
            let session_id = Some(claims.session_id.clone());
            if let Some((caller, _)) = state.services.domain.credentials.get(&key) {
                return Ok(Authenticated {
                    caller,
                    expires_at,
                    session_id,
                });
            }
            let services = &state.services.domain;
            if sessions::is_logged_out(services, &claims.session_id)
                .await
                .map_err(internal)?
            {
                return Err(unauthenticated(
                    "The access token has been invalidated: its session was logged out",
                ));
            }
            let account = store.account(&claims.sub).await.map_err(internal)?;
            let caller = cache_account_caller(state, key, account, None)?;
            Ok(Authenticated {
                caller,
                expires_at,
                session_id,
            })
        }
    }
}

/// The caller a credential's account makes, cached under `key` until `expires_at` (or the
/// cache's own expiry); a credential whose account is gone is invalid.
fn cache_account_caller(
    state: &AppState,
    key: String,
    account: Option<Account>,
    expires_at: Option<Timestamp>,
) -> Result<Caller, Error> {
    let Some(account) = account else {
        return Err(unauthenticated("Invalid token"));
    };
    let caller = Caller {
        role: account.role,
        account: Some(account),
    };
    state
        .services
        .domain
        .credentials
        .insert(key, caller.clone(), expires_at);
    Ok(caller)
}

fn jwt_error(e: JwtError) -> Error {
    unauthenticated(&e.to_string())
}

#[derive(serde::Deserialize)]
pub(crate) struct Login {
    username: String,
    password: String,
}

/// Where a request came from, as account events record it: the TCP peer's address and the
/// `User-Agent` header.
fn client(peer: SocketAddr, headers: &HeaderMap) -> Client {
    Client {
        ip: Some(peer.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    }
}

/// Opens a login session for `account`: issues its access and refresh tokens and records
/// `infrahub.account.logged_in`. A login that cannot be recorded is refused (500).
async fn open_session(state: &AppState, account: &Account, client: Client) -> Response {
    let s = state.settings();
    let session = uuid::Uuid::now_v7().to_string();
    let services = &state.services.domain;
    if let Err(e) = sessions::record_login(services, account, &session, &client).await {
        return reply::error(&e.user_error());
    }
    let jwt = &services.jwt;
    let body = serde_json::json!({
        "access_token": jwt.issue(&account.id, TokenKind::Access, Duration::from_secs(s.access_token_lifetime_secs), &session),
        "refresh_token": jwt.issue(&account.id, TokenKind::Refresh, Duration::from_secs(s.refresh_token_lifetime_secs), &session),
    });
    reply::json(StatusCode::OK, body.to_string())
}

/// `POST /api/auth/login` `{"username","password"}` → `{"access_token","refresh_token"}`.
/// The attempt is judged by the domain's login (`infrastream_services::login`): throttled per
/// client address (the TCP peer; forwarded-for headers are not trusted) and per account name
/// and address, verified on the bounded password-hashing pool. Refusals that ask the client
/// to wait (429) carry `Retry-After` in whole seconds.
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(login) = serde_json::from_slice::<Login>(&body) else {
        return reply::bad_request("Expected a JSON body {\"username\": ..., \"password\": ...}");
    };
    let domain = &state.services.domain;
    match infrastream_services::login::login(domain, &login.username, login.password, peer.ip())
        .await
    {
        Ok(account) => open_session(&state, &account, client(peer, &headers)).await,
        Err(e) => {
            let mut answer = reply::error(&e.user_error());
            if let Some(secs) = e.retry_after_secs() {
                answer
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            answer
        }
    }
}

/// `POST /api/auth/refresh` with `Authorization: Bearer <refresh token>` → `{"access_token"}`.
pub(crate) async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // Only a refresh token (a JWT) is meaningful here, so the bearer value is verified as one
    // whatever its shape.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(strip_bearer)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return reply::error(&unauthenticated(
            "A refresh token is required in the Authorization header",
        ));
    };
    let claims = match state.services.domain.jwt.verify(token, TokenKind::Refresh) {
        Ok(c) => c,
        Err(e) => return reply::error(&jwt_error(e)),
    };
    match refresh_refusal(&state, &claims).await {
        Ok(None) => {}
        Ok(Some(message)) => return reply::error(&unauthenticated(message)),
        Err(e) => {
            tracing::error!(error = %e, "store failure during refresh");
            return reply::error(&Error::internal());
        }
    }
    let now = chrono::Utc::now().timestamp();
    let access = Claims {
        sub: claims.sub,
        iat: now,
        exp: now + state.settings().access_token_lifetime_secs as i64,
        fresh: false,
        session_id: claims.session_id,
        kind: TokenKind::Access,
    };
    let body = serde_json::json!({"access_token": state.services.domain.jwt.sign(&access)});
    reply::json(StatusCode::OK, body.to_string())
}

/// Why a verified refresh token is refused, if it is: its session was logged out, or its
/// account is gone.
async fn refresh_refusal(
    state: &AppState,
    claims: &Claims,
) -> Result<Option<&'static str>, infrastream_store::StoreError> {
    if sessions::is_logged_out(&state.services.domain, &claims.session_id).await? {
        return Ok(Some(
            "The refresh token has been invalidated: its session was logged out",
        ));
    }
    let account = state.store().account(&claims.sub).await?;
    Ok(account.is_none().then_some("Invalid token"))
}

/// The JWT access token of a logout: `Authorization: Bearer …` (verified as a JWT whatever
/// its shape), else the `access_token` cookie.
fn access_token_of(headers: &HeaderMap) -> Option<String> {
    let bearer = reply::header_text(headers, header::AUTHORIZATION)
        .and_then(strip_bearer)
        .filter(|t| !t.is_empty());
    bearer
        .or_else(|| access_token_cookie(headers))
        .map(str::to_owned)
}

/// `POST /api/auth/logout` with the session's access token (`Authorization: Bearer` or the
/// `access_token` cookie), as Infrahub: ends the session — its refresh token and its access
/// tokens are refused from now on, sockets it authenticated are closed — records
/// `infrahub.account.logged_out`, and answers `null` while clearing the token cookies.
pub(crate) async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = access_token_of(&headers) else {
        return reply::error(&unauthenticated(
            "A JWT access token is required to perform this operation.",
        ));
    };
    let authenticated = match authenticate(&state, Some(Credential::Jwt(token))).await {
        Ok(a) => a,
        Err(e) => return reply::error(&e),
    };
    let (Some(account), Some(session_id)) =
        (authenticated.caller.account, authenticated.session_id)
    else {
        return reply::error(&unauthenticated("Invalid token"));
    };
    let services = &state.services.domain;
    let client = client(peer, &headers);
    if let Err(e) = sessions::logout(services, &account, &session_id, &client).await {
        return reply::error(&e.user_error());
    }
    let mut r = reply::json(StatusCode::OK, "null".into());
    for name in ["access_token", "refresh_token"] {
        let cookie = format!("{name}=\"\"; Max-Age=0; Path=/; SameSite=lax");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_value_is_a_jwt_or_an_api_token_by_its_shape() {
        let jwt = |v: &str| Credential::Jwt(v.into());
        let api = |v: &str| Credential::ApiToken(v.into());
        let cases = [
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
                jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"),
            ),
            ("a-b.c_d.e", jwt("a-b.c_d.e")),
            ("0123456789abcdef", api("0123456789abcdef")),
            ("a.b", api("a.b")),
            ("a..c", api("a..c")),
            ("a.b.c.d", api("a.b.c.d")),
            ("a.b+.c", api("a.b+.c")),
            ("", api("")),
        ];
        for (value, want) in cases {
            assert!(bearer_credential(value) == want, "{value}");
        }
        assert_eq!(strip_bearer("Bearer x"), Some("x"));
        assert_eq!(strip_bearer("bEaReR  x "), Some("x"));
        assert_eq!(strip_bearer("Basic x"), None);
        assert_eq!(strip_bearer("x"), None);
    }
}
