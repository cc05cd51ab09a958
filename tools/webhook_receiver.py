#!/usr/bin/env python3
"""A webhook receiver for orgctl's end-to-end tests: HTTPS on loopback, every request verified
with the third-party `standardwebhooks` package (PyPI), each behaviour chosen by the URL path.

    webhook_receiver.py --cert C --key K --secret-env NAME --log FILE --port-file FILE [--clock-file FILE]
                        [--bind ADDRESS] [--port PORT]

Paths (the last segment picks the behaviour; anything before it is free):
    .../ok           200
    .../fail-N       500 for the first N requests of each webhook-id, then 200
    .../throttle     429 with Retry-After: 3600 for the first request of each webhook-id, then 200
    .../gone         410
    .../hang         sleeps 30 s before answering (past the webhook's timeout)
    .../slow         sleeps 0.2 s, then 200 (requests stay in flight a while)
    .../redirect     302 to https://127.0.0.1:<port>/ok (must not be followed)
    .../close        closes the connection without an answer
    .../huge         200 with a 5 MB body

Each request appends one JSON line to the log: path, the webhook-* headers, whether the signature
verified (and the library's error when not), the event type, the raw body, and the number of the
TLS connection it came on (1, 2, … in the order they were accepted: fewer connections than
requests means the client kept connections alive). The verifier's clock
is the time in --clock-file (RFC 3339) when that file exists, so deliveries made with a pinned
ORGCTL_NOW are checked against the same clock with the library's own tolerance.
"""
import argparse
import datetime as real_datetime
import json
import os
import socketserver
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

try:
    import standardwebhooks.webhooks as swh
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    sys.stderr.write("webhook_receiver: the standardwebhooks package is missing (pip install standardwebhooks)\n")
    sys.exit(3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret-env", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--clock-file")
    parser.add_argument("--bind", default="127.0.0.1", help="the loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="the port (0: a free one, written to --port-file)")
    args = parser.parse_args()

    clock_file = args.clock_file

    class Clock(real_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            if clock_file and os.path.exists(clock_file):
                with open(clock_file) as handle:
                    text = handle.read().strip().replace("Z", "+00:00")
                return real_datetime.datetime.fromisoformat(text).astimezone(tz)
            return real_datetime.datetime.now(tz)

    swh.datetime = Clock
    webhook = Webhook(os.environ[args.secret_env])
    lock = threading.Lock()
    seen = {}
    connections = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer.
        disable_nagle_algorithm = True

        def log_message(self, *_):
            pass

        def setup(self):
            super().setup()
            with lock:
                connections[0] += 1
                self.connection_number = connections[0]

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            record = {"path": self.path, "id": headers.get("webhook-id"), "timestamp": headers.get("webhook-timestamp"),
                      "signature": headers.get("webhook-signature"), "body": body.decode("utf-8", "replace"),
                      "connection": self.connection_number}
            try:
                payload = webhook.verify(body, headers)
                record["verified"] = True
                record["type"] = payload.get("type")
            except (WebhookVerificationError, ValueError) as error:
                record["verified"] = False
                record["error"] = str(error)
            behaviour = self.path.rstrip("/").rsplit("/", 1)[-1]
            with lock:
                count = seen.get((behaviour, record["id"]), 0)
                seen[(behaviour, record["id"])] = count + 1
                with open(args.log, "a") as log:
                    log.write(json.dumps(record) + "\n")
            if behaviour == "ok":
                self.answer(200, b"ok")
            elif behaviour.startswith("fail-"):
                self.answer(500 if count < int(behaviour[5:]) else 200, b"failing on purpose" if count < int(behaviour[5:]) else b"ok")
            elif behaviour == "throttle":
                if count == 0:
                    self.answer(429, b"slow down", {"Retry-After": "3600"})
                else:
                    self.answer(200, b"ok")
            elif behaviour == "gone":
                self.answer(410, b"gone")
            elif behaviour == "hang":
                time.sleep(30)
                self.answer(200, b"too late")
            elif behaviour == "slow":
                time.sleep(0.2)
                self.answer(200, b"ok")
            elif behaviour == "redirect":
                self.answer(302, b"", {"Location": "https://127.0.0.1:%d/ok" % self.server.server_address[1]})
            elif behaviour == "close":
                self.close_connection = True
                self.connection.close()
            elif behaviour == "huge":
                self.answer(200, b"x" * (5 * 1024 * 1024))
            else:
                self.answer(404, b"no such behaviour")

        def answer(self, status, body, headers=None):
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    class Server(socketserver.ThreadingMixIn, HTTPServer):
        daemon_threads = True

    server = Server((args.bind, args.port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(args.port_file + ".tmp", "w") as handle:
        handle.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
