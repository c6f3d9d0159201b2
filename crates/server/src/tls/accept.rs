//! The TLS handshake of one accepted connection, in that connection's own task so that a
//! slow or broken client never holds up the accept loop. A client that speaks plain HTTP to
//! the TLS port gets a short `400` in plain text telling it to use `https://`, instead of
//! bytes it cannot read.

use super::Tls;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The first byte of a TLS record carrying a handshake message (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How long a refused plain-HTTP client gets to read the refusal before the socket closes.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

const PLAIN_HTTP_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n\
Content-Length: 62\r\n\
\r\n\
This server speaks TLS only: use https:// (and wss://) URLs.\r\n";

/// Completes the TLS handshake on `stream` within `tls_handshake_timeout_ms`; `None` when it
/// fails, times out, or the client spoke plain HTTP (each logged at debug: a client's
/// mistake is not the server's error).
pub(crate) async fn handshake(
    tls: &Tls,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
    let attempt = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) if first[0] != TLS_HANDSHAKE_RECORD => {
                refuse_plain_http(stream).await;
                return Err(
                    "the client spoke plain HTTP (or something else) to the TLS port".to_string(),
                );
            }
            Ok(0) => return Err("the client closed the connection".to_string()),
            Err(e) => return Err(e.to_string()),
            Ok(_) => {}
        }
        acceptor.accept(stream).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(tls.handshake_timeout, attempt).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(peer = %peer, error = %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(
                peer = %peer,
                timeout_ms = tls.handshake_timeout.as_millis() as u64,
                "TLS handshake timed out (setting tls_handshake_timeout_ms)"
            );
            None
        }
    }
}

/// Answers a plain-HTTP request with [`PLAIN_HTTP_REFUSAL`], then reads and discards what
/// the client still sends for a moment: closing with unread input would reset the
/// connection and could destroy the answer before the client reads it.
async fn refuse_plain_http(mut stream: TcpStream) {
    if stream.write_all(PLAIN_HTTP_REFUSAL).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let discard = async {
        let mut sink = [0u8; 1024];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, discard).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_declares_its_length() {
        let text = std::str::from_utf8(super::PLAIN_HTTP_REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{text}"
        );
    }
}
