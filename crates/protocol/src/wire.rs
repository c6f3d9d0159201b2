//! RFC 6455 framing, server side, without I/O: [`Decoder`] turns the bytes a client sent into
//! whole messages (unmasking, reassembling fragments, checking UTF-8 and the size limit), and
//! the `*_frame` functions and [`FrameHeader`] build what the server writes. The server writes
//! unmasked frames, so a data frame is a 2-, 4- or 10-byte header followed by the payload bytes
//! as they are: a payload rendered once can be written to every socket without copying it.

use crate::close::Close;

/// Opcodes (RFC 6455 §5.2).
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Largest payload of a control frame.
const MAX_CONTROL_PAYLOAD: usize = 125;

/// A whole message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message (its content is of no use to either GraphQL protocol).
    Binary,
    /// A ping; the server answers with a pong carrying the same payload.
    Ping(Vec<u8>),
    /// A pong (ignored).
    Pong,
    /// The client's close frame: its code, if it gave one.
    Close(Option<u16>),
}

/// Incremental decoder of client frames. Feed it what the socket returned with
/// [`Decoder::extend`], then take messages with [`Decoder::next_message`] until it returns
/// `Ok(None)`. An `Err` is the close the server must send; the connection is then done.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    read: usize,
    /// The message being reassembled from fragments: its kind (text/binary) and bytes.
    partial: Option<(u8, Vec<u8>)>,
    max_message: usize,
}

impl Decoder {
    /// A decoder refusing messages (and frames) larger than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: Vec::new(),
            read: 0,
            partial: None,
            max_message,
        }
    }

    /// Appends bytes read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.read == self.buf.len() {
            self.buf.clear();
            self.read = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished frame or message are held.
    pub fn is_idle(&self) -> bool {
        self.read == self.buf.len() && self.partial.is_none()
    }

    /// Releases the buffers of an idle decoder, so that an idle connection holds no heap.
    pub fn shrink(&mut self) {
        if self.is_idle() {
            self.buf = Vec::new();
            self.read = 0;
        }
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<WireMessage>, Close> {
        loop {
            let Some(frame) = self.next_frame()? else {
                if self.read > 0 && self.read * 2 > self.buf.len() {
                    self.buf.drain(..self.read);
                    self.read = 0;
                }
                return Ok(None);
            };
            let (fin, opcode, payload) = frame;
            match opcode {
                PING => return Ok(Some(WireMessage::Ping(payload))),
                PONG => return Ok(Some(WireMessage::Pong)),
                CLOSE => return close_message(&payload).map(Some),
                TEXT | BINARY if self.partial.is_some() => {
                    return Err(protocol_error("new message inside a fragmented one"));
                }
                TEXT | BINARY if fin => return finish(opcode, payload).map(Some),
                TEXT | BINARY => self.partial = Some((opcode, payload)),
                CONTINUATION => {
                    let Some((kind, mut bytes)) = self.partial.take() else {
                        return Err(protocol_error("continuation without a message"));
                    };
                    if bytes.len() + payload.len() > self.max_message {
                        return Err(Close::message_too_big());
                    }
                    bytes.extend_from_slice(&payload);
                    if fin {
                        return finish(kind, bytes).map(Some);
                    }
                    self.partial = Some((kind, bytes));
                }
                _ => return Err(protocol_error("unknown opcode")),
            }
        }
    }

    /// The next whole frame (FIN, opcode, unmasked payload), if all its bytes are here.
    fn next_frame(&mut self) -> Result<Option<(bool, u8, Vec<u8>)>, Close> {
        let b = &self.buf[self.read..];
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err(protocol_error("reserved bits set"));
        }
        let opcode = b[0] & 0x0F;
        if b[1] & 0x80 == 0 {
            return Err(protocol_error("client frames must be masked"));
        }
        let (len, mut at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        if opcode >= CLOSE && (!fin || len > MAX_CONTROL_PAYLOAD as u64) {
            return Err(protocol_error("invalid control frame"));
        }
        let buffered = self.partial.as_ref().map_or(0, |(_, p)| p.len()) as u64;
        if len.saturating_add(buffered) > self.max_message as u64 {
            return Err(Close::message_too_big());
        }
        let len = len as usize;
        if b.len() < at + 4 + len {
            return Ok(None);
        }
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        at += 4;
        let payload: Vec<u8> = b[at..at + len]
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i % 4])
            .collect();
        self.read += at + len;
        Ok(Some((fin, opcode, payload)))
    }
}

