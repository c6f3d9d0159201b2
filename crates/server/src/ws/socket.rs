//! One upgraded WebSocket connection's stream (TCP, or TLS over TCP: [`Transport`]), shared
//! by its session task (which reads, and writes protocol frames) and the fan-out shards (which
//! write event frames straight to the socket, without waking the session).
//!
//! Writes never wait: [`Socket::send`] writes what the kernel takes at once (`writev`, one
//! system call for the frame header, the subscriber's prefix and the shared payload) and keeps
//! the rest in the outbox, in order; the session then drains the outbox when the socket is
//! writable, coalescing every queued frame into one write. The outbox has a limit
//! (`ws_max_outbox_frames`): past it the connection is a slow consumer and is closed with 1013
//! (resume with `after`), so a client that stops reading costs bounded memory and never
//! blocks anyone else. Over TLS, records encrypted but not yet taken by the kernel are part
//! of the backlog the session drains.

use super::transport::Transport;
use infrastream_protocol::FrameHeader;
use std::io::{self, IoSlice};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use tokio::sync::Notify;

/// What happened to a frame handed to [`Socket::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Written to the kernel, or queued behind earlier frames.
    Accepted,
    /// Not sent: the connection is closed, or is closing as a slow consumer.
    Dropped,
}

#[derive(Default)]
struct Outbox {
    /// Bytes of whole frames the kernel did not take yet, in order.
    buf: Vec<u8>,
    /// Frames (or their remainders) in `buf`.
    frames: usize,
    /// No more frames are accepted (closed, failed, or over the limit).
    closed: bool,
    /// The limit was exceeded: the session closes with 1013.
    overflowed: bool,
}

/// The shared half of a connection.
pub(crate) struct Socket {
    io: Transport,
    out: Mutex<Outbox>,
    /// Signalled when the outbox stops being empty (the session drains it), overflows, or the
    /// credentials are revoked.
    pending: Notify,
    max_frames: usize,
    /// Expiry of the credentials (µs since the epoch; `i64::MAX` when they do not expire):
    /// nothing is delivered under expired credentials.
    expires_at_us: AtomicI64,
    /// The credentials were revoked: nothing more is delivered.
    revoked: AtomicBool,
}

impl Socket {
    pub(crate) fn new(io: Transport, max_frames: usize) -> Self {
        let socket = Self {
            io,
            out: Mutex::new(Outbox::default()),
            pending: Notify::new(),
            max_frames: max_frames.max(1),
            expires_at_us: AtomicI64::new(i64::MAX),
            revoked: AtomicBool::new(false),
        };
        // TLS records left from the upgrade's answer, if any, are drained by the session.
        socket.wake_if_transport_backlog();
        socket
    }

