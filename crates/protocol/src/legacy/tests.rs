//! One table per rule of subscriptions-transport-ws PROTOCOL.md and SPEC §6.

use serde_json::{Value, json};

use crate::test_util::{acked, close, object, run, start_frame, subscribe};
use crate::{Close, Closing, Connection, Incoming, InitState, Subprotocol, graphql_error};

const P: Subprotocol = Subprotocol::GraphqlWs;
const INIT: &str = r#"{"type":"connection_init","payload":{}}"#;
const ACK: &str = r#"{"type":"connection_ack"}"#;
const KA: &str = r#"{"type":"ka"}"#;

fn start(id: &str) -> String {
    start_frame("start", id, "{ a }")
}

fn stop(id: &str) -> String {
    format!(r#"{{"type":"stop","id":"{id}"}}"#)
}

fn complete(id: &str) -> String {
    format!(r#"{{"type":"complete","id":"{id}"}}"#)
}

fn connection_error(message: &str) -> Incoming {
    Incoming::Reply(crate::connection_error(message))
}

fn op_error(id: &str, message: &str) -> Incoming {
    let error = graphql_error(message, None);
    Incoming::Reply(crate::error_frame(P, id, &[error]))
}

#[test]
fn init_is_acked_then_kept_alive_with_ka() {
    let mut conn = Connection::new(P);
    let payload = json!({"authToken": "t"});
    let frame = format!(r#"{{"type":"connection_init","payload":{payload}}}"#);
    assert_eq!(
        conn.on_text(&frame),
        Incoming::Init {
            payload: Some(object(payload))
        }
    );
    assert_eq!(conn.keep_alive_frame(), None, "no ka before the ack");
    // The legacy ack carries no payload even when the server offers one.
    let ack_payload = object(json!({"ignored": true}));
    assert_eq!(
        conn.accept_init(Some(&ack_payload)),
        vec![ACK.to_owned(), KA.to_owned()]
    );
    assert_eq!(conn.keep_alive_frame(), Some(KA));
}

#[test]
fn start_stop_complete() {
    let mut conn = run(
        acked(P),
        &[
            (&start("1"), subscribe("1", "{ a }", false)),
            (
                &stop("1"),
                Incoming::Stop {
                    id: "1".to_owned(),
                    reply: Some(complete("1")),
                },
            ),
            // A `complete` after every `stop`, even for an operation that already ended.
            (&stop("1"), Incoming::Reply(complete("1"))),
            (&stop("unknown"), Incoming::Reply(complete("unknown"))),
            (&start("1"), subscribe("1", "{ a }", false)),
        ],
    );
    // The server ending a stream on its own sends `complete` once.
    assert_eq!(conn.complete_operation("1"), Some(complete("1")));
    assert_eq!(conn.complete_operation("1"), None);
}

#[test]
fn data_frames_use_the_data_type() {
    let conn = acked(P);
    assert_eq!(
        conn.frame_prefix("1").frame(r#"{"data":{"a":1}}"#),
        r#"{"type":"data","id":"1","payload":{"data":{"a":1}}}"#
    );
}

#[test]
fn error_payload_is_a_single_object_and_no_complete_follows() {
    let mut conn = run(acked(P), &[(&start("e"), subscribe("e", "{ a }", false))]);
    let errors = [
        graphql_error("Unknown saved query", Some("NOT_FOUND")),
        graphql_error("x", None),
    ];
    let frame = conn.fail_operation("e", &errors).expect("active operation");
    let value: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(
        value,
        json!({"type": "error", "id": "e", "payload": errors[0]})
    );
    assert_eq!(conn.complete_operation("e"), None);
}

#[test]
fn connection_terminate_closes_normally() {
    let conn = run(
        acked(P),
        &[
            (&start("1"), subscribe("1", "{ a }", false)),
            (r#"{"type":"connection_terminate"}"#, close(1000, "")),
            (&start("2"), Incoming::Ignore),
        ],
    );
    assert!(conn.is_closed() && conn.active_count() == 0);
}

#[test]
fn start_without_init_opens_an_implicit_anonymous_session() {
    let mut conn = run(
        Connection::new(P),
        &[
            (&start("1"), subscribe("1", "{ a }", true)),
            (&start("2"), subscribe("2", "{ a }", false)),
            (INIT, connection_error("Too many initialisation requests")),
        ],
    );
    assert_eq!(conn.state(), InitState::Implicit);
    assert!(conn.is_acknowledged());
    assert_eq!(conn.keep_alive_frame(), Some(KA));
    assert_eq!(conn.init_timeout(), None);
    // A stop before any init does not open a session.
    let mut fresh = run(
        Connection::new(P),
        &[(&stop("9"), Incoming::Reply(complete("9")))],
    );
    assert_eq!(fresh.state(), InitState::Waiting);
    assert_eq!(fresh.init_timeout(), Some(Close::init_timeout()));
}

#[test]
fn anonymous_policy_rejects_an_implicit_session() {
    let mut conn = run(
        Connection::new(P),
        &[(&start("1"), subscribe("1", "{ a }", true))],
    );
    let closing = conn.reject_init();
    assert_eq!(
        closing,
        Closing {
            frame: Some(
                r#"{"type":"connection_error","payload":{"message":"Forbidden"}}"#.to_owned()
            ),
            close: Close::forbidden(),
        }
    );
    assert!(!conn.is_active("1") && conn.is_closed());
}

#[test]
fn rejected_credentials_send_connection_error_then_close() {
    let mut conn = run(
        Connection::new(P),
        &[(
            INIT,
            Incoming::Init {
                payload: Some(object(json!({}))),
            },
        )],
    );
    let closing = conn.reject_init();
    assert_eq!(closing.frame, Some(crate::connection_error("Forbidden")));
    assert_eq!(closing.close.code(), 4403);
    assert_eq!(conn.on_text(&start("1")), Incoming::Ignore);
}

#[test]
fn expired_credentials_send_connection_error_then_close() {
    let mut conn = run(acked(P), &[(&start("1"), subscribe("1", "{ a }", false))]);
    let closing = conn.credentials_expired();
    assert_eq!(
        closing.frame,
        Some(crate::connection_error("Forbidden: credentials expired"))
    );
    assert_eq!(closing.close, Close::credentials_expired());
}

#[test]
fn bad_input_gets_an_error_reply_and_the_socket_stays_open() {
    let invalid = |detail: &str| format!("Invalid message received: {detail}");
    let cases = [
        ("nope", connection_error(&invalid("malformed JSON"))),
        ("42", connection_error(&invalid("expected a JSON object"))),
        (
            r#"{"id":"1"}"#,
            connection_error(&invalid("missing 'type'")),
        ),
        (
            r#"{"type":"subscribe"}"#,
            connection_error(&invalid("unknown type \"subscribe\"")),
        ),
        (
            r#"{"type":"ping","id":"3"}"#,
            op_error("3", &invalid("unknown type \"ping\"")),
        ),
        (
            r#"{"type":"start","payload":{"query":"{a}"}}"#,
            connection_error(&invalid(
                "\"start\" message requires a non-empty string 'id'",
            )),
        ),
        (
            r#"{"type":"start","id":"4"}"#,
            op_error(
                "4",
                &invalid("\"start\" message expects 'payload' to be an object"),
            ),
        ),
        (
            r#"{"type":"start","id":"5","payload":{"query":null}}"#,
            op_error("5", &invalid("'payload.query' must be a string")),
        ),
        (
            r#"{"type":"stop","id":7}"#,
            connection_error(&invalid(
                "\"stop\" message requires a non-empty string 'id'",
            )),
        ),
        (
            r#"{"type":"connection_init","payload":"x"}"#,
            connection_error(&invalid(
                "\"connection_init\" message expects 'payload' to be an object or null",
            )),
        ),
    ];
    for (frame, want) in cases {
        for conn in [Connection::new(P), acked(P)] {
            let state = conn.state();
            let mut conn = run(conn, &[(frame, want.clone())]);
            assert_eq!(conn.state(), state, "bad input changes nothing: {frame}");
            assert!(matches!(
                conn.on_text(&start("ok")),
                Incoming::Subscribe { .. }
            ));
        }
    }
}

#[test]
fn binary_frames_get_a_connection_error() {
    let mut conn = acked(P);
    assert_eq!(
        conn.on_binary(),
        connection_error("Invalid message received: binary frames are not supported")
    );
    assert!(!conn.is_closed());
}

#[test]
fn start_with_an_active_id_is_refused_and_the_running_one_kept() {
    let conn = run(
        acked(P),
        &[
            (&start("1"), subscribe("1", "{ a }", false)),
            (
                &start("1"),
                op_error("1", "Subscriber for 1 already exists"),
            ),
        ],
    );
    assert!(conn.is_active("1") && conn.active_count() == 1);
}

#[test]
fn start_while_the_init_is_being_decided_is_refused() {
    let conn = run(
        Connection::new(P),
        &[
            (
                INIT,
                Incoming::Init {
                    payload: Some(object(json!({}))),
                },
            ),
            (
                &start("1"),
                op_error("1", "Connection initialisation in progress"),
            ),
        ],
    );
    assert_eq!(conn.active_count(), 0);
}

#[test]
fn init_timeout_closes_4408_when_nothing_arrived() {
    let mut conn = Connection::new(P);
    assert_eq!(conn.init_timeout().map(|c| c.code()), Some(4408));
    assert_eq!(conn.on_text(INIT), Incoming::Ignore);
    assert_eq!(acked(P).init_timeout(), None);
}
