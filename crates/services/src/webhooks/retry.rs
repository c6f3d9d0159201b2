//! When to try a delivery again. (Stub: filled in by the signing work.)

use std::time::Duration;

/// The retry settings (`[webhooks]`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts before dead-lettering, the first one included.
    pub max_attempts: u32,
    /// First retry delay.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Delivered (2xx).
    Delivered,
    /// Try again after this delay.
    RetryAfter(Duration),
    /// No attempt left: dead letter.
    DeadLetter,
    /// The receiver answered 410 Gone: disable the webhook.
    Disable,
}

/// What follows attempt number `attempt` (1 for the first) that got `status` (`None`: no
/// answer — refused, timed out) and maybe a `Retry-After` header value.
pub fn next(
    policy: &RetryPolicy,
    attempt: u32,
    status: Option<u16>,
    retry_after: Option<&str>,
) -> Next {
    let _ = retry_after;
    match status {
        Some(s) if (200..300).contains(&s) => Next::Delivered,
        Some(410) => Next::Disable,
        _ if attempt >= policy.max_attempts => Next::DeadLetter,
        _ => Next::RetryAfter(policy.base),
    }
}
