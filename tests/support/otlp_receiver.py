"""A real OTLP/HTTP receiver for tests/otlp.rs: oteltest's HttpSink on 127.0.0.1.

Usage: python receiver.py [PORT]   (0 or nothing: a free port)

Prints `LISTENING <port>` once it accepts connections, then one JSON line per request
it receives: {"signal": "logs"|"metrics"|"traces", "headers": {...}, "request": <the
decoded ExportXServiceRequest as protobuf's JSON mapping>}. Runs until killed or until
its standard input closes.
"""

import json
import logging
import sys
import threading

from google.protobuf.json_format import MessageToDict

import oteltest.sink as sink_module
from oteltest.sink import HttpSink
from oteltest.sink.handler import RequestHandler


class LoopbackServer(sink_module.HTTPServer):
    """HttpSink binds every interface; tests listen on loopback only."""

    def __init__(self, address, handler):
        super().__init__(("127.0.0.1", address[1]), handler)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-request is a test's business, not noise.
        pass


sink_module.HTTPServer = LoopbackServer

lock = threading.Lock()


def emit(signal, request, headers):
    line = json.dumps(
        {
            "signal": signal,
            "headers": {k.lower(): v for k, v in headers.items()},
            "request": MessageToDict(request),
        }
    )
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class JsonLinesHandler(RequestHandler):
    def handle_logs(self, request, headers):
        emit("logs", request, headers)

    def handle_metrics(self, request, headers):
        emit("metrics", request, headers)

    def handle_trace(self, request, headers):
        emit("traces", request, headers)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logger = logging.getLogger("receiver")
    sink = HttpSink(JsonLinesHandler(), logger, port=port, daemon=True)
    sink.start()
    while sink.httpd is None:
        threading.Event().wait(0.01)
    with lock:
        sys.stdout.write(f"LISTENING {sink.httpd.server_address[1]}\n")
        sys.stdout.flush()
    # Stop when the test closes our standard input (or dies).
    sys.stdin.read()
    sink.httpd.shutdown()


if __name__ == "__main__":
    main()
