//! The HTTP endpoint: `tiny_http` accepts connections and parses requests on its own
//! threads; a few serving threads answer them.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response};

use super::exposition::{encode, Format, OwnNumbers};
use crate::aggregate::Aggregator;
use crate::error::Error;

/// Threads answering requests. A client that stops reading holds one of them until
/// its writes time out; the others keep serving.
const SERVING_THREADS: usize = 8;
/// How long one write to a connection may block. `tiny_http` may try a write more
/// than once before it gives up (with 10 s, a client that never read a 16 MB
/// exposition held its thread for 50 s), so this is kept short.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `shutdown` waits for the serving threads.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) scrapes: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) failed: AtomicU64,
}

pub(crate) struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    done: crossbeam_channel::Receiver<()>,
}

/// What the serving threads share.
struct Shared {
    stop: AtomicBool,
    /// The listening socket, kept here so that the port stays bound while `tiny_http`
    /// is restarted on a copy of it; `None` once shut down.
    listener: Mutex<Option<TcpListener>>,
    /// The running `tiny_http` server; `None` once shut down.
    http: Mutex<Option<Arc<tiny_http::Server>>>,
    restart_reported: AtomicBool,
}

impl Shared {
    fn current(&self) -> Option<Arc<tiny_http::Server>> {
        self.http.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `http` is still the running server.
    fn is_current(&self, http: &Arc<tiny_http::Server>) -> bool {
        let current = self.http.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().is_some_and(|h| Arc::ptr_eq(h, http))
    }

    /// `tiny_http`'s accept thread stops for good at its first failed `accept` (out
    /// of file descriptors, say), and says so through `recv`. Then a new one is
    /// started on a copy of the same listening socket, after a pause so that a
    /// lasting failure does not spin. Returns whether `failed` is no longer the
    /// running server (restarted, by this thread or another, or shut down); `false`
    /// means the restart failed (copying the socket needs a file descriptor too) and
    /// should be tried again.
    fn restart_if_current(&self, failed: &Arc<tiny_http::Server>, error: &std::io::Error) -> bool {
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let is_current = http.as_ref().is_some_and(|h| Arc::ptr_eq(h, failed));
        if !is_current || self.stop.load(Ordering::Relaxed) {
            return true;
        }
        thread::sleep(RESTART_PAUSE);
        let copy = match self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(listener) => listener.try_clone(),
            None => return true,
        };
        let Ok(Ok(new)) = copy.map(|l| tiny_http::Server::from_listener(l, None)) else {
            return false;
        };
        *http = Some(Arc::new(new));
        drop(http);
        // Wake every thread still waiting on the old server's queue.
        for _ in 0..SERVING_THREADS {
            failed.unblock();
        }
        // Reported with no lock held: standard error may block.
        if !self.restart_reported.swap(true, Ordering::Relaxed) {
            crate::report::stderr_line(format_args!(
                "the Prometheus endpoint stopped accepting connections ({error}); restarted it \
                 (reported once)"
            ));
        }
        true
    }
}

/// The pause before restarting a failed accept loop.
const RESTART_PAUSE: Duration = Duration::from_millis(100);

