#!/usr/bin/env python3
"""gatehouse as a cluster: three instances on one database, behind nginx.

Run by tests/cluster/run, which installs what is missing, makes the work
directory and cleans up. For each topology named on the command line:

  galera   a three-node MariaDB Galera cluster, instance i on node i
  mariadb  one private MariaDB server, all three instances on it

the instances are started at the same moment on an empty database, nginx
is put in front of them, and the same checks run: tokens and revocations
across instances, the lockout shared through the database, racing refreshes,
registrations and demotions, key rotation with EdDSA, and database faults
under load. One line per check, PASS or FAIL; exit status 1 on any FAIL.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from client import (
    PASSWORD,
    Endpoint,
    at_once,
    jwks_kids,
    login,
    me,
    protected,
    ready,
    refresh,
    register,
    request,
    token_kid,
)
from cluster import (
    GaleraCluster,
    Gatehouse,
    Nginx,
    PlainMariaDb,
    ProcessTable,
    StartupError,
    require_free_ports,
    tail,
)

# --- what the contract promises, and the margins the test allows ------------------

SESSION_CACHE_MS = 1000
REVOCATION_MARGIN = 0.5  # polling and scheduling on a busy 2-core machine
LOCKOUT_THRESHOLD = 5
RACE_ROUNDS = 10
KEY_LEAD_SECONDS = 4
KEY_SWITCH_MARGIN = 1.0  # the switch time is kept to the whole second
JWKS_PUBLISH_LIMIT = 5.0
ROTATE_NOW_LIMIT = 5.0
# An instance whose database is gone answers 503 within 3 s (it waits 2 s
# for a connection).
DEAD_DATABASE_ANSWER_LIMIT = 3.0
# A paused database answers nothing, and gatehouse gives up on a database
# operation after 20 s: every request is answered (503 or success) within
# that and a little more. The pause is longer, so a request that merely
# waits for the database to come back fails the check.
PAUSED_DATABASE_ANSWER_LIMIT = 22.0
DATABASE_PAUSE_SECONDS = 25.0
LOAD_CLIENTS_PER_INSTANCE = 3
LOAD_ADDRESS = "127.0.0.4"
NODE_DOWN_SECONDS = 10.0  # longer than Galera's 5 s to declare a silent node dead
RECOVERY_LIMIT = 60.0
INSTANCE_START_LIMIT = 60.0

# Settings of every instance. All test traffic comes from a handful of
# loopback addresses, so the per-client rate limit would only get in the way
# (the account lockout stays on). Password hashing is made cheap: its cost is
# not under test, and two cores carry three instances, three database nodes
# and the load.
COMMON_SETTINGS = {
    "TRUSTED_PROXIES": "127.0.0.1/32",
    "SESSION_CACHE_MS": str(SESSION_CACHE_MS),
    "LOCKOUT_THRESHOLD": str(LOCKOUT_THRESHOLD),
    "RATE_LIMIT_PER_MINUTE": "0",
    "ARGON2_MEMORY_KIB": "8192",
    "ARGON2_ITERATIONS": "1",
    "NO_COLOR": "1",
}
EDDSA_SETTINGS = {"JWT_ALGORITHM": "EdDSA", "KEY_PUBLISH_LEAD_SECONDS": str(KEY_LEAD_SECONDS)}

TOPOLOGY_PORTS = {
    "galera": {"nginx": 18100, "instances": [18101, 18102, 18103], "eddsa": [18104, 18105, 18106]},
    "mariadb": {"nginx": 18110, "instances": [18111, 18112, 18113], "eddsa": [18114, 18115, 18116]},
}
GALERA_NODE_PORTS = [{"sql": 3411 + i, "galera": 4611 + i, "ist": 4621 + i, "sst": 4631 + i} for i in range(3)]
PLAIN_MARIADB_PORT = 3420
DATABASE = "gatehouse"
EDDSA_DATABASE = "gatehouse_eddsa"


class CheckFailed(Exception):
    """A check cannot go on; the message says what went wrong."""


def now():
    return time.monotonic()


# --- reporting ----------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def relevant_log_lines(path, count=6):
    """The latest warnings and errors of a log, else its last lines."""
    lines = [ANSI.sub("", line) for line in tail(path, 300).splitlines()]
    loud = [line for line in lines if re.search(r"\b(WARN|ERROR|panicked)\b", line)]
    return (loud or lines)[-count:]


class Report:
    def __init__(self):
        self.lines = []
        self.failures = 0

    def record(self, topology, ok, name, detail, logs=()):
        line = f"{'PASS' if ok else 'FAIL'}  [{topology}] {name}: {detail}"
        self.lines.append(line)
        print(line, flush=True)
        if not ok:
            self.failures += 1
            for path in logs:
                print(f"      --- {path}")
                for log_line in relevant_log_lines(path):
                    print(f"      {log_line[:300]}")

    def summary(self):
        passed = len(self.lines) - self.failures
        return "\n".join(["", "== summary", *self.lines, f"{passed} passed, {self.failures} failed"])


# --- the system under test -------------------------------------------------------------


class Stack:
    """One topology: its database, three gatehouse instances and nginx."""

    def __init__(self, topology, work, binary, report):
        self.topology = topology
        self.work = os.path.join(work, topology)
        os.makedirs(self.work)
        self.binary = binary
        self.report = report
        self.processes = ProcessTable(work)
        ports = TOPOLOGY_PORTS[topology]
        if topology == "galera":
            self.database = GaleraCluster(self.processes, self.work, GALERA_NODE_PORTS)
        else:
            self.database = PlainMariaDb(self.processes, self.work, PLAIN_MARIADB_PORT)
        self.instances = self.make_instances("gh", ports["instances"], DATABASE, {})
        self.endpoints = [Endpoint(gh.name, gh.port) for gh in self.instances]
        self.nginx = Nginx(self.processes, self.work, ports["nginx"], ports["instances"])
        self.via_nginx = Endpoint("nginx", ports["nginx"])
        self.names = 0
        self.admins = []  # [(username, id)], exactly two
        self.admin_token = None

    def make_instances(self, prefix, ports, database, settings):
        return [
            Gatehouse(
                self.processes,
                self.binary,
                self.work,
                f"{prefix}{i + 1}",
                port,
                self.database.nodes[i].url(database),
                {**COMMON_SETTINGS, **settings},
            )
            for i, port in enumerate(ports)
        ]

    def all_ports(self):
        ports = TOPOLOGY_PORTS[self.topology]
        return self.database.ports() + [ports["nginx"], *ports["instances"], *ports["eddsa"]]

    def record(self, ok, name, detail, logs=None):
        if logs is None:
            logs = [gh.log for gh in self.instances]
        self.report.record(self.topology, ok, name, detail, logs)

    def stop(self):
        self.processes.stop_all()

    # --- accounts ---

    def new_name(self, tag):
        self.names += 1
        return f"{self.topology[0]}{tag}{self.names}"

    def new_user(self, tag, endpoint=None):
        """Registers a fresh account; returns (username, id)."""
        username = self.new_name(tag)
        answer = register(endpoint or self.endpoints[0], username)
        if answer.status != 201:
            raise CheckFailed(f"could not register {username}: {answer.describe()}")
        return username, answer["user"]["id"]

    def access_token(self, endpoint, username, password=PASSWORD):
        answer = login(endpoint, username, password)
        if answer.status != 200:
            raise CheckFailed(f"login of {username}: {answer.describe()}")
        return answer["access_token"]

    def create_admins(self):
        for letter in "ab":
            username = f"{self.topology[0]}admin{letter}"
            result = self.instances[0].cli(
                "user", "create", "--username", username, "--role", "admin", GATEHOUSE_PASSWORD=PASSWORD
            )
            if result.returncode != 0:
                raise StartupError(f"gatehouse user create failed: {result.stdout}{result.stderr}")
            token = self.access_token(self.endpoints[0], username)
            self.admins.append((username, me(self.endpoints[0], token)["id"]))
        self.admin_token = self.access_token(self.endpoints[0], self.admins[0][0])

    def as_admin(self, endpoint, method, path, body=None):
        """An admin request on the first admin's session, logging in again
        when a check has ended that session (the demotion race does)."""
        answer = request(endpoint, method, path, body, token=self.admin_token)
        if answer.status in (401, 403):
            self.admin_token = self.access_token(self.endpoints[0], self.admins[0][0])
            answer = request(endpoint, method, path, body, token=self.admin_token)
        return answer


# --- starting up ------------------------------------------------------------------------


def start_together(stack, instances, label):
    """Starts the instances at the same moment on an empty database; each
    must come up and serve. Any that did not are started again one by one,
    so that the other checks can still run."""
    started = now()
    for gh in instances:
        gh.start()
    outcome = wait_until_ready(instances, started, INSTANCE_START_LIMIT)
    serving = [gh for gh in instances if outcome[gh.name][0] == "ready"]
    details = ", ".join(
        f"{gh.name} {'ready after %.1f s' % outcome[gh.name][1] if outcome[gh.name][0] == 'ready' else outcome[gh.name][0]}"
        for gh in instances
    )
    stack.record(
        len(serving) == len(instances),
        f"concurrent start ({label})",
        f"{len(serving)}/{len(instances)} serving: {details}",
        [gh.log for gh in instances if gh not in serving],
    )
    for gh in instances:
        if gh in serving:
            continue
        gh.stop()
        gh.start()
        again = wait_until_ready([gh], now(), INSTANCE_START_LIMIT)[gh.name]
        if again[0] != "ready":
            raise StartupError(f"{gh.name} does not start even alone ({again[0]}):\n{tail(gh.log)}")


def wait_until_ready(instances, started, limit):
    """{name: ("ready", seconds) | ("exited with N", None) | ("not ready", None)}"""
    outcome = {}
    pending = list(instances)
    while pending and now() - started < limit:
        for gh in list(pending):
            status = gh.exit_status()
            if status is not None:
                outcome[gh.name] = (f"exited with {status}", None)
                pending.remove(gh)
            elif ready(Endpoint(gh.name, gh.port), timeout=2).status == 200:
                outcome[gh.name] = ("ready", now() - started)
                pending.remove(gh)
        time.sleep(0.2)
    for gh in pending:
        outcome[gh.name] = (f"not ready after {limit:.0f} s", None)
    return outcome


# --- checks: requests through nginx reach gatehouse with the client's address ------------


def audit_ip_of(stack, user_id, request_id):
    """The ip of the audit event written by one request, found by its request id."""
    deadline = now() + 3
    while now() < deadline:
        answer = stack.as_admin(stack.endpoints[0], "GET", f"/admin/audit?user_id={user_id}&limit=100")
        if answer.status != 200:
            raise CheckFailed(f"reading the audit log: {answer.describe()}")
        for event in answer["events"]:
            if event.get("request_id") == request_id:
                return event.get("ip")
        time.sleep(0.2)
    return "no event"


def check_client_address(stack):
    username, user_id = stack.new_user("fwd")
    forged = {"X-Forwarded-For": "203.0.113.9"}
    cases = [
        ("via nginx", stack.via_nginx, "127.0.0.2", {}, "127.0.0.2"),
        ("forged XFF direct", stack.endpoints[0], "127.0.0.3", forged, "127.0.0.3"),
        ("forged XFF via nginx", stack.via_nginx, "127.0.0.3", forged, "127.0.0.3"),
    ]
    results = []
    for n, (label, endpoint, source, headers, expected) in enumerate(cases):
        request_id = f"cluster-{stack.topology}-fwd-{n}"
        answer = login(endpoint, username, source=source, headers={**headers, "X-Request-Id": request_id})
        if answer.status != 200:
            results.append((False, f"{label}: {answer.describe()}"))
            continue
        ip = audit_ip_of(stack, user_id, request_id)
        results.append((ip == expected, f"{label} from {source} -> audit ip {ip}"))
    stack.record(all(ok for ok, _ in results), "client address in audit", "; ".join(d for _, d in results))


# --- checks: tokens and revocation across instances --------------------------------------


def check_tokens_accepted_everywhere(stack):
    everywhere = stack.endpoints + [stack.via_nginx]
    username, _ = stack.new_user("tok")
    refused = []
    checked = 0
    for issuer in everywhere:
        token = stack.access_token(issuer, username)
        # Straight after the login: on Galera the session row was written on
        # another node a moment ago.
        for verifier in everywhere:
            answer = protected(verifier, token)
            checked += 1
            if answer.status != 200:
                refused.append(f"{issuer}->{answer.describe()}")
    stack.record(
        not refused,
        "token from any instance accepted by all",
        f"{checked} verifications, {len(refused)} refused" + (f" ({'; '.join(refused[:3])})" if refused else ""),
    )


def accepted_on_all(stack, token):
    for endpoint in stack.endpoints:
        answer = me(endpoint, token)
        if answer.status != 200:
            raise CheckFailed(f"token refused before its revocation: {answer.describe()}")


def wait_until_refused_everywhere(stack, token, since):
    """Polls every instance with the token until each says 401; returns
    {instance: seconds after `since`} and the other answers seen."""
    limit = SESSION_CACHE_MS / 1000 + REVOCATION_MARGIN
    refused_after = {}
    unexpected = []
    while len(refused_after) < len(stack.endpoints) and now() - since < limit + 1:
        for endpoint in stack.endpoints:
            if endpoint.name in refused_after:
                continue
            answer = me(endpoint, token, timeout=3)
            if answer.status == 401:
                refused_after[endpoint.name] = answer.started - since
            elif answer.status != 200:
                unexpected.append(answer.describe())
        time.sleep(0.05)
    return refused_after, unexpected


def check_revocation(stack, what, revoke):
    """`revoke()` ends the session of a token on one instance and returns
    (that token, the instance that acted, its answer, the status expected)."""
    token, actor, answer, expected_status = revoke()
    since = now()
    if answer.status != expected_status:
        stack.record(False, f"revocation by {what}", f"the revoking request failed: {answer.describe()}")
        return
    refused_after, unexpected = wait_until_refused_everywhere(stack, token, since)
    limit = SESSION_CACHE_MS / 1000 + REVOCATION_MARGIN
    late = [e.name for e in stack.endpoints if refused_after.get(e.name, limit + 1) > limit]
    # The instance that made the change holds it from the very next request.
    actor_at_once = refused_after.get(actor.name, 1) < 0.2
    via_nginx = [me(stack.via_nginx, token).status for _ in range(3)]
    timings = ", ".join(
        f"{e.name} {refused_after[e.name]:.2f} s" if e.name in refused_after else f"{e.name} not within {limit + 1:.1f} s"
        for e in stack.endpoints
    )
    ok = not late and actor_at_once and not unexpected and via_nginx == [401, 401, 401]
    detail = f"on {actor.name}; refused after {timings} (limit {limit:.1f} s); via nginx {via_nginx}"
    if unexpected:
        detail += f"; unexpected answers: {'; '.join(unexpected[:3])}"
    stack.record(ok, f"revocation by {what}", detail)


def revoke_by_logout(stack):
    username, _ = stack.new_user("out")
    token = stack.access_token(stack.endpoints[1], username)
    accepted_on_all(stack, token)
    actor = stack.endpoints[0]
    return token, actor, request(actor, "POST", "/auth/logout", {}, token=token), 204


def revoke_by_admin_disable(stack):
    username, user_id = stack.new_user("dis")
    token = stack.access_token(stack.endpoints[2], username)
    accepted_on_all(stack, token)
    actor = stack.endpoints[1]
    return token, actor, stack.as_admin(actor, "PATCH", f"/admin/users/{user_id}", {"disabled": True}), 200


def revoke_by_password_change(stack):
    username, _ = stack.new_user("pw")
    changer = stack.access_token(stack.endpoints[0], username)
    other_session = stack.access_token(stack.endpoints[0], username)
    accepted_on_all(stack, other_session)
    actor = stack.endpoints[2]
    body = {"current_password": PASSWORD, "new_password": "another fine pass phrase"}
    return other_session, actor, request(actor, "PUT", "/me/password", body, token=changer), 204


# --- checks: the lockout is shared --------------------------------------------------------


def check_lockout_across_instances(stack):
    username, _ = stack.new_user("lock")
    wrong = []
    for i in range(LOCKOUT_THRESHOLD):
        answer = login(stack.endpoints[i % 3], username, "not the password at all")
        wrong.append(answer.status)
    locked = {}
    for endpoint in stack.endpoints + [stack.via_nginx]:
        answer = login(endpoint, username)
        locked[endpoint.name] = f"{answer.status}{'+Retry-After' if answer.retry_after else ''}"
    ok = all(s == 401 for s in wrong) and all(v == "429+Retry-After" for v in locked.values())
    stack.record(
        ok,
        "lockout counted across instances",
        f"{LOCKOUT_THRESHOLD} wrong passwords over gh1-gh3 answered {wrong}; "
        f"then the right one: {', '.join(f'{k} {v}' for k, v in locked.items())}",
    )


# --- checks: races between instances ------------------------------------------------------


def instance_pairs(stack):
    """Pairs of different instances (on Galera: different nodes), in turn."""
    e = stack.endpoints
    while True:
        yield from [(e[0], e[1]), (e[1], e[2]), (e[2], e[0])]


def check_refresh_race(stack):
    username, _ = stack.new_user("ref")
    pair = login(stack.endpoints[0], username)
    if pair.status != 200:
        raise CheckFailed(pair.describe())
    refresh_token = pair["refresh_token"]
    counts = {"same pair": 0, "single pair": 0, "two different pairs": 0, "none": 0, "5xx": 0}
    notes = []
    pairs = instance_pairs(stack)
    for round_ in range(RACE_ROUNDS):
        a, b = next(pairs)
        answers = at_once(lambda bar: refresh(a, refresh_token, barrier=bar), lambda bar: refresh(b, refresh_token, barrier=bar))
        ok = [x for x in answers if x.status == 200]
        if any(x.is_server_error for x in answers):
            counts["5xx"] += 1
            notes.append(f"round {round_ + 1}: " + "; ".join(x.describe() for x in answers))
        if len(ok) == 2:
            same = (ok[0]["refresh_token"], ok[0]["access_token"]) == (ok[1]["refresh_token"], ok[1]["access_token"])
            counts["same pair" if same else "two different pairs"] += 1
            if not same:
                notes.append(f"round {round_ + 1}: two different pairs from {a} and {b}")
        elif len(ok) == 1:
            counts["single pair"] += 1
        else:
            counts["none"] += 1
            if not any(x.is_server_error for x in answers):
                notes.append(f"round {round_ + 1}: " + "; ".join(x.describe() for x in answers))
        if ok:
            refresh_token = ok[0]["refresh_token"]
        else:
            # Nothing to go on with: start a new session for the next round.
            refresh_token = login(stack.endpoints[0], username)["refresh_token"]
    ok = counts["two different pairs"] == 0 and counts["none"] == 0 and counts["5xx"] == 0
    stack.record(
        ok,
        "refresh race",
        f"{RACE_ROUNDS} rounds: {counts['same pair']} same pair, {counts['single pair']} single pair, "
        f"{counts['two different pairs']} two pairs, {counts['none']} no pair, {counts['5xx']} with 5xx"
        + (f" ({'; '.join(notes[:3])})" if notes else ""),
    )


def check_registration_race(stack):
    counts = {"201+409": 0, "5xx": 0, "other": 0}
    notes = []
    pairs = instance_pairs(stack)
    for round_ in range(RACE_ROUNDS):
        a, b = next(pairs)
        username = stack.new_name("race")
        answers = at_once(lambda bar: register(a, username, barrier=bar), lambda bar: register(b, username, barrier=bar))
        statuses = sorted(x.status or 0 for x in answers)
        if statuses == [201, 409] and any(x.code == "username_taken" for x in answers):
            counts["201+409"] += 1
        else:
            counts["5xx" if any(x.is_server_error for x in answers) else "other"] += 1
            notes.append(f"round {round_ + 1}: " + "; ".join(x.describe() for x in answers))
    stack.record(
        counts["201+409"] == RACE_ROUNDS,
        "registration race",
        f"{RACE_ROUNDS} rounds: {counts['201+409']} with one 201 and one 409, {counts['5xx']} with 5xx, "
        f"{counts['other']} other" + (f" ({'; '.join(notes[:3])})" if notes else ""),
    )


def admin_roles(stack, endpoint):
    """{username: role} of the two admins, read by whichever of them is still an admin."""
    roles = {}
    for username, user_id in stack.admins:
        answer = stack.as_admin(endpoint, "GET", f"/admin/users/{user_id}")
        if answer.status == 403:
            # The first admin was the one demoted: read as the second.
            token = stack.access_token(endpoint, stack.admins[1][0])
            answer = request(endpoint, "GET", f"/admin/users/{user_id}", token=token)
        if answer.status != 200:
            raise CheckFailed(f"reading {username}: {answer.describe()}")
        roles[username] = answer["role"]
    return roles


def restore_two_admins(stack, roles):
    """Makes both test admins admins again, by the one left, or by a new
    admin from the command line if none is."""
    still_admin = [name for name, role in roles.items() if role == "admin"]
    if len(still_admin) == 2:
        return
    if still_admin:
        helper = still_admin[0]
    else:
        helper = stack.new_name("rescue")
        stack.instances[0].cli("user", "create", "--username", helper, "--role", "admin", GATEHOUSE_PASSWORD=PASSWORD)
    token = stack.access_token(stack.endpoints[0], helper)
    for username, user_id in stack.admins:
        if roles[username] != "admin":
            answer = request(stack.endpoints[0], "PATCH", f"/admin/users/{user_id}", {"role": "admin"}, token=token)
            if answer.status != 200:
                raise CheckFailed(f"restoring {username} as admin: {answer.describe()}")
    if not still_admin:
        helper_id = me(stack.endpoints[0], token)["id"]
        stack.as_admin(stack.endpoints[0], "PATCH", f"/admin/users/{helper_id}", {"role": "user"})


def check_demotion_race(stack):
    (name_a, id_a), (name_b, id_b) = stack.admins
    counts = {"200+409": 0, "200+refused": 0, "bad": 0, "5xx": 0}
    notes = []
    pairs = instance_pairs(stack)
    for round_ in range(RACE_ROUNDS):
        a, b = next(pairs)
        roles = admin_roles(stack, stack.endpoints[0])
        if sorted(roles.values()) != ["admin", "admin"]:
            raise CheckFailed(f"round {round_ + 1} does not start with two admins: {roles}")
        token_a = stack.access_token(a, name_a)
        token_b = stack.access_token(b, name_b)
        answers = at_once(
            lambda bar: request(a, "PATCH", f"/admin/users/{id_b}", {"role": "user"}, token=token_a, barrier=bar),
            lambda bar: request(b, "PATCH", f"/admin/users/{id_a}", {"role": "user"}, token=token_b, barrier=bar),
        )
        time.sleep(SESSION_CACHE_MS / 1000)
        roles = admin_roles(stack, stack.endpoints[0])
        admins_left = sum(role == "admin" for role in roles.values())
        statuses = sorted(x.status or 0 for x in answers)
        described = f"round {round_ + 1}: " + "; ".join(x.describe() for x in answers) + f" -> {admins_left} admin(s)"
        if any(x.is_server_error for x in answers):
            counts["5xx"] += 1
            notes.append(described)
        elif admins_left == 1 and statuses == [200, 409] and any(x.code == "last_admin" for x in answers):
            counts["200+409"] += 1
        elif admins_left == 1 and statuses in ([200, 401], [200, 403]):
            # The loser's demotion reached its instance first: it is no
            # longer an admin. The outcome is right, the answer a different one.
            counts["200+refused"] += 1
            notes.append(described)
        else:
            counts["bad"] += 1
            notes.append(described)
        restore_two_admins(stack, roles)
    ok = counts["200+409"] + counts["200+refused"] == RACE_ROUNDS
    stack.record(
        ok,
        "demotion race",
        f"{RACE_ROUNDS} rounds: {counts['200+409']} with one 200 and one 409 last_admin, "
        f"{counts['200+refused']} one 200 and the loser refused (401/403), {counts['bad']} wrong admin count or answers, "
        f"{counts['5xx']} with 5xx" + (f" ({'; '.join(notes[:3])})" if notes else ""),
    )


# --- checks: key rotation with EdDSA -------------------------------------------------------


@dataclass
class SignedToken:
    sent: float  # when the login was sent
    received: float
    issuer: str
    kid: str


class RotationObserver:
    """While keys rotate: logs in on every instance in turn, verifies each
    token on every instance, and notes when each kid was first published by
    each instance's JWKS."""

    def __init__(self, endpoints, username):
        self.endpoints = endpoints
        self.username = username
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.tokens = []  # SignedToken
        self.refusals = []
        self.errors = []
        self.unpublished = []  # tokens whose kid some JWKS did not show yet
        self.confirmed_kids = set()
        self.first_published = {}  # (instance, kid) -> monotonic time
        self.verifications = 0
        self.threads = [
            threading.Thread(target=self.watch_jwks, daemon=True),
            threading.Thread(target=self.sign_and_verify, daemon=True),
        ]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()

    def watch_jwks(self):
        while not self.stopping.is_set():
            for endpoint in self.endpoints:
                seen_at = now()
                for kid in jwks_kids(endpoint) or ():
                    with self.lock:
                        self.first_published.setdefault((endpoint.name, kid), seen_at)
            time.sleep(0.1)

    def sign_and_verify(self):
        while not self.stopping.is_set():
            for issuer in self.endpoints:
                answer = login(issuer, self.username)
                if answer.status != 200:
                    self.errors.append(answer.describe())
                    continue
                token = answer["access_token"]
                kid = token_kid(token)
                with self.lock:
                    self.tokens.append(SignedToken(answer.started, now(), issuer.name, kid))
                self.confirm_published(kid, issuer)
                for verifier in self.endpoints:
                    check = protected(verifier, token)
                    self.verifications += 1
                    if check.status != 200:
                        self.refusals.append(f"{issuer}'s token ({kid}) -> {check.describe()}")

    def confirm_published(self, kid, issuer):
        """A client that reads any instance's JWKS on meeting the kid finds it."""
        if kid in self.confirmed_kids:
            return
        missing = [e.name for e in self.endpoints if kid not in (jwks_kids(e) or ())]
        if missing:
            self.unpublished.append(f"{issuer} signed with {kid}, not yet in the JWKS of {', '.join(missing)}")
        else:
            self.confirmed_kids.add(kid)


