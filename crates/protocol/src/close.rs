//! WebSocket close codes and reasons, one named constructor per code.

use std::fmt;

/// Longest close reason a close frame can carry: 125 payload bytes minus the 2-byte code.
pub const MAX_REASON_BYTES: usize = 123;

/// A close frame to send: a code and a reason of at most [`MAX_REASON_BYTES`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    code: u16,
    reason: String,
}

impl Close {
    /// 1000: normal closure (legacy `connection_terminate`).
    pub const NORMAL: u16 = 1000;
    /// 1001: the server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// 1002: the client broke RFC 6455 framing.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1007: a text message that is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// 1009: a frame exceeded the configured message size.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// 1013: the client should reconnect later (used for slow consumers).
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// 4400: invalid message.
    pub const BAD_REQUEST: u16 = 4400;
    /// 4401: `subscribe` before `connection_ack`.
    pub const UNAUTHORIZED: u16 = 4401;
    /// 4403: credentials rejected or expired.
    pub const FORBIDDEN: u16 = 4403;
    /// 4406: no supported subprotocol offered.
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    /// 4408: no `connection_init` within the init timeout.
    pub const INIT_TIMEOUT: u16 = 4408;
    /// 4409: `subscribe` with an id that is still active.
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    /// 4429: a second `connection_init`.
    pub const TOO_MANY_INIT: u16 = 4429;

    /// A close with any code; the reason is cut to [`MAX_REASON_BYTES`] on a char boundary.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        let len = truncated_len(&reason);
        reason.truncate(len);
        Close { code, reason }
    }

    /// 1000 with an empty reason.
    pub fn normal() -> Self {
        Close::new(Self::NORMAL, "")
    }

    /// 1001 `Server shutting down`.
    pub fn going_away() -> Self {
        Close::new(Self::GOING_AWAY, "Server shutting down")
    }

    /// 1009 `Message too big`.
    pub fn message_too_big() -> Self {
        Close::new(Self::MESSAGE_TOO_BIG, "Message too big")
    }

    /// 1013 telling a subscriber that fell behind to resume with `after`.
    pub fn slow_consumer() -> Self {
        Close::new(
            Self::TRY_AGAIN_LATER,
            "Subscriber fell behind; resubscribe with `after` set to the last event id received",
        )
    }

    /// 4400 with a (vaguely) descriptive reason.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Close::new(Self::BAD_REQUEST, reason)
    }

    /// 4401 `Unauthorized`.
    pub fn unauthorized() -> Self {
        Close::new(Self::UNAUTHORIZED, "Unauthorized")
    }

    /// 4403 `Forbidden`.
    pub fn forbidden() -> Self {
        Close::new(Self::FORBIDDEN, "Forbidden")
    }

    /// 4403 `Forbidden: credentials expired`.
    pub fn credentials_expired() -> Self {
        Close::new(Self::FORBIDDEN, "Forbidden: credentials expired")
    }

    /// 4406 `Subprotocol not acceptable`.
    pub fn subprotocol_not_acceptable() -> Self {
        Close::new(
            Self::SUBPROTOCOL_NOT_ACCEPTABLE,
            "Subprotocol not acceptable",
        )
    }

    /// 4408 `Connection initialisation timeout`.
    pub fn init_timeout() -> Self {
        Close::new(Self::INIT_TIMEOUT, "Connection initialisation timeout")
    }

    /// 4409 `Subscriber for <id> already exists`.
    pub fn subscriber_exists(id: &str) -> Self {
        Close::new(
            Self::SUBSCRIBER_EXISTS,
            format!("Subscriber for {id} already exists"),
        )
    }

    /// 4429 `Too many initialisation requests`.
    pub fn too_many_init() -> Self {
        Close::new(Self::TOO_MANY_INIT, "Too many initialisation requests")
    }

    /// The close code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The close reason, at most [`MAX_REASON_BYTES`] bytes.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The code and the owned reason, for handing to a WebSocket library.
    pub fn into_parts(self) -> (u16, String) {
        (self.code, self.reason)
    }
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

/// `reason` cut to at most [`MAX_REASON_BYTES`] bytes without splitting a character.
pub fn truncate_reason(reason: &str) -> &str {
    &reason[..truncated_len(reason)]
}

// Peers drop (or fail on) close frames whose payload exceeds 125 bytes, so an over-long
// reason would lose the code too.
fn truncated_len(reason: &str) -> usize {
    reason.floor_char_boundary(MAX_REASON_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_close_has_its_code_and_reason() {
        let cases = [
            (Close::normal(), 1000, ""),
            (Close::going_away(), 1001, "Server shutting down"),
            (Close::message_too_big(), 1009, "Message too big"),
            (
                Close::bad_request("Invalid message received"),
                4400,
                "Invalid message received",
            ),
            (Close::unauthorized(), 4401, "Unauthorized"),
            (Close::forbidden(), 4403, "Forbidden"),
            (
                Close::credentials_expired(),
                4403,
                "Forbidden: credentials expired",
            ),
            (
                Close::subprotocol_not_acceptable(),
                4406,
                "Subprotocol not acceptable",
            ),
            (
                Close::init_timeout(),
                4408,
                "Connection initialisation timeout",
            ),
            (
                Close::subscriber_exists("op-1"),
                4409,
                "Subscriber for op-1 already exists",
            ),
            (
                Close::too_many_init(),
                4429,
                "Too many initialisation requests",
            ),
        ];
        for (close, code, reason) in cases {
            assert_eq!((close.code(), close.reason()), (code, reason));
        }
        let slow = Close::slow_consumer();
        assert_eq!(slow.code(), 1013);
        assert!(slow.reason().contains("after") && slow.reason().len() <= MAX_REASON_BYTES);
    }

    #[test]
    fn reasons_are_truncated_to_123_bytes_on_a_char_boundary() {
        let cases: [(String, usize); 5] = [
            ("a".repeat(10), 10),
            ("a".repeat(123), 123),
            ("a".repeat(124), 123),
            // 2-byte chars: 61 fit in 122 bytes, the 62nd would end at 124.
            ("é".repeat(100), 122),
            // 4-byte char straddling the limit at bytes 120..124.
            (format!("{}🦀", "a".repeat(120)), 120),
        ];
        for (reason, want) in cases {
            let close = Close::new(4400, reason.clone());
            assert_eq!(close.reason().len(), want, "reason {reason:?}");
            assert!(reason.starts_with(close.reason()));
            assert_eq!(truncate_reason(&reason), close.reason());
        }
    }

    #[test]
    fn subscriber_exists_with_a_long_id_stays_within_the_limit() {
        let close = Close::subscriber_exists(&"x".repeat(500));
        assert_eq!(close.code(), 4409);
        assert_eq!(close.reason().len(), MAX_REASON_BYTES);
        assert!(close.reason().starts_with("Subscriber for xxx"));
    }
}
