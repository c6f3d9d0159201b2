//! Password login: one path for every attempt. The throttle is asked first (a client backing
//! off is refused without a store read or a hash); then the account is read and the password
//! verified on the password-hashing pool — against the account's hash, or against
//! [`DUMMY_PASSWORD_HASH`](infrastream_auth::DUMMY_PASSWORD_HASH) when there is no such
//! account, at the same cost — and the outcome is counted by the throttle. An unknown account
//! and a wrong password get the same error, message and code, through the same pool and
//! throttles, so nothing tells whether an account exists.
//!
//! The pool is asked as [`Origin::Trusted`] when a login succeeded from the address recently
//! and none failed since (those may use the half of the queue kept for them), and the
//! verification is skipped if the attempt's address or pair started backing off while it
//! waited in the queue (answered as throttled).

pub mod throttle;

pub use throttle::LoginThrottle;

use crate::Services;
use crate::passwords::Origin;
use infrastream_core::Account;
use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_store::StoreError;
use std::net::IpAddr;
use std::time::Duration;

/// What a client refused because the hashing pool is full is told to wait.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong password, or no such account: one answer for both.
    #[error("Incorrect username or password")]
    InvalidCredentials,
    /// Too many recent failures from this address, or for this account from this address.
    #[error(
        "Too many failed logins; retry in {} s (settings login_failures_before_backoff, login_address_failures_before_backoff)",
        whole_seconds(*retry_after)
    )]
    Throttled {
        /// How long the client must wait.
        retry_after: Duration,
    },
    /// Every password-hashing thread is busy and the queue is full.
    #[error(
        "The server is busy checking passwords; retry in {} s (settings password_hash_threads, password_hash_queue)",
        whole_seconds(*retry_after)
    )]
    Busy {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// The store failed.
    #[error("store failure during login")]
    Store(#[source] StoreError),
}

impl DomainError for LoginError {
    fn code(&self) -> &'static Code {
        match self {
            LoginError::InvalidCredentials => &codes::UNAUTHENTICATED,
            LoginError::Throttled { .. } | LoginError::Busy { .. } => &codes::LIMIT_EXCEEDED,
            LoginError::Store(_) => &codes::INTERNAL_SERVER_ERROR,
        }
    }
}

impl LoginError {
    /// How long the client should wait before trying again, in whole seconds (at least 1),
    /// for the refusals that say so (`Retry-After`).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            LoginError::Throttled { retry_after } | LoginError::Busy { retry_after } => {
                Some(whole_seconds(*retry_after))
            }
            _ => None,
        }
    }
}

/// `d` rounded up to whole seconds, at least 1.
fn whole_seconds(d: Duration) -> u64 {
    let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    millis.div_ceil(1000).max(1)
}

/// Checks `password` for the account `name`, for a client at `from`; the account on success.
pub async fn login(
    s: &Services,
    name: &str,
    password: String,
    from: IpAddr,
) -> Result<Account, LoginError> {
    if let Some(retry_after) = s.login_throttle.wait(name, from) {
        return Err(LoginError::Throttled { retry_after });
    }
    let account = s
        .store
        .account_by_name(name)
        .await
        .map_err(LoginError::Store)?;
    let phc = match &account {
        Some(a) => a.password_hash.clone(),
        None => infrastream_auth::DUMMY_PASSWORD_HASH.to_owned(),
    };
    // Not computed if, by the time a hashing thread takes it, this address or pair started
    // backing off (concurrent attempts from it failed meanwhile): a flood's queued attempts
    // do not keep the threads busy once its source is throttled.
    let still_wanted = {
        let (throttle, name) = (s.login_throttle.clone(), name.to_owned());
        move || throttle.wait(&name, from).is_none()
    };
    let origin = if s.login_throttle.is_trusted(from) {
        Origin::Trusted
    } else {
        Origin::Other
    };
    let verified = s
        .passwords
        .verify_if(password, phc, origin, still_wanted)
        .await
        .map_err(|_| LoginError::Busy {
            retry_after: BUSY_RETRY_AFTER,
        })?;
    let Some(verified) = verified else {
        let retry_after = s
            .login_throttle
            .wait(name, from)
            .unwrap_or(BUSY_RETRY_AFTER);
        return Err(LoginError::Throttled { retry_after });
    };
    match account {
        Some(account) if verified => {
            s.login_throttle.succeeded(name, from);
            Ok(account)
        }
        _ => {
            s.login_throttle.failed(name, from);
            Err(LoginError::InvalidCredentials)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_their_wait_in_whole_seconds() {
        let e = LoginError::Throttled {
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(e.retry_after_secs(), Some(2));
        let shown = e.user_error();
        assert_eq!(shown.code, "LIMIT_EXCEEDED");
        assert_eq!(shown.http_status(), 429);
        assert!(
            shown
                .message
                .starts_with("Too many failed logins; retry in 2 s")
        );
        let busy = LoginError::Busy {
            retry_after: Duration::from_millis(10),
        };
        assert_eq!(busy.retry_after_secs(), Some(1));
        assert_eq!(LoginError::InvalidCredentials.retry_after_secs(), None);
        let invalid = LoginError::InvalidCredentials.user_error();
        assert_eq!(
            (
                invalid.code,
                invalid.message.as_str(),
                invalid.http_status()
            ),
            ("UNAUTHENTICATED", "Incorrect username or password", 401)
        );
    }
}