fn protocol_error(reason: &str) -> Close {
    Close::new(Close::PROTOCOL_ERROR, format!("Protocol error: {reason}"))
}

fn finish(kind: u8, bytes: Vec<u8>) -> Result<WireMessage, Close> {
    if kind == BINARY {
        return Ok(WireMessage::Binary);
    }
    String::from_utf8(bytes)
        .map(WireMessage::Text)
        .map_err(|_| Close::new(Close::INVALID_PAYLOAD, "Invalid UTF-8 in a text message"))
}

fn close_message(payload: &[u8]) -> Result<WireMessage, Close> {
    match payload {
        [] => Ok(WireMessage::Close(None)),
        [_] => Err(protocol_error("close payload of one byte")),
        [a, b, reason @ ..] => {
            if std::str::from_utf8(reason).is_err() {
                return Err(Close::new(
                    Close::INVALID_PAYLOAD,
                    "Invalid UTF-8 in a close reason",
                ));
            }
            Ok(WireMessage::Close(Some(u16::from_be_bytes([*a, *b]))))
        }
    }
}

/// The header of an unmasked server frame: up to 10 bytes.
#[derive(Debug, Clone, Copy)]
pub struct FrameHeader {
    bytes: [u8; 10],
    len: u8,
}

impl FrameHeader {
    /// The header of a final text frame of `payload_len` bytes.
    pub fn text(payload_len: usize) -> Self {
        Self::new(TEXT, payload_len)
    }

