//! The HTTP endpoint: one accept thread, one short-lived thread per connection (at
//! most [`MAX_CONNECTIONS`]), one request per connection. See the module docs of
//! [`crate::prometheus`] for why it is written on `std::net` rather than taken from an
//! HTTP library.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::exposition::{Format, Source};
use crate::error::Error;

/// Connections open at once. One more closes the connection that has waited longest
/// for its request head (an idle or slow client: a scraper sends its request at once),
/// or, with none such, is answered `503` and closed without a thread. A client that
/// opens thousands costs this many threads and descriptors, and does not keep a
/// scraper out.
pub(crate) const MAX_CONNECTIONS: usize = 128;
/// Threads for connections, counting those still ending after they were closed to
/// make room: never more than this.
const MAX_THREADS: usize = 2 * MAX_CONNECTIONS;
/// Responses built and written at once: each holds an exposition in memory, so
/// memory is bounded by this many expositions whatever the number of scrapers.
const RESPONDERS: usize = 8;
/// How long a request waits for one of the [`RESPONDERS`] before it is answered `503`.
const RESPONDER_WAIT: Duration = Duration::from_secs(10);
/// The most a request head (request line and headers) may take; beyond it, `431`.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Headers a request may carry; more is answered `431`.
const MAX_HEADERS: usize = 64;
/// How long a client has to send its whole request head from the moment it is
/// accepted; then the connection is closed (after a `408` if it sent anything). An
/// idle connection lasts no longer than this.
pub(crate) const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// How long one write to a connection may block; the whole response has
/// [`RESPONSE_DEADLINE`].
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing one response may take in all, however slowly the client reads.
const RESPONSE_DEADLINE: Duration = Duration::from_secs(20);
/// After the response: how long, and how many bytes, the connection is read and the
/// bytes dropped before it is closed, so that a client still sending (a request body,
/// pipelined requests) gets its answer rather than a reset that can discard it.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;
/// The pauses between two tries after `accept` failed (out of file descriptors, say):
/// the first, doubled at each failure, up to the last.
const ACCEPT_PAUSE_FIRST: Duration = Duration::from_millis(10);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
/// How long `shutdown` waits for the accept thread.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) scrapes: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) failed: AtomicU64,
}

pub(crate) struct Server {
    addr: SocketAddr,
    context: Arc<Context>,
    /// The listening socket, shared with the accept thread; `None` once shut down.
    listener: Mutex<Option<Arc<TcpListener>>>,
    /// Dropped by `shutdown`, which ends a pause of the accept thread at once.
    wake: Mutex<Option<Sender<()>>>,
    /// Closed when the accept thread ends.
    done: Receiver<()>,
}

/// What the accept thread and the connection threads share.
struct Context {
    stop: AtomicBool,
    /// Connections with a thread now (only the accept thread adds to it).
    open: AtomicUsize,
    /// Connections still waiting for their request head, oldest first.
    waiting: Mutex<Waiting>,
    /// [`RESPONDERS`] tokens: a response is built and written holding one.
    responders: (Sender<()>, Receiver<()>),
    source: Arc<Source>,
    counters: Arc<Counters>,
    reported_accept_failed: AtomicBool,
    reported_accepting_again: AtomicBool,
    reported_full: AtomicBool,
    reported_spawn_failed: AtomicBool,
}