    /// Waits until [`Socket::try_read`] may have something.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Waits until the kernel takes more bytes.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// Reads what is there without waiting (`Ok(0)`: the end of the stream; `WouldBlock`:
    /// nothing yet).
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.io.try_read(buf);
        // Reading TLS may queue records of its own (an alert, a key update's answer).
        self.wake_if_transport_backlog();
        read
    }

    /// Has the session drain what the transport holds (TLS records the kernel did not take).
    fn wake_if_transport_backlog(&self) {
        if self.io.has_backlog() {
            self.pending.notify_one();
        }
    }

    /// Sets the expiry of the credentials that authenticated the connection.
    pub(crate) fn set_expiry(&self, expires_at: Option<infrastream_core::Timestamp>) {
        let us = expires_at.map_or(i64::MAX, |t| t.timestamp_micros());
        self.expires_at_us.store(us, Ordering::Relaxed);
        self.revoked.store(false, Ordering::Relaxed);
    }

    /// Marks the credentials revoked and wakes the session, which closes the connection.
    pub(crate) fn revoke(&self) {
        self.revoked.store(true, Ordering::Relaxed);
        self.pending.notify_one();
    }

    /// Closes the connection as a slow consumer (1013, resume with `after`) after what was
    /// queued: its live subscriptions fell behind events that can no longer be read.
    pub(crate) fn close_lagging(&self) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.closed = true;
        out.overflowed = true;
        drop(out);
        self.pending.notify_one();
    }

    /// Whether the credentials were revoked.
    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    /// Whether events may be delivered at `now_us`.
    pub(crate) fn may_deliver(&self, now_us: i64) -> bool {
        !self.revoked.load(Ordering::Relaxed) && self.expires_at_us.load(Ordering::Relaxed) > now_us
    }

    /// Sends a text frame whose payload is `parts` concatenated.
    pub(crate) fn send_text(&self, parts: &[&[u8]]) -> Sent {
        self.send_text_unless(None, parts)
    }

    /// Sends a text frame unless `cancelled` is set. The flag is read under the outbox lock,
    /// so a frame of an operation the session stopped can never follow its `complete`.
    pub(crate) fn send_text_unless(&self, cancelled: Option<&AtomicBool>, parts: &[&[u8]]) -> Sent {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let header = FrameHeader::text(len);
        let mut slices = [IoSlice::new(&[]); 4];
        slices[0] = IoSlice::new(header.as_bytes());
        let n = parts.len().min(3);
        for (slot, part) in slices[1..=n].iter_mut().zip(parts) {
            *slot = IoSlice::new(part);
        }
        self.send_slices(&slices[..=n], false, cancelled)
    }

    /// Sends an already framed control or data frame. `force` queues it even past the limit
    /// (the final close frame).
    pub(crate) fn send_raw(&self, frame: &[u8], force: bool) -> Sent {
        self.send_slices(&[IoSlice::new(frame)], force, None)
    }

    fn send_slices(
        &self,
        slices: &[IoSlice<'_>],
        force: bool,
        cancelled: Option<&AtomicBool>,
    ) -> Sent {
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if (out.closed && !force) || cancelled.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Sent::Dropped;
        }
        let mut written = 0;
        if out.buf.is_empty() {
            match self.io.try_write_vectored(slices) {
                Ok(n) if n == total => {
                    drop(out);
                    self.wake_if_transport_backlog();
                    return Sent::Accepted;
                }
                Ok(n) => written = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    out.closed = true;
                    drop(out);
                    self.pending.notify_one();
                    return Sent::Dropped;
                }
            }
        } else if out.frames >= self.max_frames && !force {
            out.closed = true;
            out.overflowed = true;
            drop(out);
            self.pending.notify_one();
            return Sent::Dropped;
        }
        let was_empty = out.buf.is_empty();
        let mut skip = written;
        for s in slices {
            if skip >= s.len() {
                skip -= s.len();
                continue;
            }
            out.buf.extend_from_slice(&s[skip..]);
            skip = 0;
        }
        out.frames += 1;
        drop(out);
        if was_empty {
            self.pending.notify_one();
        }
        Sent::Accepted
    }

    /// Waits until the outbox has something to drain, or overflowed, or the socket failed.
    pub(crate) async fn pending(&self) {
        self.pending.notified().await;
    }

    /// Whether the connection overflowed its outbox (a slow consumer).
    pub(crate) fn overflowed(&self) -> bool {
        self.out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overflowed
    }

    /// Whether frames wait in the outbox (or, over TLS, records in the transport).
    pub(crate) fn has_backlog(&self) -> bool {
        !self
            .out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buf
            .is_empty()
            || self.io.has_backlog()
    }

    /// Writes as much of the outbox as the kernel takes now, in one system call (over TLS,
    /// what the transport holds goes first). `Ok(true)` when nothing waits afterwards.
    pub(crate) fn drain_some(&self) -> io::Result<bool> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if !self.io.flush()? {
            return Ok(false);
        }
        if out.buf.is_empty() {
            return Ok(true);
        }
        match self.io.try_write_vectored(&[IoSlice::new(&out.buf)]) {
            Ok(n) => {
                out.buf.drain(..n);
                if out.buf.is_empty() {
                    out.frames = 0;
                    // Do not keep a large buffer for an idle connection.
                    if out.buf.capacity() > 64 * 1024 {
                        out.buf = Vec::new();
                    }
                    return Ok(!self.io.has_backlog());
                }
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => {
                out.closed = true;
                Err(e)
            }
        }
    }

    /// Drains the outbox, waiting for the socket to become writable as needed.
    pub(crate) async fn drain(&self) -> io::Result<()> {
        loop {
            if self.drain_some()? {
                return Ok(());
            }
            self.io.writable().await?;
        }
    }

    /// Ends the connection politely after the last frame was drained: sends FIN (over TLS,
    /// `close_notify` first), then reads
    /// and discards what the client still sends (its pongs, its close frame) until it closes
    /// too or `wait` passes. Dropping a socket with unread input makes the kernel answer with
    /// a reset, which destroys frames the client has received but not yet read — the close
    /// frame among them.
    pub(crate) async fn finish(&self, wait: std::time::Duration) {
        self.io.close_notify();
        let tcp = self.io.tcp();
        let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write);
        let discard = async {
            let mut sink = [0u8; 1024];
            loop {
                if tcp.readable().await.is_err() {
                    return;
                }
                match tcp.try_read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout(wait, discard).await;
    }

    /// Accepts no more frames (other than a forced close frame).
    pub(crate) fn close(&self) {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    }
}
