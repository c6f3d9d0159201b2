//! When to try a delivery again.
//!
//! - **2xx**: delivered.
//! - **410 Gone**: the receiver says the endpoint is gone for good: the webhook is disabled
//!   (no retry, no dead letter).
//! - **Anything else** — no answer (refused, timed out), 3xx, 5xx, and 4xx too — is retried,
//!   as Svix (the reference sender of Standard Webhooks) retries every non-2xx answer: a
//!   receiver's 4xx is often a transient mistake (a deploy, a rotated key not yet rolled out)
//!   and the dead letter after the last attempt bounds the cost.
//! - After attempt `max_attempts` (the first attempt counts): dead letter.
//!
//! The delay before attempt `n + 1` is exponential backoff with **equal jitter**: the step
//! `e = min(base × 2^(n−1), max)`, then a delay drawn uniformly in `[e/2, e]` (getrandom; no
//! jitter, `e`, if the system has no randomness). Equal rather than full jitter keeps at least
//! half the step between attempts, so a struggling receiver is never retried immediately,
//! while still spreading the retries of many deliveries.
//!
//! **429 Too Many Requests** and **503 Service Unavailable** with a `Retry-After` header
//! (delta-seconds, or an HTTP-date: IMF-fixdate, RFC 850 or asctime) wait what the receiver
//! asked, bounded by `max` (a date in the past means now); without a usable `Retry-After` they
//! back off like any other failure.

use chrono::{DateTime, NaiveDateTime, Utc};
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
    next_at(policy, attempt, status, retry_after, Utc::now())
}

/// [`next`] with the current time given (an HTTP-date `Retry-After` is relative to it).
pub fn next_at(
    policy: &RetryPolicy,
    attempt: u32,
    status: Option<u16>,
    retry_after: Option<&str>,
    now: DateTime<Utc>,
) -> Next {
    match status {
        Some(s) if (200..300).contains(&s) => return Next::Delivered,
        Some(410) => return Next::Disable,
        _ => {}
    }
    if attempt >= policy.max_attempts {
        return Next::DeadLetter;
    }
    if matches!(status, Some(429 | 503))
        && let Some(wait) = retry_after.and_then(|v| parse_retry_after(v, now))
    {
        return Next::RetryAfter(wait.min(policy.max));
    }
    Next::RetryAfter(jittered(backoff(policy, attempt)))
}

/// The backoff step after attempt `attempt`: `base × 2^(attempt−1)`, at most `max`.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(63);
    let factor = 1u64 << doublings;
    let nanos = policy.base.as_nanos().saturating_mul(u128::from(factor));
    let max = policy.max.as_nanos();
    let capped = nanos.min(max);
    Duration::from_nanos(u64::try_from(capped).unwrap_or(u64::MAX))
}

/// Equal jitter: uniform in `[step/2, step]`.
fn jittered(step: Duration) -> Duration {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_err() {
        return step;
    }
    equal_jitter(step, u64::from_le_bytes(buf))
}

/// `step/2 + (random mod (step/2 + 1))`, in nanoseconds.
fn equal_jitter(step: Duration, random: u64) -> Duration {
    let total = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
    let half = total / 2;
    let span = total - half; // ceil(total / 2)
    let extra = if span == u64::MAX {
        random
    } else {
        random % (span + 1)
    };
    Duration::from_nanos(half.saturating_add(extra))
}