def check_key_rotation(stack):
    instances = stack.make_instances("ed", TOPOLOGY_PORTS[stack.topology]["eddsa"], EDDSA_DATABASE, EDDSA_SETTINGS)
    stack.database.nodes[0].create_database(EDDSA_DATABASE)  # Galera replicates it
    endpoints = [Endpoint(gh.name, gh.port) for gh in instances]
    logs = [gh.log for gh in instances]
    try:
        start_together(stack, instances, "EdDSA set")
        username = stack.new_user("key", endpoints[0])[0]
        kids_before = jwks_kids(endpoints[0]) or set()
        observe_rotation(stack, instances, endpoints, username, kids_before, logs)
        observe_rotation_now(stack, instances, endpoints, username, logs)
    finally:
        for gh in instances:
            gh.stop()


def observe_rotation(stack, instances, endpoints, username, kids_before, logs):
    observer = RotationObserver(endpoints, username)
    observer.start()
    try:
        time.sleep(2)
        # The CLI fixes the switch time somewhere between these two moments.
        rotation_began = now()
        result = instances[0].cli("keys", "rotate")
        rotation_ended = now()
        time.sleep(KEY_LEAD_SECONDS + KEY_SWITCH_MARGIN + 3)
    finally:
        observer.stop()
    if result.returncode != 0:
        stack.record(False, "key rotation", f"gatehouse keys rotate failed: {(result.stdout + result.stderr).strip()[:300]}", logs)
        return
    new_kids = {kid for (_, kid) in observer.first_published} - kids_before
    new_kids |= {token.kid for token in observer.tokens} - kids_before
    if len(new_kids) != 1:
        stack.record(False, "key rotation", f"expected one new kid after the rotation, saw {sorted(new_kids)}", logs)
        return
    new_kid = new_kids.pop()
    record_no_token_refused(stack, observer, logs)
    record_publication(stack, observer, endpoints, new_kid, rotation_ended, logs)
    record_signing_switch(stack, observer, endpoints, new_kid, rotation_began, rotation_ended, logs)