impl Server {
    pub(crate) fn start(
        addr: SocketAddr,
        source: Arc<Source>,
        counters: Arc<Counters>,
    ) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr).map_err(|e| Error::bind(addr, e))?;
        let local = listener.local_addr().map_err(|e| Error::bind(addr, e))?;
        let listener = Arc::new(listener);
        let (responders_tx, responders_rx) = crossbeam_channel::bounded(RESPONDERS);
        for _ in 0..RESPONDERS {
            let _ = responders_tx.send(());
        }
        let context = Arc::new(Context {
            stop: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            waiting: Mutex::new(Waiting::default()),
            responders: (responders_tx, responders_rx),
            source,
            counters,
            reported_accept_failed: AtomicBool::new(false),
            reported_accepting_again: AtomicBool::new(false),
            reported_full: AtomicBool::new(false),
            reported_spawn_failed: AtomicBool::new(false),
        });
        let (wake_tx, wake_rx) = crossbeam_channel::bounded::<()>(0);
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        {
            let (listener, context) = (Arc::clone(&listener), Arc::clone(&context));
            thread::Builder::new()
                .name("telemetry-prometheus".into())
                .spawn(move || {
                    accept_loop(&listener, &context, &wake_rx);
                    // The listening socket closes here (`shutdown` has dropped its
                    // copy), before `shutdown` is told that this thread is done.
                    drop(listener);
                    drop(done_tx);
                })
                .map_err(Error::spawn)?;
        }
        if addr.port() == 0 {
            crate::report::stderr_line(format_args!(
                "the Prometheus endpoint serves http://{local}/metrics (port 0 asked the system \
                 for a free port)"
            ));
        }
        Ok(Server {
            addr: local,
            context,
            listener: Mutex::new(Some(listener)),
            wake: Mutex::new(Some(wake_tx)),
            done,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting: waits at most [`SHUTDOWN_WAIT`] for the accept thread, which
    /// closes the listening socket as it ends. Connections already accepted finish
    /// their request within their own deadlines.
    pub(crate) fn shutdown(&self) {
        if self.context.stop.swap(true, Ordering::Relaxed) {
            return;
        }
        drop(self.wake.lock().unwrap_or_else(|e| e.into_inner()).take());
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(listener) = listener {
            // On Linux this ends an `accept` that is waiting; elsewhere, and should
            // it not, a connection to the socket does.
            let _ = socket2::SockRef::from(&*listener).shutdown(Shutdown::Read);
            if self.done.recv_timeout(Duration::from_millis(50)) == Err(RecvTimeoutError::Timeout) {
                let _ = TcpStream::connect_timeout(&reachable(self.addr), SHUTDOWN_WAIT / 4);
            }
        }
        let _ = self.done.recv_timeout(SHUTDOWN_WAIT);
    }
}

/// The address a connection to `addr` can reach: loopback for an unspecified host.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Accepts connections until shut down. A failed `accept` never ends it: out of file
/// descriptors (or memory, or buffers), it closes the connection that has waited
/// longest for its request head, if there is one, and otherwise pauses, longer at
/// each failure up to [`ACCEPT_PAUSE_MAX`], and tries again; the first such failure
/// is reported once, and so is the first success after it.
fn accept_loop(listener: &TcpListener, context: &Arc<Context>, wake: &Receiver<()>) {
    let mut pause: Option<Duration> = None;
    while !context.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if context.stop.load(Ordering::Relaxed) {
                    return;
                }
                if pause.take().is_some()
                    && context.reported_accept_failed.load(Ordering::Relaxed)
                    && !context
                        .reported_accepting_again
                        .swap(true, Ordering::Relaxed)
                {
                    crate::report::stderr_line(format_args!(
                        "the Prometheus endpoint accepts connections again (reported once)"
                    ));
                }
                admit(stream, context);
            }
            // The client gave up before it was accepted, or a signal: nothing to wait for.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => {
                if context.stop.load(Ordering::Relaxed) {
                    return;
                }
                if !context.reported_accept_failed.swap(true, Ordering::Relaxed) {
                    crate::report::stderr_line(format_args!(
                        "the Prometheus endpoint stopped accepting connections ({e}); it closes \
                         the connection that has waited longest for its request, if any, tries \
                         again, at most {} s apart, and serves again as soon as it can (reported \
                         once)",
                        ACCEPT_PAUSE_MAX.as_secs()
                    ));
                }
                // Out of descriptors, an idle connection's is the one to free: the
                // next try soon after may then accept a scraper.
                let next = if context.close_oldest_waiting() {
                    ACCEPT_PAUSE_FIRST
                } else {
                    pause.map_or(ACCEPT_PAUSE_FIRST, |p| (p * 2).min(ACCEPT_PAUSE_MAX))
                };
                pause = Some(next);
                if wake.recv_timeout(next) == Err(RecvTimeoutError::Disconnected) {
                    return;
                }
            }
        }
    }
}

/// Gives `stream` a thread of its own. At [`MAX_CONNECTIONS`], first closes the
/// connection that has waited longest for its request head; with none such (or
/// [`MAX_THREADS`] threads still running), answers `503` and closes `stream`.
fn admit(stream: TcpStream, context: &Arc<Context>) {
    let open = context.open.load(Ordering::Acquire);
    if open >= MAX_CONNECTIONS {
        let made_room = open < MAX_THREADS && context.close_oldest_waiting();
        if !context.reported_full.swap(true, Ordering::Relaxed) {
            crate::report::stderr_line(format_args!(
                "the Prometheus endpoint has {MAX_CONNECTIONS} connections open, its limit: \
                 each new one closes the one that has waited longest without sending its \
                 request, or is answered 503 when none has (reported once)"
            ));
        }
        if !made_room {
            context.counters.rejected.fetch_add(1, Ordering::Relaxed);
            refuse(stream);
            return;
        }
    }
    context.open.fetch_add(1, Ordering::AcqRel);
    let stream = Arc::new(stream);
    let id = {
        let mut waiting = context.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let id = waiting.next;
        waiting.next += 1;
        waiting.streams.insert(id, Arc::clone(&stream));
        id
    };
    let connection = Arc::clone(context);
    let spawned = thread::Builder::new()
        .name("telemetry-prometheus-conn".into())
        .spawn(move || {
            let _open = Open(&connection.open);
            serve(&stream, id, &connection);
        });
    if let Err(e) = spawned {
        // The closure, and its copy of the stream, are gone: drop the other.
        context.no_longer_waiting(id);
        context.open.fetch_sub(1, Ordering::AcqRel);
        if !context.reported_spawn_failed.swap(true, Ordering::Relaxed) {
            crate::report::stderr_line(format_args!(
                "the Prometheus endpoint cannot start a thread for a connection ({e}); it closes \
                 such connections unanswered (reported once)"
            ));
        }
    }
}

