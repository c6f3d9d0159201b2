//! What an upgraded WebSocket reads and writes: its TCP stream, or TLS over it. The TLS
//! connection is rustls's own state machine under a lock, driven with the same
//! non-blocking calls as the plain stream, so [`Socket`](super::socket::Socket) keeps its
//! design for both: a write never waits (the fan-out shards encrypt and write from their own
//! tasks), and what the kernel does not take waits for the session's drain.
//!
//! For TLS, encrypted records that the kernel did not take yet stay in rustls (at most one
//! write's worth, 64 KiB: no new plaintext is taken while records wait), and count as a
//! backlog to drain like the socket's outbox.

use rustls::ServerConnection;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Mutex;
use tokio::net::TcpStream;

/// The byte stream under one WebSocket.
pub(crate) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (the handshake is done). Boxed: a plain socket does not pay for the
    /// size of a TLS connection.
    Tls {
        tcp: TcpStream,
        tls: Box<Mutex<ServerConnection>>,
    },
}

impl Transport {
    /// TLS over `tcp`, taking over a connection whose handshake is done.
    pub(crate) fn tls(tcp: TcpStream, tls: ServerConnection) -> Self {
        Self::Tls {
            tcp,
            tls: Box::new(Mutex::new(tls)),
        }
    }

    /// The TCP stream.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) | Self::Tls { tcp, .. } => tcp,
        }
    }

    /// Waits until [`Transport::try_read`] may have something: at once when rustls holds
    /// decrypted bytes not read yet (the kernel's readiness does not know about them).
    pub(crate) async fn readable(&self) -> io::Result<()> {
        if let Self::Tls { tls, .. } = self
            && has_plaintext(&mut lock(tls))
        {
            return Ok(());
        }
        self.tcp().readable().await
    }

    /// Waits until the kernel takes more bytes.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.tcp().writable().await
    }

    /// Reads what is there without waiting: `Ok(0)` at the end of the stream,
    /// `WouldBlock` when nothing is there yet.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let (tcp, tls) = match self {
            Self::Plain(tcp) => return tcp.try_read(buf),
            Self::Tls { tcp, tls } => (tcp, tls),
        };
        let mut tls = lock(tls);
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                // The peer closed TCP without close_notify: for a WebSocket, whose close
                // handshake has its own frames, that is just the end of the stream.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if tls.read_tls(&mut Nonblocking(tcp))? == 0 {
                continue; // the reader now reports the end
            }
            if let Err(e) = tls.process_new_packets() {
                // Send the alert rustls queued, if the kernel takes it.
                let _ = flush(&mut tls, tcp);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages after the handshake (a key update) may need an answer.
            flush(&mut tls, tcp)?;
        }
    }

    /// Writes as much of `slices` as can go without waiting; `WouldBlock` when nothing can.
    pub(crate) fn try_write_vectored(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let (tcp, tls) = match self {
            Self::Plain(tcp) => return tcp.try_write_vectored(slices),
            Self::Tls { tcp, tls } => (tcp, tls),
        };
        let mut tls = lock(tls);
        if !flush(&mut tls, tcp)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut rest: Vec<IoSlice<'_>> = slices.iter().filter(|s| !s.is_empty()).copied().collect();
        let mut rest = &mut rest[..];
        let mut taken = 0;
        while !rest.is_empty() {
            let n = tls.writer().write_vectored(rest)?;
            taken += n;
            IoSlice::advance_slices(&mut rest, n);
            if n == 0 || !flush(&mut tls, tcp)? {
                break;
            }
        }
        Ok(taken)
    }

    /// Writes what waits below the caller (TLS records rustls holds); `Ok(true)` when
    /// nothing does any more.
    pub(crate) fn flush(&self) -> io::Result<bool> {
        match self {
            Self::Plain(_) => Ok(true),
            Self::Tls { tcp, tls } => flush(&mut lock(tls), tcp),
        }
    }

    /// Whether bytes wait below the caller (TLS records the kernel did not take yet).
    pub(crate) fn has_backlog(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Tls { tls, .. } => lock(tls).wants_write(),
        }
    }

    /// Announces the end of the stream at the TLS level (`close_notify`), when there is one;
    /// the caller then shuts the TCP stream down.
    pub(crate) fn close_notify(&self) {
        if let Self::Tls { tcp, tls } = self {
            let mut tls = lock(tls);
            tls.send_close_notify();
            let _ = flush(&mut tls, tcp);
        }
    }
}

fn lock(tls: &Mutex<ServerConnection>) -> std::sync::MutexGuard<'_, ServerConnection> {
    tls.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether rustls holds decrypted bytes that were not read yet.
fn has_plaintext(tls: &mut ServerConnection) -> bool {
    // Nothing new was read since the last call, so this only reports the state.
    tls.process_new_packets()
        .is_ok_and(|state| state.plaintext_bytes_to_read() > 0)
}

/// Writes the TLS records rustls holds until none are left (`Ok(true)`) or the kernel takes
/// no more (`Ok(false)`).
fn flush(tls: &mut ServerConnection, tcp: &TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut Nonblocking(tcp)) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// `std::io` over a tokio TCP stream's non-blocking calls, for rustls.
struct Nonblocking<'a>(&'a TcpStream);

impl Read for Nonblocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Nonblocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