/// A `Retry-After` value as a delay from `now`: delta-seconds, or an HTTP-date (a past date
/// is zero). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = http_date(v)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// An HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete RFC 850 and asctime forms.
fn http_date(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc2822(v) {
        return Some(t.with_timezone(&Utc));
    }
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    if let Ok(t) = NaiveDateTime::parse_from_str(v, "%A, %d-%b-%y %H:%M:%S GMT") {
        return Some(t.and_utc());
    }
    // asctime: Sun Nov  6 08:49:37 1994
    let squeezed = v.split_whitespace().collect::<Vec<_>>().join(" ");
    NaiveDateTime::parse_from_str(&squeezed, "%a %b %e %H:%M:%S %Y")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_secs(1),
        max: Duration::from_secs(10),
    };

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("1994-11-06T08:49:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn delay(n: Next) -> Duration {
        match n {
            Next::RetryAfter(d) => d,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn outcomes() {
        assert_eq!(next(&P, 1, Some(200), None), Next::Delivered);
        assert_eq!(next(&P, 5, Some(204), None), Next::Delivered);
        assert_eq!(next(&P, 1, Some(410), None), Next::Disable);
        assert_eq!(next(&P, 5, Some(410), None), Next::Disable);
        for s in [
            None,
            Some(500),
            Some(404),
            Some(400),
            Some(401),
            Some(302),
            Some(408),
        ] {
            assert!(matches!(next(&P, 1, s, None), Next::RetryAfter(_)), "{s:?}");
        }
    }

    #[test]
    fn dead_letter_at_the_last_attempt() {
        assert!(matches!(next(&P, 4, Some(500), None), Next::RetryAfter(_)));
        assert_eq!(next(&P, 5, Some(500), None), Next::DeadLetter);
        assert_eq!(next(&P, 6, None, None), Next::DeadLetter);
        assert_eq!(next(&P, 5, Some(429), Some("1")), Next::DeadLetter);
        let one = RetryPolicy {
            max_attempts: 1,
            ..P
        };
        assert_eq!(next(&one, 1, None, None), Next::DeadLetter);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let secs: Vec<u64> = (1..=7).map(|a| backoff(&P, a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10, 10]);
        assert_eq!(backoff(&P, u32::MAX), P.max);
        assert_eq!(backoff(&P, 0), P.base);
    }

    #[test]
    fn jitter_stays_in_range() {
        let many = RetryPolicy {
            max_attempts: 100,
            ..P
        };
        for attempt in 1..=8 {
            let step = backoff(&many, attempt);
            for _ in 0..200 {
                let d = delay(next(&many, attempt, Some(500), None));
                assert!(d >= step / 2 && d <= step, "{attempt}: {d:?} vs {step:?}");
            }
        }
        let step = Duration::from_secs(8);
        assert_eq!(equal_jitter(step, 0), Duration::from_secs(4));
        assert_eq!(equal_jitter(step, 4_000_000_000), step);
        assert_eq!(equal_jitter(Duration::ZERO, 12345), Duration::ZERO);
        // Not constant.
        let ds: std::collections::HashSet<Duration> =
            (0..50).map(|_| delay(next(&P, 3, None, None))).collect();
        assert!(ds.len() > 1);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let n = now();
        assert_eq!(
            delay(next_at(&P, 1, Some(429), Some("3"), n)),
            Duration::from_secs(3)
        );
        assert_eq!(
            delay(next_at(&P, 1, Some(503), Some(" 0 "), n)),
            Duration::ZERO
        );
        // Bounded by max.
        assert_eq!(delay(next_at(&P, 1, Some(429), Some("3600"), n)), P.max);
        // IMF-fixdate, RFC 850, asctime: 37 s after now (and bounded by max).
        let long = RetryPolicy {
            max: Duration::from_secs(60),
            ..P
        };
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                delay(next_at(&long, 1, Some(503), Some(v), n)),
                Duration::from_secs(37),
                "{v}"
            );
            assert_eq!(delay(next_at(&P, 1, Some(503), Some(v), n)), P.max);
        }
        // A date in the past: now.
        assert_eq!(
            delay(next_at(
                &P,
                1,
                Some(429),
                Some("Sat, 05 Nov 1994 08:49:37 GMT"),
                n
            )),
            Duration::ZERO
        );
        // Garbage, or another status: the backoff.
        let d = delay(next_at(&P, 3, Some(429), Some("soon"), n));
        assert!(
            d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
            "{d:?}"
        );
        let d = delay(next_at(&P, 1, Some(500), Some("9"), n));
        assert!(d <= Duration::from_secs(1), "{d:?}");
    }
}