impl Server {
    pub(crate) fn start(
        addr: SocketAddr,
        aggregator: Aggregator,
        target_info: Arc<[(String, String)]>,
        counters: Arc<Counters>,
    ) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr).map_err(|e| Error::bind(addr, e))?;
        let local = listener.local_addr().map_err(|e| Error::bind(addr, e))?;
        // Accepted connections inherit the send timeout (Linux copies it from the
        // listening socket), so that a client that never reads cannot hold a serving
        // thread for long. Not the receive timeout: on a listening socket it would
        // make `accept` itself time out, which stops `tiny_http`'s accept loop.
        socket2::SockRef::from(&listener)
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| Error::bind(addr, e))?;
        let http = listener
            .try_clone()
            .map_err(|e| Error::bind(addr, e))
            .and_then(|copy| {
                tiny_http::Server::from_listener(copy, None)
                    .map_err(|e| Error::spawn(std::io::Error::other(e.to_string())))
            })?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            listener: Mutex::new(Some(listener)),
            http: Mutex::new(Some(Arc::new(http))),
            restart_reported: AtomicBool::new(false),
        });
        let (done_tx, done) = crossbeam_channel::bounded(SERVING_THREADS);
        let server = Server {
            addr: local,
            shared: Arc::clone(&shared),
            done,
        };
        for _ in 0..SERVING_THREADS {
            let shared = Arc::clone(&shared);
            let aggregator = aggregator.clone();
            let target_info = Arc::clone(&target_info);
            let counters = Arc::clone(&counters);
            let done_tx = done_tx.clone();
            let spawned = thread::Builder::new()
                .name("telemetry-prometheus".into())
                .spawn(move || {
                    serve(&shared, &aggregator, &target_info, &counters);
                    drop(shared);
                    let _ = done_tx.send(());
                });
            if let Err(e) = spawned {
                // Dropping `server` stops the threads already started.
                drop(server);
                return Err(Error::spawn(e));
            }
        }
        Ok(server)
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving: waits at most [`SHUTDOWN_WAIT`] for the serving threads; the
    /// listening socket closes when the last of them has finished its response.
    pub(crate) fn shutdown(&self) {
        let shared = &self.shared;
        if shared.stop.swap(true, Ordering::Relaxed) {
            return;
        }
        let http = shared.http.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(
            shared
                .listener
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        if let Some(http) = &http {
            for _ in 0..SERVING_THREADS {
                http.unblock();
            }
        }
        drop(http);
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        for _ in 0..SERVING_THREADS {
            if self.done.recv_deadline(deadline).is_err() {
                break;
            }
        }
    }
}

/// A serving thread: answers requests until shut down.
fn serve(
    shared: &Shared,
    aggregator: &Aggregator,
    target_info: &Arc<[(String, String)]>,
    counters: &Counters,
) {
    while !shared.stop.load(Ordering::Relaxed) {
        let Some(http) = shared.current() else {
            return;
        };
        match http.recv() {
            Ok(request) => answer(request, aggregator, target_info, counters),
            // Unblocked by `shutdown` or by a restart, or the accept loop failed: then
            // keep trying to restart it (waiting on the stopped server's queue would
            // wait forever).
            Err(e) => while !shared.restart_if_current(&http, &e) && shared.is_current(&http) {},
        }
    }
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

fn answer(
    request: Request,
    aggregator: &Aggregator,
    target_info: &Arc<[(String, String)]>,
    counters: &Counters,
) {
    let path = request.url().split('?').next().unwrap_or_default();
    let response = if path != "/metrics" {
        counters.rejected.fetch_add(1, Ordering::Relaxed);
        Response::from_string("not found: metrics are served at /metrics\n").with_status_code(404)
    } else if !matches!(request.method(), Method::Get | Method::Head) {
        counters.rejected.fetch_add(1, Ordering::Relaxed);
        with_header(
            Response::from_string("method not allowed: use GET\n").with_status_code(405),
            "Allow",
            "GET, HEAD",
        )
    } else {
        let accept = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Accept"))
            .map(|h| h.value.as_str());
        let format = Format::from_accept(accept);
        let own = OwnNumbers {
            overflowed: aggregator.overflowed(),
            dropped: aggregator.dropped(),
            series: aggregator.series_count() as u64,
            target_info: Arc::clone(target_info),
        };
        let body = encode(aggregator.snapshot(), own, format);
        counters.scrapes.fetch_add(1, Ordering::Relaxed);
        with_header(
            Response::from_string(body),
            "Content-Type",
            format.content_type(),
        )
    };
    if request.respond(response).is_err() {
        counters.failed.fetch_add(1, Ordering::Relaxed);
    }
}

fn with_header<R: std::io::Read>(response: Response<R>, name: &str, value: &str) -> Response<R> {
    // Both are fixed ASCII strings, so the header always parses.
    match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        Ok(header) => response.with_header(header),
        Err(()) => response,
    }
}