def record_no_token_refused(stack, observer, logs):
    problems = observer.refusals + observer.errors
    stack.record(
        not problems,
        "key rotation: no token refused",
        f"{len(observer.tokens)} tokens, {observer.verifications} verifications, {len(observer.refusals)} refused, "
        f"{len(observer.errors)} failed logins" + (f" ({'; '.join(problems[:2])})" if problems else ""),
        logs,
    )


def record_publication(stack, observer, endpoints, new_kid, rotated, logs):
    delays = {}
    for e in endpoints:
        seen = observer.first_published.get((e.name, new_kid))
        delays[e.name] = None if seen is None else seen - rotated
    stack.record(
        all(d is not None and d <= JWKS_PUBLISH_LIMIT for d in delays.values()),
        "key rotation: new kid in every JWKS within 5 s",
        ", ".join(f"{name} {'%.1f s' % d if d is not None else 'never'}" for name, d in delays.items()),
        logs,
    )
    stack.record(
        not observer.unpublished,
        "key rotation: no kid before every JWKS shows it",
        f"{len(observer.unpublished)} tokens with an unpublished kid"
        + (f" ({observer.unpublished[0]})" if observer.unpublished else ""),
        logs,
    )


def record_signing_switch(stack, observer, endpoints, new_kid, began, ended, logs):
    """Every instance signs with the new key from the rotation plus the lead
    on: none before (a token received before the earliest possible switch),
    none with the old key after (a login sent after the latest possible
    switch). The margin allows for a switch time kept to the whole second."""
    earliest = began + KEY_LEAD_SECONDS - KEY_SWITCH_MARGIN
    latest = ended + KEY_LEAD_SECONDS + KEY_SWITCH_MARGIN
    too_early = [t for t in observer.tokens if t.kid == new_kid and t.received < earliest]
    after_switch = [t for t in observer.tokens if t.sent > latest]
    still_old = [t for t in after_switch if t.kid != new_kid]
    first_new = {}
    for t in observer.tokens:
        if t.kid == new_kid:
            first_new.setdefault(t.issuer, t.received - ended)
    stack.record(
        not too_early and not still_old and after_switch,
        f"key rotation: signs with the new key after the {KEY_LEAD_SECONDS} s lead",
        "first new-kid token "
        + ", ".join(f"{e.name} {'+%.1f s' % first_new[e.name] if e.name in first_new else 'never'}" for e in endpoints)
        + f" after the rotation (which took {ended - began:.1f} s); {len(too_early)} too early, "
        f"{len(still_old)} of {len(after_switch)} still old after the switch",
        logs,
    )


