//! One table per rule of graphql-transport-ws PROTOCOL.md and SPEC §6.

use serde_json::{Value, json};

use crate::test_util::{acked, close, object, run, start_frame, subscribe};
use crate::{
    Close, Closing, Connection, Incoming, InitState, KeepAlive, Subprotocol, graphql_error,
};

const P: Subprotocol = Subprotocol::GraphqlTransportWs;
const INIT: &str = r#"{"type":"connection_init"}"#;

fn sub(id: &str) -> String {
    start_frame("subscribe", id, "{ a }")
}

#[test]
fn init_is_reported_then_acked_with_optional_payload() {
    let payload = json!({"X-INFRAHUB-KEY": "secret", "headers": {"Authorization": "Bearer t"}});
    let cases = [
        (INIT.to_owned(), None, None, r#"{"type":"connection_ack"}"#),
        (
            r#"{"type":"connection_init","payload":null}"#.to_owned(),
            None,
            None,
            r#"{"type":"connection_ack"}"#,
        ),
        (
            format!(r#"{{"type":"connection_init","payload":{payload}}}"#),
            Some(object(payload.clone())),
            Some(object(json!({"v": 1}))),
            r#"{"type":"connection_ack","payload":{"v":1}}"#,
        ),
    ];
    for (frame, want_payload, ack_payload, want_ack) in cases {
        let mut conn = Connection::new(P);
        assert!(conn.init_pending());
        assert_eq!(
            conn.on_text(&frame),
            Incoming::Init {
                payload: want_payload
            }
        );
        assert_eq!(conn.state(), InitState::Deciding);
        assert!(conn.init_pending() && !conn.is_acknowledged());
        assert_eq!(
            conn.accept_init(ack_payload.as_ref()),
            vec![want_ack.to_owned()]
        );
        assert!(conn.is_acknowledged() && !conn.init_pending());
        // A second accept has nothing to send: only one ack per connection.
        assert!(conn.accept_init(None).is_empty());
    }
}

#[test]
fn second_init_closes_4429() {
    let too_many = || close(4429, "Too many initialisation requests");
    // While the server is still deciding, and after the ack.
    run(
        Connection::new(P),
        &[(INIT, Incoming::Init { payload: None }), (INIT, too_many())],
    );
    let conn = run(acked(P), &[(INIT, too_many())]);
    assert!(conn.is_closed());
}

#[test]
fn rejected_credentials_close_4403_forbidden_without_a_frame() {
    let mut conn = run(
        Connection::new(P),
        &[(INIT, Incoming::Init { payload: None })],
    );
    assert_eq!(
        conn.reject_init(),
        Closing {
            frame: None,
            close: Close::forbidden()
        }
    );
    assert!(conn.is_closed());
    assert_eq!(conn.on_text(&sub("1")), Incoming::Ignore);
}

#[test]
fn expired_credentials_close_4403_credentials_expired() {
    let mut conn = run(acked(P), &[(&sub("1"), subscribe("1", "{ a }", false))]);
    let closing = conn.credentials_expired();
    assert_eq!(closing.frame, None);
    assert_eq!(
        (closing.close.code(), closing.close.reason()),
        (4403, "Forbidden: credentials expired")
    );
    assert!(!conn.is_active("1") && conn.is_closed());
}

#[test]
fn subscribe_before_ack_closes_4401() {
    let unauthorized = || close(4401, "Unauthorized");
    // No init at all, and init received but not yet accepted.
    run(Connection::new(P), &[(&sub("1"), unauthorized())]);
    run(
        Connection::new(P),
        &[
            (INIT, Incoming::Init { payload: None }),
            (&sub("1"), unauthorized()),
        ],
    );
}

#[test]
fn subscribe_with_an_active_id_closes_4409() {
    run(
        acked(P),
        &[
            (&sub("a"), subscribe("a", "{ a }", false)),
            (&sub("b"), subscribe("b", "{ a }", false)),
            (&sub("a"), close(4409, "Subscriber for a already exists")),
        ],
    );
}

#[test]
fn an_id_is_reusable_once_its_operation_ended() {
    let mut conn = acked(P);
    let ends: [fn(&mut Connection); 3] = [
        |c| {
            assert!(matches!(
                c.on_text(r#"{"type":"complete","id":"x"}"#),
                Incoming::Stop { .. }
            ))
        },
        |c| assert!(c.complete_operation("x").is_some()),
        |c| {
            assert!(
                c.fail_operation("x", &[graphql_error("bad", None)])
                    .is_some()
            )
        },
    ];
    for end in ends {
        assert_eq!(conn.on_text(&sub("x")), subscribe("x", "{ a }", false));
        assert!(conn.is_active("x"));
        end(&mut conn);
        assert!(!conn.is_active("x"));
    }
}

#[test]
fn invalid_messages_close_4400_with_a_reason() {
    let cases = [
        ("{not json", "malformed JSON"),
        ("[]", "expected a JSON object"),
        (r#"{"id":"1"}"#, "missing 'type'"),
        (r#"{"type":7}"#, "'type' must be a string"),
        (r#"{"type":"start","id":"1"}"#, "unknown type \"start\""),
        (
            r#"{"type":"next","id":"1","payload":{}}"#,
            "unknown type \"next\"",
        ),
        (
            r#"{"type":"connection_ack"}"#,
            "unknown type \"connection_ack\"",
        ),
        (
            r#"{"type":"subscribe","payload":{"query":"{a}"}}"#,
            "\"subscribe\" message requires a non-empty string 'id'",
        ),
        (
            r#"{"type":"subscribe","id":1,"payload":{"query":"{a}"}}"#,
            "\"subscribe\" message requires a non-empty string 'id'",
        ),
        (
            r#"{"type":"subscribe","id":"","payload":{"query":"{a}"}}"#,
            "\"subscribe\" message requires a non-empty string 'id'",
        ),
        (
            r#"{"type":"subscribe","id":"1"}"#,
            "\"subscribe\" message expects 'payload' to be an object",
        ),
        (
            r#"{"type":"subscribe","id":"1","payload":{}}"#,
            "'payload.query' must be a string",
        ),
        (
            r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":1}}"#,
            "'payload.variables' must be an object or null",
        ),
        (
            r#"{"type":"complete"}"#,
            "\"complete\" message requires a non-empty string 'id'",
        ),
        (
            r#"{"type":"ping","payload":"x"}"#,
            "\"ping\" message expects 'payload' to be an object or null",
        ),
        (
            r#"{"type":"pong","payload":[1]}"#,
            "\"pong\" message expects 'payload' to be an object or null",
        ),
    ];
    for (frame, detail) in cases {
        let mut conn = acked(P);
        let want = close(4400, &format!("Invalid message received: {detail}"));
        assert_eq!(conn.on_text(frame), want, "frame {frame}");
        assert!(conn.is_closed());
        assert_eq!(conn.on_text(&sub("later")), Incoming::Ignore);
    }
    // An init with a non-object payload is invalid too (checked before the 4429 rule).
    let mut conn = Connection::new(P);
    let reply = conn.on_text(r#"{"type":"connection_init","payload":"token"}"#);
    assert!(matches!(reply, Incoming::Close(c) if c.code() == 4400));
}

#[test]
fn binary_frames_close_4400() {
    let mut conn = acked(P);
    assert!(matches!(conn.on_binary(), Incoming::Close(c) if c.code() == 4400));
    assert_eq!(conn.on_binary(), Incoming::Ignore);
}

#[test]
fn ping_is_answered_by_pong_echoing_the_payload_at_any_time() {
    let cases = [
        (r#"{"type":"ping"}"#, r#"{"type":"pong"}"#),
        (r#"{"type":"ping","payload":null}"#, r#"{"type":"pong"}"#),
        (
            r#"{"type":"ping","payload":{}}"#,
            r#"{"type":"pong","payload":{}}"#,
        ),
        // Byte-for-byte: key order and number text survive.
        (
            r#"{"payload":{"z":1,"a":123456789012345678901234567890},"type":"ping"}"#,
            r#"{"type":"pong","payload":{"z":1,"a":123456789012345678901234567890}}"#,
        ),
    ];
    for (ping, pong) in cases {
        for mut conn in [Connection::new(P), acked(P)] {
            assert_eq!(
                conn.on_text(ping),
                Incoming::Reply(pong.to_owned()),
                "{ping}"
            );
        }
    }
}

#[test]
fn pong_is_ignored() {
    for pong in [r#"{"type":"pong"}"#, r#"{"type":"pong","payload":{"t":1}}"#] {
        for mut conn in [Connection::new(P), acked(P)] {
            assert_eq!(conn.on_text(pong), Incoming::Ignore);
        }
    }
}

#[test]
fn client_complete_stops_the_operation_without_an_echo() {
    let mut conn = run(
        acked(P),
        &[
            (&sub("1"), subscribe("1", "{ a }", false)),
            (
                r#"{"type":"complete","id":"1"}"#,
                Incoming::Stop {
                    id: "1".to_owned(),
                    reply: None,
                },
            ),
            // Unknown or already completed ids are ignored.
            (r#"{"type":"complete","id":"1"}"#, Incoming::Ignore),
            (r#"{"type":"complete","id":"never"}"#, Incoming::Ignore),
        ],
    );
    // The server's own end of the stream must not send `complete` after the client's.
    assert_eq!(conn.complete_operation("1"), None);
    assert!(!conn.is_active("1"));
}

#[test]
fn server_complete_is_sent_once() {
    let mut conn = run(acked(P), &[(&sub("q"), subscribe("q", "{ a }", false))]);
    assert_eq!(
        conn.complete_operation("q").as_deref(),
        Some(r#"{"type":"complete","id":"q"}"#)
    );
    assert_eq!(conn.complete_operation("q"), None);
}

#[test]
fn error_payload_is_an_array_and_no_complete_follows() {
    let mut conn = run(acked(P), &[(&sub("e"), subscribe("e", "{ a }", false))]);
    let errors = [graphql_error(
        "Too many subscriptions",
        Some("TOO_MANY_SUBSCRIPTIONS"),
    )];
    let frame = conn.fail_operation("e", &errors).expect("active operation");
    let value: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(
        value,
        json!({"type": "error", "id": "e", "payload": [errors[0]]})
    );
    assert_eq!(
        conn.complete_operation("e"),
        None,
        "no complete after error"
    );
    assert_eq!(conn.fail_operation("e", &errors), None);
}

#[test]
fn subscribe_payload_fields_are_passed_through() {
    let mut conn = acked(P);
    let frame = r#"{"type":"subscribe","id":"s","payload":{"query":"subscription { events { id } }",
        "variables":{"branch":"main"},"operationName":"Tail","extensions":{"trace":true}}}"#;
    let Incoming::Subscribe {
        id,
        payload,
        implicit_init,
    } = conn.on_text(frame)
    else {
        panic!("expected a subscribe");
    };
    assert_eq!((id.as_str(), implicit_init), ("s", false));
    assert_eq!(payload.query, "subscription { events { id } }");
    assert_eq!(payload.variables, Some(object(json!({"branch": "main"}))));
    assert_eq!(payload.operation_name.as_deref(), Some("Tail"));
    assert_eq!(payload.extensions, Some(object(json!({"trace": true}))));
}

#[test]
fn next_frames_use_the_next_type() {
    let conn = acked(P);
    assert_eq!(
        conn.frame_prefix("1").frame(r#"{"data":{"a":1}}"#),
        r#"{"type":"next","id":"1","payload":{"data":{"a":1}}}"#
    );
}

#[test]
fn init_timeout_closes_4408_only_while_nothing_was_received() {
    let mut fresh = Connection::new(P);
    assert_eq!(fresh.init_timeout(), Some(Close::init_timeout()));
    assert_eq!(Close::init_timeout().code(), 4408);
    assert!(fresh.is_closed());

    let mut deciding = run(
        Connection::new(P),
        &[(INIT, Incoming::Init { payload: None })],
    );
    assert_eq!(deciding.init_timeout(), None);
    assert_eq!(acked(P).init_timeout(), None);
}

#[test]
fn keep_alive_is_a_ping_frame_and_only_after_the_ack() {
    let mut conn = Connection::new(P);
    assert_eq!(conn.keep_alive(), KeepAlive::Nothing);
    conn.on_text(INIT);
    assert_eq!(conn.keep_alive(), KeepAlive::Nothing);
    conn.accept_init(None);
    assert_eq!(conn.keep_alive(), KeepAlive::PingFrame);
    assert_eq!(conn.keep_alive_frame(), None, "no protocol message");
    conn.shutdown();
    assert_eq!(conn.keep_alive(), KeepAlive::Nothing);
}

#[test]
fn shutdown_closes_1001_and_ignores_later_frames() {
    let mut conn = acked(P);
    assert_eq!(conn.shutdown().code(), 1001);
    assert_eq!(conn.on_text(&sub("1")), Incoming::Ignore);
}
