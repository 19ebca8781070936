"""A small HTTP client for the cluster test: one connection per request, from
a chosen loopback source address, recording status, headers, body and time.
"""

import base64
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field

# The address clients speak from unless a check says otherwise; gatehouse
# must see it, not nginx's 127.0.0.1.
CLIENT_ADDRESS = "127.0.0.2"
PASSWORD = "correct horse battery staple"


@dataclass
class Endpoint:
    """Somewhere requests can go: one gatehouse instance or nginx."""

    name: str
    port: int

    def __str__(self):
        return self.name


@dataclass
class Answer:
    endpoint: str
    method: str
    path: str
    started: float  # time.monotonic() when the request was sent
    elapsed: float
    status: int | None = None  # None: no answer (refused, reset, timed out)
    headers: dict = field(default_factory=dict)
    body: object = None
    error: str | None = None

    @property
    def code(self):
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def retry_after(self):
        return self.headers.get("retry-after")

    @property
    def is_server_error(self):
        """A 5xx, or no answer at all."""
        return self.status is None or self.status >= 500

    @property
    def is_unavailable_with_retry_after(self):
        return self.status == 503 and self.retry_after is not None

    def describe(self):
        if self.status is None:
            return f"{self.method} {self.path} on {self.endpoint}: no answer ({self.error}) after {self.elapsed:.1f} s"
        code = f" {self.code}" if self.code else ""
        return f"{self.method} {self.path} on {self.endpoint}: {self.status}{code} after {self.elapsed:.2f} s"

    def __getitem__(self, key):
        return self.body[key]


def request(
    endpoint,
    method,
    path,
    body=None,
    token=None,
    source=CLIENT_ADDRESS,
    headers=None,
    timeout=15.0,
    barrier=None,
):
    """Sends one request on a fresh connection. With a barrier, the
    connection is opened first and the request sent once every party of the
    barrier is connected, so that racing requests really arrive together."""
    all_headers = {"Connection": "close"}
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    payload = None if body is None else json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=timeout, source_address=(source, 0))
    started = time.monotonic()
    try:
        conn.connect()
        if barrier is not None:
            barrier.wait(timeout)
            started = time.monotonic()
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        raw = response.read()
        answer = Answer(
            endpoint.name,
            method,
            path,
            started,
            time.monotonic() - started,
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
        )
        try:
            answer.body = json.loads(raw) if raw else None
        except ValueError:
            answer.body = raw.decode("utf-8", "replace")
        return answer
    except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
        kind = "timeout" if isinstance(e, socket.timeout) else type(e).__name__
        return Answer(endpoint.name, method, path, started, time.monotonic() - started, error=f"{kind}: {e}")
    finally:
        conn.close()


def at_once(*calls):
    """Runs request-making callables in threads, each given the same barrier
    as its only argument, and returns their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers = [None] * len(calls)

    def run(i):
        answers[i] = calls[i](barrier)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


# --- the routes the checks use ---------------------------------------------------


def register(endpoint, username, password=PASSWORD, **kw):
    return request(endpoint, "POST", "/auth/register", {"username": username, "password": password}, **kw)


def login(endpoint, username, password=PASSWORD, **kw):
    return request(endpoint, "POST", "/auth/login", {"username": username, "password": password}, **kw)


def refresh(endpoint, refresh_token, **kw):
    return request(endpoint, "POST", "/auth/refresh", {"refresh_token": refresh_token}, **kw)


def me(endpoint, token, **kw):
    return request(endpoint, "GET", "/me", token=token, **kw)


def protected(endpoint, token, **kw):
    return request(endpoint, "GET", "/protected", token=token, **kw)


def ready(endpoint, **kw):
    return request(endpoint, "GET", "/health/ready", **kw)


def jwks_kids(endpoint):
    """The key ids an instance publishes, or None when it did not answer."""
    answer = request(endpoint, "GET", "/.well-known/jwks.json", timeout=5)
    if answer.status != 200 or not isinstance(answer.body, dict):
        return None
    return {key.get("kid") for key in answer.body.get("keys", [])}


def token_header(token):
    """The JOSE header of a JWT (not verified: the servers do that)."""
    first = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))


def token_kid(token):
    return token_header(token).get("kid")