def observe_rotation_now(stack, instances, endpoints, username, logs):
    old_tokens = [(e, stack.access_token(e, username)) for e in endpoints]
    old_kids = {token_kid(t) for _, t in old_tokens}
    result = instances[0].cli("keys", "rotate", "--now")
    rotated = now()
    if result.returncode != 0:
        detail = f"gatehouse keys rotate --now failed: {(result.stdout + result.stderr).strip()[:300]}"
        for name in ("old key refused within 5 s", "new key signs within 5 s", "new-key tokens accepted by every instance"):
            stack.record(False, f"rotate --now: {name}", detail, logs)
        return
    refused_at = {}
    signing_new_at = {}
    new_key_refusals = []
    new_key_checks = 0
    while now() - rotated < ROTATE_NOW_LIMIT + 1 and (
        len(refused_at) < len(endpoints) or len(signing_new_at) < len(endpoints)
    ):
        for e in endpoints:
            if e.name not in refused_at and all(protected(e, t).status == 401 for _, t in old_tokens):
                refused_at[e.name] = now() - rotated
            answer = login(e, username)
            if answer.status == 200 and token_kid(answer["access_token"]) not in old_kids:
                signing_new_at.setdefault(e.name, answer.started - rotated)
                # Other instances may not have read the new key yet: meeting
                # its kid, they must read it instead of refusing the token.
                for verifier in endpoints:
                    new_key_checks += 1
                    check = protected(verifier, answer["access_token"])
                    if check.status != 200:
                        new_key_refusals.append(f"{e}'s new-key token -> {check.describe()}")
        time.sleep(0.2)

    def timings(found):
        return ", ".join(f"{e.name} {'%.1f s' % found[e.name] if e.name in found else 'not within 6 s'}" for e in endpoints)

    stack.record(
        all(found <= ROTATE_NOW_LIMIT for found in refused_at.values()) and len(refused_at) == len(endpoints),
        "rotate --now: old key refused within 5 s",
        timings(refused_at),
        logs,
    )
    stack.record(
        all(found <= ROTATE_NOW_LIMIT for found in signing_new_at.values()) and len(signing_new_at) == len(endpoints),
        "rotate --now: new key signs within 5 s",
        timings(signing_new_at),
        logs,
    )
    stack.record(
        new_key_checks > 0 and not new_key_refusals,
        "rotate --now: new-key tokens accepted by every instance",
        f"{new_key_checks} verifications, {len(new_key_refusals)} refused"
        + (f" ({'; '.join(new_key_refusals[:2])})" if new_key_refusals else ""),
        logs,
    )