/// The connections still waiting for their request head, by when they were accepted.
#[derive(Debug, Default)]
struct Waiting {
    next: u64,
    streams: std::collections::BTreeMap<u64, Arc<TcpStream>>,
}

impl Context {
    /// Shuts down the connection that has waited longest for its request head (its
    /// thread's read returns, and the thread ends); whether there was one.
    fn close_oldest_waiting(&self) -> bool {
        let oldest = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .streams
            .pop_first();
        match oldest {
            Some((_, stream)) => {
                let _ = stream.shutdown(Shutdown::Both);
                true
            }
            None => false,
        }
    }

    /// Puts an answered connection among those a newcomer may close; its new id.
    fn waiting_again(&self, stream: &Arc<TcpStream>) -> u64 {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let id = waiting.next;
        waiting.next += 1;
        waiting.streams.insert(id, Arc::clone(stream));
        id
    }

    fn no_longer_waiting(&self, id: u64) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .streams
            .remove(&id);
    }
}

/// Counts a connection open while it lives.
struct Open<'a>(&'a AtomicUsize);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A `503` written without waiting (what the socket buffer takes), then closed.
fn refuse(stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write(&response_head(&Answer::Busy, "text/plain", BUSY.len(), ""));
    let _ = (&stream).write(BUSY.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

const BUSY: &str = "busy: too many connections or scrapes at once; try again\n";

/// What a request gets.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Metrics { format: Format, head_only: bool },
    NotFound,
    NotAllowed,
    BadRequest,
    Timeout,
    TooLarge,
    Busy,
}

impl Answer {
    fn status(&self) -> &'static str {
        match self {
            Answer::Metrics { .. } => "200 OK",
            Answer::NotFound => "404 Not Found",
            Answer::NotAllowed => "405 Method Not Allowed",
            Answer::BadRequest => "400 Bad Request",
            Answer::Timeout => "408 Request Timeout",
            Answer::TooLarge => "431 Request Header Fields Too Large",
            Answer::Busy => "503 Service Unavailable",
        }
    }

    fn text(&self) -> &'static str {
        match self {
            Answer::Metrics { .. } => "",
            Answer::NotFound => "not found: metrics are served at /metrics\n",
            Answer::NotAllowed => "method not allowed: use GET\n",
            Answer::BadRequest => "bad request: not an HTTP/1.x request\n",
            Answer::Timeout => "request timeout: the request head did not arrive in time\n",
            Answer::TooLarge => "request head too large: at most 8 KiB and 64 headers\n",
            Answer::Busy => BUSY,
        }
    }
}

fn response_head(answer: &Answer, content_type: &str, length: usize, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n{extra}\r\n",
        answer.status()
    )
    .into_bytes()
}

