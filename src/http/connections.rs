//! Accepting and serving HTTP/1.1 connections with the limits a public
//! server needs and `axum::serve` does not set:
//!
//! - a connection must send a complete request head within
//!   [`Limits::head_timeout`] of starting it (or of connecting), so a
//!   client trickling one header line at a time is cut off;
//! - a keep-alive connection idle between requests for
//!   [`Limits::idle_timeout`] is closed;
//! - at most [`Limits::max_connections`] are open at once; when a new one
//!   arrives at the limit, the connection that has waited longest for a
//!   request head makes room, so half-open connections cannot lock
//!   everyone else out, and accept errors (no descriptors left) pause the
//!   loop instead of ending it.
//!
//! hyper's own `header_read_timeout` runs from the moment it starts waiting
//! for a head, idle time included. The [`HeadTimer`] given to it stretches
//! that wait to the idle timeout until the first byte of the next request
//! arrives, which the [`WatchedIo`] around the socket reports. A client that
//! pipelines (sends the next head before the answer) gets no idle grace:
//! bytes already in hyper's buffer cannot be seen from outside it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt as _;

use crate::config::CONNECTION_CEILING;

/// The connection limits of API.md section 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub head_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// File descriptors kept back from client connections: the database pool,
/// the SQLite files, the listener, logs.
const RESERVED_DESCRIPTORS: u64 = 128;

impl Limits {
    /// The standard timeouts, with room for `max_connections` clients.
    pub fn with_max_connections(max_connections: usize) -> Self {
        Self {
            head_timeout: HEAD_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: max_connections.max(1),
        }
    }
}

/// How many connections the process can hold open, after raising its
/// descriptor limit as far as the system allows.
pub fn default_max_connections() -> usize {
    let descriptors = raise_descriptor_limit();
    descriptors
        .saturating_sub(RESERVED_DESCRIPTORS)
        .clamp(1, u64::from(CONNECTION_CEILING)) as usize
}

/// Raises the soft limit on open files to the hard limit (the usual soft
/// default of 1,024 is far below what a server needs) and returns the
/// limit now in force.
#[cfg(unix)]
fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    // `rlim_t` is `u64` on Linux but not on every Unix.
    #[allow(clippy::unnecessary_cast)]
    let current = limit.rlim_cur as u64;
    current
}

#[cfg(not(unix))]
fn raise_descriptor_limit() -> u64 {
    1024
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and waits for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let open = Arc::new(OpenConnections::default());
    let (closing_tx, closing_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    pause_after_accept_error(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if open.len() >= limits.max_connections && !open.evict_longest_waiting() {
            // Every connection is busy with a request: this one waits its
            // turn in no queue of ours.
            tracing::warn!(
                max = limits.max_connections,
                "connection limit reached; refusing one"
            );
            continue;
        }
        let _ = stream.set_nodelay(true);
        let connection = open.add();
        let closing = closing_rx.clone();
        let router = router.clone();
        let open = open.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, router, limits, &connection, closing).await;
            open.remove(connection.id);
        });
    }
    drop(listener);
    drop(closing_rx);
    // Tell every connection to finish its request and close, then wait for
    // the last to hang up.
    let _ = closing_tx.send(());
    closing_tx.closed().await;
    Ok(())
}

/// Accept errors are about one connection or about the process running out
/// of something (descriptors, memory); neither is a reason to stop serving.
async fn pause_after_accept_error(error: &io::Error) {
    let per_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    );
    if per_connection {
        return;
    }
    tracing::warn!(%error, "cannot accept connections; pausing briefly");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    connection: &Connection,
    mut closing: watch::Receiver<()>,
) {
    let io = TokioIo::new(WatchedIo {
        inner: stream,
        head: connection.head.clone(),
    });
    let head = connection.head.clone();
    let service = router.map_request(move |mut request: axum::http::Request<Incoming>| {
        // How much of what follows the head is this request's body.
        let body_length = if request.headers().contains_key(TRANSFER_ENCODING) {
            None
        } else {
            request.headers().get(CONTENT_LENGTH).map_or(Some(0), |v| {
                v.to_str().ok().and_then(|v| v.trim().parse().ok())
            })
        };
        head.lock().expect("head lock").body_length = body_length;
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(HeadTimer {
            head: connection.head.clone(),
            limits,
        })
        .header_read_timeout(limits.head_timeout);
    let mut conn = pin!(
        builder
            .serve_connection(io, TowerToHyperService::new(service))
            .with_upgrades()
    );
    let mut evicted = pin!(connection.evicted.notified());
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = closing.changed() => conn.as_mut().graceful_shutdown(),
            () = &mut evicted => {
                tracing::debug!(%peer, "connection closed to make room for a new one");
                return;
            }
        }
    }
}

