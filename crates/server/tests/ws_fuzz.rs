//! The WebSocket session fuzzed through a real server: random sequences of frames — valid and
//! broken framing, invalid UTF-8, binary frames, huge ids, fragments with control frames in
//! between, protocol messages in any order — on both subprotocols, over raw TCP. For every
//! session: everything the server sends is well-framed protocol JSON of an allowed type, its
//! close code is one the input allows, and the server keeps serving afterwards. The number of
//! sessions is bounded (`WS_FUZZ_SESSIONS`, default 150).

use infrastream_protocol::client_frame;
use infrastream_testkit::{ADMIN_TOKEN, Rng, TestServer};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    client_frame(first, payload, masked.then_some([7, 1, 3, 9]))
}

fn random_frame(rng: &mut Rng) -> Vec<u8> {
    let id = match rng.below(4) {
        0 => "1".to_owned(),
        1 => "i".repeat(rng.below(20_000)),
        2 => "x\u{e9}".to_owned(),
        _ => "2".to_owned(),
    };
    let init =
        format!(r#"{{"type":"connection_init","payload":{{"X-INFRAHUB-KEY":"{ADMIN_TOKEN}"}}}}"#);
    let sub = format!(
        r#"{{"type":"subscribe","id":"{id}","payload":{{"query":"subscription {{ events {{ id }} }}"}}}}"#
    );
    let text = match rng.below(12) {
        0 | 1 => init,
        2 | 3 => sub,
        4 => sub.replace("subscribe", "start"),
        5 => format!(r#"{{"type":"complete","id":"{id}"}}"#),
        6 => format!(r#"{{"type":"stop","id":"{id}"}}"#),
        7 => r#"{"type":"ping"}"#.to_owned(),
        8 => r#"{"type":"query"}"#.to_owned(),
        9 => r#"{"type":"subscribe","id":"q","payload":{"query":"{ InfrahubInfo { version } }"}}"#
            .to_owned(),
        10 => "{not json".to_owned(),
        _ => r#"{"type":"connection_terminate"}"#.to_owned(),
    };
    match rng.below(14) {
        0 => frame(0x82, b"\x01\x02", true),
        1 => frame(0x81, &[b'{', 0xff, 0xfe, b'}'], true),
        2 => frame(0x81, text.as_bytes(), false),
        3 => frame(0x89, b"hi", true),
        4 => frame(0xC1, b"x", true),
        5 => {
            let (a, b) = text.as_bytes().split_at(text.len() / 2);
            let mut f = frame(0x01, a, true);
            f.extend(frame(0x8A, b"", true));
            f.extend(frame(0x80, b, true));
            f
        }
        _ => frame(0x81, text.as_bytes(), true),
    }
}

/// Reads server frames until the server closes (its close code) or goes quiet.
async fn server_frames(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> (Vec<(u8, Vec<u8>)>, bool) {
    let mut frames = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        // Parse whole frames from the buffer.
        while buf.len() >= 2 {
            assert_eq!(buf[1] & 0x80, 0, "server frames are never masked");
            let (len, at) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < at + len {
                break;
            }
            assert_eq!(buf[0] & 0x80, 0x80, "server frames are final");
            frames.push((buf[0] & 0x0f, buf[at..at + len].to_vec()));
            buf.drain(..at + len);
        }
        if frames.iter().any(|(op, _)| *op == 0x8) {
            return (frames, true);
        }
        match tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (frames, false),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (frames, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_frame_sequences_get_protocol_answers_and_allowed_close_codes() {
    let s = TestServer::start_with(&[("ws_max_message_bytes", "16384")]).await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    let sessions: u64 = std::env::var("WS_FUZZ_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let transport_codes = [1000, 1002, 1007, 1009, 4400, 4401, 4403, 4409, 4429];
    let legacy_codes = [1000, 1002, 1007, 1009, 4400, 4403];
    for seed in 1..=sessions {
        let mut rng = Rng(seed);
        let legacy = rng.below(2) == 0;
        let protocol = if legacy {
            "graphql-ws"
        } else {
            "graphql-transport-ws"
        };
        let (mut tcp, mut buf) = raw_socket(&addr, protocol).await;
        let mut bytes = Vec::new();
        for _ in 0..1 + rng.below(8) {
            bytes.extend(random_frame(&mut rng));
        }
        // Ask for a clean end; a server that closed already just drops it.
        bytes.extend(frame(0x88, &1000u16.to_be_bytes(), true));
        let _ = tcp.write_all(&bytes).await;
        let (frames, closed) = server_frames(&mut tcp, &mut buf).await;
        assert!(closed, "seed {seed}: the server answers with a close frame");
        for (i, (op, payload)) in frames.iter().enumerate() {
            match op {
                0x1 => {
                    let v: serde_json::Value = serde_json::from_slice(payload)
                        .unwrap_or_else(|e| panic!("seed {seed}: not JSON ({e})"));
                    let t = v["type"].as_str().unwrap_or_default();
                    let allowed: &[&str] = if legacy {
                        &[
                            "connection_ack",
                            "ka",
                            "data",
                            "error",
                            "complete",
                            "connection_error",
                        ]
                    } else {
                        &[
                            "connection_ack",
                            "next",
                            "error",
                            "complete",
                            "ping",
                            "pong",
                        ]
                    };
                    assert!(allowed.contains(&t), "seed {seed}: {v}");
                }
                0x8 => {
                    assert_eq!(i, frames.len() - 1, "seed {seed}: nothing after close");
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    let codes: &[u16] = if legacy {
                        &legacy_codes
                    } else {
                        &transport_codes
                    };
                    assert!(codes.contains(&code), "seed {seed}: close {code}");
                }
                0x9 | 0xA => {}
                other => panic!("seed {seed}: opcode {other}"),
            }
        }
    }
    // Still serving.
    let info = s
        .admin("{ InfrahubInfo { version } }", serde_json::json!({}))
        .await;
    assert!(info["InfrahubInfo"]["version"].is_string());
    s.shutdown().await;
}

/// Opens a raw WebSocket speaking `protocol`; returns the stream and what followed the 101
/// answer.
async fn raw_socket(addr: &str, protocol: &str) -> (TcpStream, Vec<u8>) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let handshake = format!(
        "GET /graphql HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(
        buf.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    buf.drain(..end + 4);
    (tcp, buf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_invalid_frames_get_their_close_codes() {
    let s = TestServer::start_with(&[("ws_max_message_bytes", "1024")]).await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "message over ws_max_message_bytes",
            frame(0x81, &[b' '; 2000], true),
            1009,
        ),
        (
            "fragments adding up to more",
            [
                frame(0x01, &[b' '; 600], true),
                frame(0x80, &[b' '; 600], true),
            ]
            .concat(),
            1009,
        ),
        ("invalid UTF-8", frame(0x81, &[0xc3, 0x28], true), 1007),
        ("unmasked client frame", frame(0x81, b"{}", false), 1002),
    ];
    for (what, bytes, code) in cases {
        let (mut tcp, mut buf) = raw_socket(&addr, "graphql-transport-ws").await;
        tcp.write_all(&bytes).await.unwrap();
        let (frames, closed) = server_frames(&mut tcp, &mut buf).await;
        assert!(closed, "{what}: closed");
        let (op, payload) = frames.last().unwrap();
        assert_eq!(*op, 0x8, "{what}");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code, "{what}");
    }
    s.shutdown().await;
}
