"""Schemathesis hooks for gatehouse: every test case is sent with the
access token of a live admin, so the guarded routes are really exercised.

The fuzzer is free to log out, demote, disable or delete whoever it is
calling as (and it does), so no one token lasts the run. Each token comes
from a fresh admin, registered with the token of a "root" admin that the
fuzzer is never given; should root itself be demoted (its id is listed by
GET /admin/users), a new root is made with the `gatehouse user create`
command, as an operator would.

Environment: GATEHOUSE_URL, GATEHOUSE_BIN and DATABASE_URL (for the CLI).
"""

import json
import os
import secrets
import subprocess
import urllib.error
import urllib.request

import schemathesis

BASE = os.environ["GATEHOUSE_URL"].rstrip("/")
# The CLI must use the server's database; fail now rather than make a
# root in some other file.
CLI_ENV = {**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"]}
PASSWORD = "schemathesis keeps the gate"


def call(path, body, token=None):
    request = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None


def login(username):
    status, body = call("/auth/login", {"username": username, "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"login as {username} gave {status}")
    return body["access_token"]


def new_root():
    username = "root" + secrets.token_hex(6)
    subprocess.run(
        [os.environ["GATEHOUSE_BIN"], "user", "create", "--username", username, "--role", "admin"],
        env={**CLI_ENV, "GATEHOUSE_PASSWORD": PASSWORD},
        check=True,
        capture_output=True,
    )
    return login(username)


@schemathesis.auth(refresh_interval=None)
class FreshAdmin:
    root_token = None

    def get(self, case, context):
        username = "admin" + secrets.token_hex(6)
        body = {"username": username, "password": PASSWORD, "role": "admin"}
        status = None
        if FreshAdmin.root_token:
            status, _ = call("/auth/register", body, FreshAdmin.root_token)
        if status != 201:
            FreshAdmin.root_token = new_root()
            status, _ = call("/auth/register", body, FreshAdmin.root_token)
            if status != 201:
                raise RuntimeError(f"registering an admin gave {status}")
        return login(username)

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