/// Where a connection is in waiting for a request head.
#[derive(Default)]
struct HeadWait {
    /// Since when hyper has been waiting for the next head; `None` while a
    /// request is being served.
    since: Option<Instant>,
    /// When the first byte of that head arrived.
    first_byte: Option<Instant>,
    /// Whether the connection has had a request before: the first head is
    /// due `head_timeout` after connecting, later ones after their first
    /// byte.
    served_before: bool,
    /// The last three bytes read while waiting, so a head's end (`\r\n\r\n`)
    /// split across two reads is still found.
    tail: [u8; 3],
    /// Bytes that arrived after the current request's head: its body, then
    /// whatever the client sent ahead (a pipelined next request).
    after_head: u64,
    /// The current request's body length, as its head declared it (`None`:
    /// chunked or unknown).
    body_length: Option<u64>,
    /// The client sends requests ahead of the answers. Which bytes of the
    /// next head have already arrived is then unknowable from outside
    /// hyper's buffer, so each later head is due `head_timeout` after hyper
    /// starts waiting for it, with no idle grace.
    pipelining: bool,
}

impl HeadWait {
    /// Notes `bytes` just read from the socket.
    fn read(&mut self, bytes: &[u8]) {
        if self.since.is_none() {
            self.after_head += bytes.len() as u64;
            return;
        }
        if self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
        // The bytes past the end of the head, if it ends in this read.
        let mut window = self.tail.to_vec();
        window.extend_from_slice(bytes);
        if let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") {
            self.after_head = (window.len() - (end + 4)) as u64;
        }
        let last = &window[window.len().saturating_sub(3)..];
        self.tail = [0; 3];
        self.tail[3 - last.len()..].copy_from_slice(last);
    }

    /// Whether the next head began before hyper started waiting for it:
    /// more bytes came after the last head than its body accounts for.
    fn next_head_already_started(&self) -> bool {
        match self.body_length {
            Some(length) => self.after_head > length,
            None => self.after_head > 0,
        }
    }
}

type SharedHeadWait = Arc<Mutex<HeadWait>>;

/// One open connection, as the accept loop sees it.
struct Connection {
    id: u64,
    head: SharedHeadWait,
    evicted: Notify,
}

#[derive(Default)]
struct OpenConnections {
    next_id: AtomicU64,
    all: Mutex<Vec<Arc<Connection>>>,
}

impl OpenConnections {
    fn add(&self) -> Arc<Connection> {
        let connection = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            head: Arc::new(Mutex::new(HeadWait {
                since: Some(Instant::now()),
                ..HeadWait::default()
            })),
            evicted: Notify::new(),
        });
        self.all
            .lock()
            .expect("connections lock")
            .push(connection.clone());
        connection
    }

    fn remove(&self, id: u64) {
        self.all
            .lock()
            .expect("connections lock")
            .retain(|c| c.id != id);
    }

    fn len(&self) -> usize {
        self.all.lock().expect("connections lock").len()
    }

    /// Closes the connection that has waited longest for a request head;
    /// false when every connection is in the middle of a request.
    fn evict_longest_waiting(&self) -> bool {
        let mut all = self.all.lock().expect("connections lock");
        let longest = all
            .iter()
            .enumerate()
            .filter_map(|(index, c)| Some((c.head.lock().expect("head lock").since?, index)))
            .min();
        let Some((_, index)) = longest else {
            return false;
        };
        let connection = all.swap_remove(index);
        connection.evicted.notify_one();
        true
    }
}

