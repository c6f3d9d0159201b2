//! Property tests over arbitrary input, for both subprotocols: random bytes and random frame
//! sequences through the RFC 6455 [`Decoder`], and random message sequences (valid, invalid,
//! huge ids, interleaved control messages) through the [`Connection`] state machine, driven
//! the way the server drives it. Asserted for every case: no panic; every close code is one the
//! protocol allows for that input; everything the server would send is protocol JSON of an
//! allowed type, with nothing before `connection_ack` but the protocol's own refusals; nothing
//! is answered after a close. A fixed seed list keeps failures reproducible; set
//! `PROTOCOL_FUZZ_CASES` to run more.

use infrastream_protocol::{
    Close, Connection, Decoder, Incoming, InitState, Subprotocol, WireMessage, client_frame,
    graphql_error,
};
use infrastream_testkit::Rng;
use serde_json::Value;

fn cases() -> u64 {
    std::env::var("PROTOCOL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn masked(first: u8, payload: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mask = rng.bytes(4).try_into().unwrap();
    client_frame(first, payload, Some(mask))
}

/// Feeds `bytes` in random chunks; returns the messages and the error, if any.
fn decode(bytes: &[u8], max: usize, rng: &mut Rng) -> (Vec<WireMessage>, Option<Close>) {
    let mut d = Decoder::new(max);
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = 1 + rng.below(64).min(bytes.len() - at - 1);
        d.extend(&bytes[at..at + n]);
        at += n;
        loop {
            match d.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(c) => return (out, Some(c)),
            }
        }
    }
    (out, None)
}

#[test]
fn decoder_survives_arbitrary_bytes() {
    let allowed = [
        Close::PROTOCOL_ERROR,
        Close::INVALID_PAYLOAD,
        Close::MESSAGE_TOO_BIG,
    ];
    for seed in 1..=cases() {
        let mut rng = Rng(seed);
        let len = rng.below(512);
        let bytes = rng.bytes(len);
        let (_, err) = decode(&bytes, 256, &mut rng);
        if let Some(c) = err {
            assert!(allowed.contains(&c.code()), "seed {seed}: {c}");
        }
    }
}

#[test]
fn decoder_agrees_with_a_model_of_random_frame_sequences() {
    for seed in 1..=cases() {
        let mut rng = Rng(seed);
        let max = 64 + rng.below(200);
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        let mut expected_error = None;
        for _ in 0..1 + rng.below(6) {
            let kind = rng.below(6);
            let len = rng.below(max + 40);
            let payload: Vec<u8> = match kind {
                // Valid text; invalid UTF-8 text; binary.
                0 => (0..len).map(|i| b'a' + (i % 26) as u8).collect(),
                1 => {
                    let mut p = vec![b'x'; len.max(1)];
                    p[rng.below(len.max(1))] = 0xff;
                    p
                }
                2 => rng.bytes(len),
                _ => Vec::new(),
            };
            match kind {
                0..=2 => {
                    // Fragmented, with a ping between fragments.
                    let pieces = 1 + rng.below(3);
                    let chunk = payload.len().div_ceil(pieces).max(1);
                    let parts: Vec<&[u8]> = if payload.is_empty() {
                        vec![&[]]
                    } else {
                        payload.chunks(chunk).collect()
                    };
                    let opcode = if kind == 2 { 0x2 } else { 0x1 };
                    let mut pings = Vec::new();
                    for (i, part) in parts.iter().enumerate() {
                        let fin = if i + 1 == parts.len() { 0x80 } else { 0 };
                        let op = if i == 0 { opcode } else { 0 };
                        bytes.extend(masked(fin | op, part, &mut rng));
                        if i + 1 < parts.len() && rng.below(2) == 0 {
                            bytes.extend(masked(0x89, b"p", &mut rng));
                            pings.push(WireMessage::Ping(b"p".to_vec()));
                        }
                    }
                    if expected_error.is_some() {
                        continue;
                    }
                    if payload.len() > max {
                        // The limit is checked frame by frame: pings before the frame that
                        // crosses it may still be decoded; compare only up to the error.
                        expected_error = Some(Close::MESSAGE_TOO_BIG);
                        continue;
                    }
                    expected.extend(pings);
                    match kind {
                        0 => expected.push(WireMessage::Text(
                            String::from_utf8(payload.clone()).unwrap(),
                        )),
                        1 => expected_error = Some(Close::INVALID_PAYLOAD),
                        _ => expected.push(WireMessage::Binary),
                    }
                }
                3 => {
                    bytes.extend(masked(0x89, &payload[..0], &mut rng));
                    if expected_error.is_none() {
                        expected.push(WireMessage::Ping(Vec::new()));
                    }
                }
                4 => {
                    bytes.extend(masked(0x8A, b"", &mut rng));
                    if expected_error.is_none() {
                        expected.push(WireMessage::Pong);
                    }
                }
                _ => {
                    bytes.extend(masked(0x88, &1000u16.to_be_bytes(), &mut rng));
                    if expected_error.is_none() {
                        expected.push(WireMessage::Close(Some(1000)));
                    }
                }
            }
        }
        let (got, err) = decode(&bytes, max, &mut rng);
        match expected_error {
            None => {
                assert_eq!(err, None, "seed {seed}");
                assert_eq!(got, expected, "seed {seed}");
            }
            Some(code) => {
                assert_eq!(err.map(|c| c.code()), Some(code), "seed {seed}");
                assert!(got.len() <= expected.len() + 3, "seed {seed}");
            }
        }
    }
}