# --- checks: database faults under load -------------------------------------------------------


class SteadyLoad:
    """A fixed number of clients per instance, each registering new accounts
    and logging in to its own account in turn, waiting for each answer (so
    the test itself never piles more requests on an instance than it has
    clients). Every answer is kept, and written to WORK/<topology>/ for
    reading after a failure."""

    def __init__(self, stack, tag):
        self.stack = stack
        self.tag = tag
        self.began = now()
        self.answers = []  # (kind, username, Answer)
        self.events = []  # (seconds into the load, what the test did)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        for i, endpoint in enumerate(stack.endpoints):
            for c in range(LOAD_CLIENTS_PER_INSTANCE):
                account = stack.new_user(f"{tag}u", endpoint)[0]
                prefix = f"{stack.topology[0]}{tag}{i + 1}{'abcdefgh'[c]}"
                self.threads.append(threading.Thread(target=self.client, args=(endpoint, account, prefix), daemon=True))

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()
        self.write_log()

    def client(self, endpoint, account, prefix):
        n = 0
        while not self.stopping.is_set():
            n += 1
            username = f"{prefix}{n}"
            self.note("register", username, register(endpoint, username, source=LOAD_ADDRESS, timeout=30))
            self.note("login", account, login(endpoint, account, source=LOAD_ADDRESS, timeout=30))
            time.sleep(0.05)

    def note(self, kind, username, answer):
        with self.lock:
            self.answers.append((kind, username, answer))

    def on(self, instance_names, since, until):
        """Answers from these instances to the requests that were in flight
        at some moment of [since, until)."""
        with self.lock:
            return [
                a
                for _, _, a in self.answers
                if a.endpoint in instance_names and a.started < until and a.started + a.elapsed >= since
            ]

    def registered(self):
        with self.lock:
            return {u for kind, u, a in self.answers if kind == "register" and a.status == 201}

    def write_log(self):
        rows = [{"at": at, "event": event} for at, event in self.events]
        for kind, username, a in self.answers:
            rows.append({
                "at": round(a.started - self.began, 3), "instance": a.endpoint, "kind": kind,
                "username": username, "status": a.status, "code": a.code,
                "retry_after": a.retry_after, "elapsed": round(a.elapsed, 3), "error": a.error,
            })
        with open(os.path.join(self.stack.work, f"load-{self.tag}.jsonl"), "w") as f:
            for row in sorted(rows, key=lambda r: r["at"]):
                f.write(json.dumps(row) + "\n")

    def mark(self, event):
        """Notes a fault in the load's log, for reading it afterwards."""
        with self.lock:
            self.events.append((round(now() - self.began, 3), event))


