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
/// the write timeout; the others keep serving.
const SERVING_THREADS: usize = 4;
/// How long a read or write on one connection may block: a client that never sends
/// or never reads is dropped after this.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a serving thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);
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
    stop: Arc<AtomicBool>,
    http: Mutex<Option<Arc<tiny_http::Server>>>,
    done: crossbeam_channel::Receiver<()>,
}

impl Server {
    pub(crate) fn start(
        addr: SocketAddr,
        aggregator: Aggregator,
        counters: Arc<Counters>,
    ) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr).map_err(|e| Error::bind(addr, e))?;
        let local = listener.local_addr().map_err(|e| Error::bind(addr, e))?;
        // Accepted connections inherit these (Linux copies the listening socket's
        // timeouts), so that no client can hold a thread forever.
        let socket = socket2::SockRef::from(&listener);
        socket
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| Error::bind(addr, e))?;
        socket
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| Error::bind(addr, e))?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| Error::spawn(std::io::Error::other(e.to_string())))?;
        let http = Arc::new(http);
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = crossbeam_channel::bounded(SERVING_THREADS);
        for _ in 0..SERVING_THREADS {
            let http = Arc::clone(&http);
            let stopping = Arc::clone(&stop);
            let aggregator = aggregator.clone();
            let counters = Arc::clone(&counters);
            let done_tx = done_tx.clone();
            let spawned = thread::Builder::new()
                .name("telemetry-prometheus".into())
                .spawn(move || {
                    while !stopping.load(Ordering::Relaxed) {
                        if let Ok(Some(request)) = http.recv_timeout(POLL) {
                            answer(request, &aggregator, &counters);
                        }
                    }
                    drop(http);
                    let _ = done_tx.send(());
                });
            if let Err(e) = spawned {
                stop.store(true, Ordering::Relaxed);
                return Err(Error::spawn(e));
            }
        }
        Ok(Server {
            addr: local,
            stop,
            http: Mutex::new(Some(http)),
            done,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving: waits at most [`SHUTDOWN_WAIT`] for the serving threads; the
    /// listening socket closes when the last of them has finished its response.
    pub(crate) fn shutdown(&self) {
        if self.stop.swap(true, Ordering::Relaxed) {
            return;
        }
        let http = self.http.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(http) = &http {
            http.unblock();
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

fn answer(request: Request, aggregator: &Aggregator, counters: &Counters) {
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