fn random_message(rng: &mut Rng) -> String {
    let id = match rng.below(5) {
        0 => "\"1\"".to_owned(),
        1 => "\"2\"".to_owned(),
        2 => format!("\"{}\"", "i".repeat(rng.below(100_000))),
        3 => "7".to_owned(),
        _ => "\"\\ud83d\\ude00 é\"".to_owned(),
    };
    let query = r#"{"query":"subscription { events { id } }"}"#;
    match rng.below(16) {
        0 => r#"{"type":"connection_init"}"#.to_owned(),
        1 => r#"{"type":"connection_init","payload":{"X-INFRAHUB-KEY":"t"}}"#.to_owned(),
        2 => format!(r#"{{"type":"subscribe","id":{id},"payload":{query}}}"#),
        3 => format!(r#"{{"type":"start","id":{id},"payload":{query}}}"#),
        4 => format!(r#"{{"type":"complete","id":{id}}}"#),
        5 => format!(r#"{{"type":"stop","id":{id}}}"#),
        6 => r#"{"type":"ping","payload":{"a":[1,2]}}"#.to_owned(),
        7 => r#"{"type":"pong"}"#.to_owned(),
        8 => r#"{"type":"connection_terminate"}"#.to_owned(),
        9 => "not json".to_owned(),
        10 => "[1,2,3]".to_owned(),
        11 => format!(
            "{}{}",
            "[".repeat(rng.below(300)),
            "]".repeat(rng.below(300))
        ),
        12 => r#"{"type":"subscribe","id":"1"}"#.to_owned(),
        13 => r#"{"type":"unknown","id":"1"}"#.to_owned(),
        14 => String::new(),
        _ => format!(r#"{{"type":"subscribe","id":{id},"payload":{{"query":5}}}}"#),
    }
}

/// Frames the server may send, by protocol.
fn allowed_type(protocol: Subprotocol, t: &str) -> bool {
    match protocol {
        Subprotocol::GraphqlTransportWs => {
            matches!(
                t,
                "connection_ack" | "next" | "error" | "complete" | "ping" | "pong"
            )
        }
        Subprotocol::GraphqlWs => matches!(
            t,
            "connection_ack" | "ka" | "data" | "error" | "complete" | "connection_error"
        ),
    }
}

fn allowed_close(protocol: Subprotocol, code: u16) -> bool {
    let common = [Close::NORMAL, Close::FORBIDDEN, Close::GOING_AWAY];
    let transport = [
        Close::BAD_REQUEST,
        Close::UNAUTHORIZED,
        Close::SUBSCRIBER_EXISTS,
        Close::TOO_MANY_INIT,
        Close::INIT_TIMEOUT,
    ];
    common.contains(&code)
        || (protocol == Subprotocol::GraphqlTransportWs && transport.contains(&code))
        || (protocol == Subprotocol::GraphqlWs && code == Close::BAD_REQUEST)
}

#[test]
fn connection_never_answers_out_of_protocol() {
    for seed in 1..=cases() {
        let mut rng = Rng(seed);
        for protocol in [Subprotocol::GraphqlTransportWs, Subprotocol::GraphqlWs] {
            let mut conn = Connection::new(protocol);
            let mut sent: Vec<String> = Vec::new();
            let mut closed = false;
            for _ in 0..1 + rng.below(12) {
                let incoming = if rng.below(10) == 0 {
                    conn.on_binary()
                } else {
                    conn.on_text(&random_message(&mut rng))
                };
                if closed {
                    assert_eq!(
                        incoming,
                        Incoming::Ignore,
                        "seed {seed}: answered after close"
                    );
                    continue;
                }
                match incoming {
                    Incoming::Init { .. } => {
                        // The server accepts or refuses the credentials at random.
                        if rng.below(4) == 0 {
                            let closing = conn.reject_init();
                            sent.extend(closing.frame);
                            assert!(allowed_close(protocol, closing.close.code()));
                            closed = true;
                        } else {
                            sent.extend(conn.accept_init(None));
                        }
                    }
                    Incoming::Subscribe { id, .. } => {
                        assert!(conn.is_active(&id), "seed {seed}");
                        match rng.below(3) {
                            0 => sent.push(conn.frame_prefix(&id).frame(r#"{"data":{}}"#)),
                            1 => sent.extend(conn.complete_operation(&id)),
                            _ => sent.extend(
                                conn.fail_operation(&id, &[graphql_error("no", Some("X"))]),
                            ),
                        }
                    }
                    Incoming::Stop { reply, .. } => sent.extend(reply),
                    Incoming::Reply(frame) => sent.push(frame),
                    Incoming::Ignore => {}
                    Incoming::Close(c) => {
                        assert!(allowed_close(protocol, c.code()), "seed {seed}: {c}");
                        assert!(c.reason().len() <= 123, "seed {seed}");
                        closed = true;
                    }
                }
                if !closed && let Some(ka) = conn.keep_alive_frame() {
                    sent.push(ka.to_owned());
                }
            }
            for (i, frame) in sent.iter().enumerate() {
                let v: Value = serde_json::from_str(frame)
                    .unwrap_or_else(|e| panic!("seed {seed}: invalid JSON {frame}: {e}"));
                let t = v["type"].as_str().unwrap_or("");
                assert!(allowed_type(protocol, t), "seed {seed}: {frame}");
                if i == 0 && protocol == Subprotocol::GraphqlTransportWs {
                    assert!(
                        matches!(t, "connection_ack" | "pong"),
                        "seed {seed}: first frame {frame}"
                    );
                }
            }
            if closed {
                assert_eq!(conn.state(), InitState::Closed, "seed {seed}");
            }
        }
    }
}