class ReadinessWatch:
    """Polls one instance's /health/ready, noting every answer."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.answers = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            self.answers.append(ready(self.endpoint, timeout=10))
            time.sleep(0.2)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join()

    def first(self, status, since):
        return next((a.started - since for a in self.answers if a.started >= since and a.status == status), None)


def record_kept_serving(stack, name, answers):
    """Instances whose own database node is up answer everything, however
    slowly the cluster commits meanwhile."""
    errors = [a for a in answers if a.status is None or a.status >= 400]
    slowest = max((a.elapsed for a in answers), default=0)
    instances = "+".join(sorted({a.endpoint for a in answers}))
    stack.record(
        not errors,
        name,
        f"{instances}: {len(answers)} requests, {len(errors)} errors, slowest {slowest:.1f} s" + describe_errors(errors),
    )


def describe_errors(errors):
    if not errors:
        return ""
    kinds = {}
    for a in errors:
        key = f"{a.status or 'no answer'}{' ' + a.code if a.code else ''}"
        kinds[key] = kinds.get(key, 0) + 1
    return " (" + ", ".join(f"{n}x {k}" for k, n in kinds.items()) + f"; e.g. {errors[0].describe()})"


def judge_unavailable_answers(answers, limit):
    """Answers while the database is away: 503 with Retry-After (or a
    success), each within `limit` seconds; returns (ok, detail)."""
    unavailable = [a for a in answers if a.is_unavailable_with_retry_after]
    succeeded = [a for a in answers if a.status is not None and a.status < 400]
    slow = [a for a in answers if a.elapsed > limit]
    other = [a for a in answers if a not in unavailable and a not in succeeded]
    slowest = max((a.elapsed for a in answers), default=0)
    ok = not slow and not other
    detail = (
        f"{len(answers)} requests: {len(unavailable)} 503+Retry-After, {len(succeeded)} succeeded, "
        f"{len(other)} other, {len(slow)} slower than {limit:.1f} s (slowest {slowest:.1f} s)"
        + describe_errors(other or slow)
    )
    return ok, detail


def wait_until_serving(stack, since, limit):
    """Polls every instance until it is ready and logs in; returns
    {instance: seconds after `since`}."""
    username = stack.admins[1][0]
    serving = {}
    while len(serving) < len(stack.endpoints) and now() - since < limit:
        for e in stack.endpoints:
            if e.name not in serving and ready(e, timeout=5).status == 200 and login(e, username, timeout=10).status == 200:
                serving[e.name] = now() - since
        time.sleep(0.3)
    return serving


def check_registrations_kept(stack, loads):
    """Every registration that was answered 201 exists, on every instance."""
    expected = set().union(*(load.registered() for load in loads))
    missing_on = {}
    for e in stack.endpoints:
        present = set()
        for load in loads:
            present |= usernames_with_prefix(stack, e, f"{stack.topology[0]}{load.tag}")
        missing = expected - present
        if missing:
            missing_on[e.name] = sorted(missing)
    stack.record(
        not missing_on,
        "no 201'd registration lost",
        f"{len(expected)} registrations answered 201; missing: "
        + (", ".join(f"{k} {len(v)} (e.g. {v[0]})" for k, v in missing_on.items()) if missing_on else "none"),
    )


def usernames_with_prefix(stack, endpoint, prefix):
    names = set()
    cursor = None
    while True:
        path = f"/admin/users?q={prefix}&limit=100" + (f"&cursor={cursor}" if cursor else "")
        answer = stack.as_admin(endpoint, "GET", path)
        if answer.status != 200:
            raise CheckFailed(f"listing users: {answer.describe()}")
        names |= {u["username"] for u in answer["users"]}
        cursor = answer["next_cursor"]
        if not cursor:
            return names


def check_galera_node_failure(stack):
    cluster = stack.database
    node = cluster.nodes[2]
    victim, survivors = stack.endpoints[2], stack.endpoints[:2]
    survivor_names = {e.name for e in survivors}
    load = SteadyLoad(stack, "gk")
    watch = ReadinessWatch(victim)
    load.start()
    watch.start()
    try:
        time.sleep(2)
        killed = now()
        node.kill()
        load.mark(f"{node.name} killed")
        time.sleep(NODE_DOWN_SECONDS)
        restarting = now()
        load.mark(f"{node.name} restarting")
        log_offset = os.path.getsize(node.error_log)
        cluster.restart_node(node)
        rejoined = now()
        load.mark(f"{node.name} synced")
        transfer = cluster.transfer_kind(node, log_offset)
        serving = wait_until_serving(stack, rejoined, RECOVERY_LIMIT)
        load.mark("every instance serving")
        time.sleep(1)
    finally:
        load.stop()
        watch.stop()
    finished = now()

    record_kept_serving(stack, "node killed: other instances keep serving", load.on(survivor_names, killed, restarting))
    ok, detail = judge_unavailable_answers(load.on({victim.name}, killed, restarting), DEAD_DATABASE_ANSWER_LIMIT)
    stack.record(ok, "node killed: its instance answers 503 + Retry-After fast", f"{victim.name}: {detail}", [stack.instances[2].log])
    ok, detail = judge_unavailable_answers(load.on({victim.name}, restarting, rejoined), DEAD_DATABASE_ANSWER_LIMIT)
    stack.record(ok, "node joining: its instance answers 503 + Retry-After fast", f"{victim.name}: {detail}", [stack.instances[2].log])
    went_unready = watch.first(503, killed)
    stack.record(
        went_unready is not None and went_unready <= DEAD_DATABASE_ANSWER_LIMIT,
        "node killed: its instance's /health/ready turns 503",
        f"after {went_unready:.1f} s" if went_unready is not None else "never",
        [stack.instances[2].log],
    )
    record_kept_serving(stack, "node rejoin: other instances keep serving", load.on(survivor_names, restarting, finished))
    recovered = serving.get(victim.name)
    stack.record(
        recovered is not None and len(serving) == 3,
        "node rejoin: its instance recovers by itself",
        f"node back via {transfer} after {rejoined - restarting:.1f} s; {victim.name} ready and logging in "
        + (f"{recovered:.1f} s later" if recovered is not None else f"not within {RECOVERY_LIMIT:.0f} s"),
        [stack.instances[2].log],
    )
    check_registrations_kept(stack, [load])


def check_mariadb_pause_and_restart(stack):
    server = stack.database.server
    names = {e.name for e in stack.endpoints}
    pause_load = SteadyLoad(stack, "mp")
    pause_load.start()
    try:
        time.sleep(2)
        paused = now()
        server.pause()
        pause_load.mark("database paused")
        time.sleep(DATABASE_PAUSE_SECONDS)
        server.resume()
        resumed = now()
        pause_load.mark("database resumed")
        serving = wait_until_serving(stack, resumed, RECOVERY_LIMIT)
        pause_load.mark("every instance serving")
        time.sleep(1)
    finally:
        server.resume()
        pause_load.stop()
    ok, detail = judge_unavailable_answers(pause_load.on(names, paused, resumed), PAUSED_DATABASE_ANSWER_LIMIT)
    stack.record(ok, f"database paused {DATABASE_PAUSE_SECONDS:.0f} s: 503 or success, no hang", detail)
    stack.record(
        len(serving) == 3,
        "database resumed: every instance serves",
        ", ".join(f"{e.name} {'%.1f s' % serving[e.name] if e.name in serving else 'not serving'}" for e in stack.endpoints),
    )

    restart_load = SteadyLoad(stack, "mr")
    restart_load.start()
    try:
        time.sleep(2)
        stopping = now()
        server.stop()
        stopped = now()
        restart_load.mark("database stopped")
        time.sleep(2)
        readiness = {e.name: ready(e, timeout=10).status for e in stack.endpoints}
        stack.database.restart()
        started = now()
        restart_load.mark("database started")
        serving = wait_until_serving(stack, started, RECOVERY_LIMIT)
        restart_load.mark("every instance serving")
        time.sleep(1)
    finally:
        restart_load.stop()
    ok, detail = judge_unavailable_answers(restart_load.on(names, stopped + 0.5, started), DEAD_DATABASE_ANSWER_LIMIT)
    stack.record(
        ok and all(s == 503 for s in readiness.values()),
        "database stopped: 503 + Retry-After fast, ready 503",
        f"clean stop took {stopped - stopping:.1f} s; {detail}; ready {readiness}",
    )
    stack.record(
        len(serving) == 3,
        "database restarted: every instance recovers by itself",
        ", ".join(f"{e.name} {'%.1f s' % serving[e.name] if e.name in serving else 'not serving'}" for e in stack.endpoints),
    )
    check_registrations_kept(stack, [pause_load, restart_load])


# --- running a topology --------------------------------------------------------------------------

CHECKS = [
    ("client address in audit", check_client_address),
    ("token from any instance accepted by all", check_tokens_accepted_everywhere),
    ("revocation by logout", lambda s: check_revocation(s, "logout", lambda: revoke_by_logout(s))),
    ("revocation by admin disable", lambda s: check_revocation(s, "admin disable", lambda: revoke_by_admin_disable(s))),
    ("revocation by password change", lambda s: check_revocation(s, "password change", lambda: revoke_by_password_change(s))),
    ("lockout counted across instances", check_lockout_across_instances),
    ("refresh race", check_refresh_race),
    ("registration race", check_registration_race),
    ("demotion race", check_demotion_race),
    ("key rotation", check_key_rotation),
]
FAULT_CHECKS = {"galera": check_galera_node_failure, "mariadb": check_mariadb_pause_and_restart}


def run_topology(topology, work, binary, report):
    began = now()
    print(f"\n== {topology}: starting", flush=True)
    stack = Stack(topology, work, binary, report)
    try:
        require_free_ports(stack.all_ports())
        stack.database.start()
        stack.database.nodes[0].create_database(DATABASE)
        print(f"   database up after {now() - began:.0f} s; starting three instances at once", flush=True)
        start_together(stack, stack.instances, "empty database")
        stack.nginx.start()
        stack.create_admins()
    except (StartupError, CheckFailed) as e:
        report.record(topology, False, "setup", str(e), stack.database.logs())
        stack.stop()
        return
    try:
        for name, check in CHECKS + [("database faults", FAULT_CHECKS[topology])]:
            try:
                check(stack)
            except (CheckFailed, StartupError) as e:
                stack.record(False, name, str(e))
            except Exception:
                stack.record(False, name, "the check crashed:\n" + traceback.format_exc())
    finally:
        stack.stop()
        print(f"   {topology} done in {now() - began:.0f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="a directory of its own for this run")
    parser.add_argument("--bin", required=True, help="the gatehouse binary to run")
    parser.add_argument("topologies", nargs="+", choices=sorted(TOPOLOGY_PORTS))
    args = parser.parse_args()
    report = Report()
    began = now()
    try:
        for topology in args.topologies:
            run_topology(topology, args.work, args.bin, report)
    except KeyboardInterrupt:
        print(report.summary())
        print("interrupted")
        return 130
    print(report.summary())
    print(f"total {now() - began:.0f} s; logs in {args.work}/<topology>/")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