/// The socket, reporting the first byte of each request head.
struct WatchedIo {
    inner: TcpStream,
    head: SharedHeadWait,
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.head
                .lock()
                .expect("head lock")
                .read(&buf.filled()[before..]);
        }
        result
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The timer hyper uses for its header-read timeout on one connection.
/// hyper only ever asks it for that deadline, once per request head.
struct HeadTimer {
    head: SharedHeadWait,
    limits: Limits,
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let started = deadline
            .checked_sub(self.limits.head_timeout)
            .unwrap_or_else(Instant::now);
        {
            let mut head = self.head.lock().expect("head lock");
            if head.since.is_none() {
                // A new wait after a request: the one before was served. If
                // the client already sent part of the next head (pipelining),
                // that head is due `head_timeout` from now, not from idle.
                head.served_before = true;
                head.pipelining |= head.next_head_already_started();
                head.since = Some(started);
                head.first_byte = head.pipelining.then_some(started);
                head.tail = [0; 3];
                head.after_head = 0;
            }
        }
        Box::pin(HeadDeadline {
            head: self.head.clone(),
            limits: self.limits,
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        // A deadline of ours works its due time out itself; replacing it
        // would drop it, and its drop means "the head has arrived".
        if sleep.as_mut().downcast_mut_pin::<HeadDeadline>().is_none() {
            *sleep = self.sleep_until(new_deadline);
        }
    }
}

/// Resolves when the head being waited for is overdue: `head_timeout`
/// after connecting, for a connection's first request; otherwise
/// `idle_timeout` after the last response until a byte arrives, then
/// `head_timeout` after that byte. Dropped by hyper once the head is read.
struct HeadDeadline {
    head: SharedHeadWait,
    limits: Limits,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl HeadDeadline {
    fn due(&self) -> Instant {
        let head = self.head.lock().expect("head lock");
        let since = head.since.unwrap_or_else(Instant::now);
        match (head.served_before, head.first_byte) {
            (false, _) => since + self.limits.head_timeout,
            (true, Some(first_byte)) => first_byte + self.limits.head_timeout,
            (true, None) => since + self.limits.idle_timeout,
        }
    }
}

impl Future for HeadDeadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // hyper polls this whenever the socket wakes it, so a first byte
        // that moves the deadline is seen straight away.
        let due = tokio::time::Instant::from_std(self.due());
        if self.sleep.deadline() != due {
            self.sleep.as_mut().reset(due);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl Sleep for HeadDeadline {}

impl Drop for HeadDeadline {
    fn drop(&mut self) {
        // The head arrived (or the connection is going): no longer waiting.
        if let Ok(mut head) = self.head.lock() {
            head.since = None;
            head.first_byte = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> HeadWait {
        HeadWait {
            since: Some(Instant::now()),
            ..HeadWait::default()
        }
    }

    #[test]
    fn bytes_past_a_bodiless_head_are_the_next_head() {
        let mut head = waiting();
        head.read(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HT");
        head.body_length = Some(0);
        assert_eq!(head.after_head, 8);
        assert!(head.next_head_already_started());
    }

    #[test]
    fn a_body_is_not_taken_for_the_next_head() {
        let mut head = waiting();
        head.read(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
        head.body_length = Some(5);
        head.since = None; // the head was parsed; the body's rest follows
        head.read(b"cde");
        assert!(!head.next_head_already_started());
        head.read(b"G");
        assert!(head.next_head_already_started());
    }

    #[test]
    fn a_head_end_split_across_reads_is_found() {
        let mut head = waiting();
        head.read(b"GET / HTTP/1.1\r\nHost: x\r\n\r");
        head.read(b"\nGE");
        head.body_length = Some(0);
        assert_eq!(head.after_head, 2);
        assert!(head.next_head_already_started());
    }
}