/// One connection: reads one request head, answers it, closes.
fn serve(stream: &Arc<TcpStream>, id: u64, context: &Context) {
    let _ = stream.set_nodelay(true);
    let answer = read_request(stream);
    context.no_longer_waiting(id);
    let Some(answer) = answer else {
        return;
    };
    let response_deadline = Instant::now() + RESPONSE_DEADLINE;
    let written = match answer {
        Answer::Metrics { format, head_only } => {
            // A responder, so that at most RESPONDERS expositions are in memory.
            let (tokens_tx, tokens_rx) = &context.responders;
            if tokens_rx.recv_timeout(RESPONDER_WAIT).is_err() {
                context.counters.rejected.fetch_add(1, Ordering::Relaxed);
                write_text(stream, &Answer::Busy, response_deadline)
            } else {
                let body = context.source.encode(format);
                context.counters.scrapes.fetch_add(1, Ordering::Relaxed);
                let head = response_head(&answer, format.content_type(), body.len(), "");
                let written = write_all_by(stream, &head, response_deadline).and_then(|()| {
                    if head_only {
                        Ok(())
                    } else {
                        write_all_by(stream, body.as_bytes(), response_deadline)
                    }
                });
                drop(body);
                let _ = tokens_tx.send(());
                written
            }
        }
        other => {
            context.counters.rejected.fetch_add(1, Ordering::Relaxed);
            write_text(stream, &other, response_deadline)
        }
    };
    if written.is_err() {
        context.counters.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // Answered: while it lingers, the connection is one a newcomer may close, like a
    // connection still waiting for its request, so that clients that take their
    // answer and never close cannot fill every place.
    let id = context.waiting_again(stream);
    linger(stream);
    context.no_longer_waiting(id);
}

fn write_text(stream: &TcpStream, answer: &Answer, deadline: Instant) -> io::Result<()> {
    let text = answer.text();
    let extra = match answer {
        Answer::NotAllowed => "Allow: GET, HEAD\r\n",
        Answer::Busy => "Retry-After: 1\r\n",
        _ => "",
    };
    let mut response = response_head(answer, "text/plain; charset=utf-8", text.len(), extra);
    response.extend_from_slice(text.as_bytes());
    write_all_by(stream, &response, deadline)
}

/// Reads one request head, within [`HEAD_DEADLINE`] and [`MAX_HEAD`] bytes, and says
/// what it gets; `None` when the client closed or sent nothing in time (then the
/// connection is closed without a word).
fn read_request(stream: &TcpStream) -> Option<Answer> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut buf = vec![0_u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (len > 0).then_some(Answer::Timeout);
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        match (&*stream).read(&mut buf[len..]) {
            Ok(0) => return None,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (len > 0).then_some(Answer::Timeout)
            }
            Err(_) => return None,
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => return Some(answer(&request)),
            Ok(httparse::Status::Partial) if len == MAX_HEAD => return Some(Answer::TooLarge),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Some(Answer::TooLarge),
            Err(_) => return Some(Answer::BadRequest),
        }
    }
}

/// Only `GET` (and `HEAD`) of `/metrics`, any query; other paths 404, other methods 405.
fn answer(request: &httparse::Request<'_, '_>) -> Answer {
    let target = request.path.unwrap_or_default();
    // The absolute form (`http://host/metrics`), which a server must accept.
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => target,
    };
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if path != "/metrics" {
        return Answer::NotFound;
    }
    let head_only = match request.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Answer::NotAllowed,
    };
    let accept = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Accept"))
        .and_then(|h| std::str::from_utf8(h.value).ok());
    Answer::Metrics {
        format: Format::from_accept(accept),
        head_only,
    }
}

/// Writes all of `bytes` by `deadline`, each write waiting at most [`IO_TIMEOUT`].
fn write_all_by(stream: &TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left.min(IO_TIMEOUT)))?;
        let chunk = &bytes[..bytes.len().min(64 << 10)];
        match (&*stream).write(chunk) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Ends the response (`FIN`), then reads what the client still sends for a bounded
/// time and drops it, so that closing does not reset a connection whose client has
/// not read its answer yet.
fn linger(stream: &TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut buf = [0_u8; 4096];
    let mut read = 0;
    while read < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut buf) {
            Ok(0) => return,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Answer {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        assert!(request.parse(head.as_bytes()).unwrap().is_complete());
        answer(&request)
    }

    #[test]
    fn requests_and_answers() {
        let metrics = Answer::Metrics {
            format: Format::Text,
            head_only: false,
        };
        assert_eq!(parse("GET /metrics HTTP/1.1\r\n\r\n"), metrics);
        assert_eq!(parse("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), metrics);
        assert_eq!(parse("GET http://h:1/metrics HTTP/1.1\r\n\r\n"), metrics);
        assert_eq!(parse("GET http://h:1 HTTP/1.1\r\n\r\n"), Answer::NotFound);
        assert_eq!(parse("GET /metrics/x HTTP/1.1\r\n\r\n"), Answer::NotFound);
        assert_eq!(parse("POST /metrics HTTP/1.1\r\n\r\n"), Answer::NotAllowed);
        assert_eq!(
            parse("HEAD /metrics HTTP/1.1\r\naccept: application/openmetrics-text\r\n\r\n"),
            Answer::Metrics {
                format: Format::OpenMetrics,
                head_only: true
            }
        );
        assert_eq!(
            reachable("0.0.0.0:9".parse().unwrap()),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:9".parse().unwrap()),
            "[::1]:9".parse().unwrap()
        );
    }
}