    fn new(opcode: u8, payload_len: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | opcode;
        let len = if payload_len < 126 {
            bytes[1] = payload_len as u8;
            2
        } else if payload_len <= usize::from(u16::MAX) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    /// The header bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A whole text frame.
pub fn text_frame(text: &str) -> Vec<u8> {
    let header = FrameHeader::text(text.len());
    let mut out = Vec::with_capacity(header.as_bytes().len() + text.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// A frame as a client sends it: `first` is its first byte as given (FIN, RSV bits, opcode);
/// the payload is masked with `mask` when there is one (RFC 6455 requires it of clients; an
/// unmasked frame is for testing that servers refuse it).
pub fn client_frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = FrameHeader::new(0, payload.len()).as_bytes().to_vec();
    out[0] = first;
    match mask {
        Some(mask) => {
            out[1] |= 0x80;
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

fn control_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    let mut out = FrameHeader::new(opcode, payload.len()).as_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A ping frame with an empty payload.
pub fn ping_frame() -> Vec<u8> {
    control_frame(PING, &[])
}

/// A pong answering a ping with `payload`.
pub fn pong_frame(payload: &[u8]) -> Vec<u8> {
    control_frame(PONG, payload)
}

/// A close frame with the close's code and reason.
pub fn close_frame(close: &Close) -> Vec<u8> {
    let mut payload = close.code().to_be_bytes().to_vec();
    payload.extend_from_slice(close.reason().as_bytes());
    control_frame(CLOSE, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn client(first: u8, payload: &[u8]) -> Vec<u8> {
        client_frame(first, payload, Some([0x11, 0x22, 0x33, 0x44]))
    }

    fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<WireMessage>, Close> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        // One byte at a time: every split point must work.
        for b in bytes {
            d.extend(std::slice::from_ref(b));
            while let Some(m) = d.next_message()? {
                out.push(m);
            }
        }
        Ok(out)
    }

    #[test]
    fn decodes_text_in_every_length_encoding_and_split() {
        for n in [0, 1, 125, 126, 300, 65535, 65536] {
            let text = "x".repeat(n);
            let got = decode_all(&client(0x81, text.as_bytes()), 1 << 20).unwrap();
            assert_eq!(got, vec![WireMessage::Text(text)], "length {n}");
        }
    }

    #[test]
    fn reassembles_fragments_with_interleaved_control_frames() {
        let mut bytes = client(0x01, b"hel");
        bytes.extend(client(0x89, b"p"));
        bytes.extend(client(0x80, b"lo"));
        let got = decode_all(&bytes, 1024).unwrap();
        assert_eq!(
            got,
            vec![
                WireMessage::Ping(b"p".to_vec()),
                WireMessage::Text("hello".into())
            ]
        );
    }

    #[test]
    fn refuses_what_rfc_6455_forbids_with_the_right_code() {
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("unmasked", vec![0x81, 0x01, b'a'], Close::PROTOCOL_ERROR),
            ("reserved bit", client(0xC1, b"a"), Close::PROTOCOL_ERROR),
            ("unknown opcode", client(0x83, b"a"), Close::PROTOCOL_ERROR),
            ("fragmented ping", client(0x09, b"a"), Close::PROTOCOL_ERROR),
            (
                "long ping",
                client(0x89, &[0u8; 126]),
                Close::PROTOCOL_ERROR,
            ),
            (
                "stray continuation",
                client(0x80, b"a"),
                Close::PROTOCOL_ERROR,
            ),
            (
                "invalid UTF-8",
                client(0x81, &[0xff, 0xfe]),
                Close::INVALID_PAYLOAD,
            ),
            ("too big", client(0x81, &[b'a'; 65]), Close::MESSAGE_TOO_BIG),
            (
                "too big in fragments",
                [client(0x01, &[b'a'; 40]), client(0x80, &[b'a'; 40])].concat(),
                Close::MESSAGE_TOO_BIG,
            ),
            (
                "text inside a fragmented message",
                [client(0x01, b"a"), client(0x81, b"b")].concat(),
                Close::PROTOCOL_ERROR,
            ),
            ("one-byte close", client(0x88, &[3]), Close::PROTOCOL_ERROR),
        ];
        for (name, bytes, code) in cases {
            let err = decode_all(&bytes, 64).expect_err(name);
            assert_eq!(err.code(), code, "{name}");
        }
    }

    #[test]
    fn a_huge_declared_length_is_refused_before_it_is_buffered() {
        let mut d = Decoder::new(1024);
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&u64::MAX.to_be_bytes());
        d.extend(&header);
        assert_eq!(d.next_message().unwrap_err().code(), Close::MESSAGE_TOO_BIG);
    }

    #[test]
    fn close_binary_and_pong_are_reported() {
        let mut bytes = client(0x82, b"\x00\x01");
        bytes.extend(client(0x8A, b""));
        bytes.extend(client(0x88, &[0x03, 0xE8, b'b', b'y', b'e']));
        let got = decode_all(&bytes, 1024).unwrap();
        assert_eq!(
            got,
            vec![
                WireMessage::Binary,
                WireMessage::Pong,
                WireMessage::Close(Some(1000))
            ]
        );
    }

    #[test]
    fn server_frames_have_minimal_headers() {
        assert_eq!(FrameHeader::text(5).as_bytes(), &[0x81, 5]);
        assert_eq!(FrameHeader::text(300).as_bytes(), &[0x81, 126, 1, 44]);
        assert_eq!(FrameHeader::text(70_000).as_bytes().len(), 10);
        let close = close_frame(&Close::going_away());
        assert_eq!(close[0], 0x88);
        assert_eq!(&close[2..4], &1001u16.to_be_bytes());
        assert_eq!(pong_frame(b"abc"), vec![0x8A, 3, b'a', b'b', b'c']);
    }
}
