"""OAuth clients that make the mistakes of oauth-rules.md on purpose, through tokentap's proxy,
against `tokentap sandbox`.

Usage: doctor_clients.py MODE CLIENT_ID CLIENT_SECRET REDIRECT_URI

The proxy and its CA come from the environment (HTTPS_PROXY, REQUESTS_CA_BUNDLE). MODE is one of:
  correct-query      a correct flow in the query-string style of Miro's SDKs (POST with every
                     parameter in the query, empty body), then a REST call, a refresh, a REST call
  trailing-slash     authorize with REDIRECT_URI, exchange with REDIRECT_URI + "/"
  code-twice         the same code exchanged twice (a double callback)
  basic-newline      HTTP Basic with base64("id:secret\\n") (echo "$ID:$SECRET" | base64)
  basic-newline-raw  HTTP Basic whose header value is base64.encodebytes(...) (a line break at its
                     end) written on a raw TLS socket through the proxy (requests refuses it)
  json-body          the exchange sent as a JSON body
  stale-refresh      a refresh, then another refresh with the first (rotated) refresh token
  wrong-secret       the exchange with a secret that is not the app's
  expired-code       the sandbox clock advanced 660 s between the redirect and the exchange
  bad-code-twice     a code that was never issued, exchanged twice (both rejected for the code)
  unknown-code-after-success
                     a correct exchange, then one with a code that was never issued
Prints one JSON document: {"steps": [{"name": str, "status": int, "body": str}, ...]}.
"""
import base64
import json
import os
import socket
import ssl
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

AUTHORIZE_URL = "https://miro.com/oauth/authorize"
TOKEN_URL = "https://api.miro.com/v1/oauth/token"
BOARDS_URL = "https://api.miro.com/v2/boards"
ADVANCE_URL = "https://api.miro.com/__sandbox/advance"

steps = []


def record(name, response):
    steps.append({"name": name, "status": response.status_code, "body": response.text})
    return response


def authorize(client_id, redirect_uri, state="st-1"):
    """GET the authorize endpoint without following the redirect; returns the code."""
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state})
    r = record("authorize", requests.get(AUTHORIZE_URL + "?" + query, allow_redirects=False, timeout=30))
    if r.status_code != 302:
        raise SystemExit(json.dumps({"steps": steps, "error": "authorize did not redirect"}))
    return parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]


def exchange(name, client_id, secret, code, redirect_uri):
    """The token exchange as requests-oauthlib sends it: every parameter in the form body."""
    data = {"grant_type": "authorization_code", "client_id": client_id, "client_secret": secret,
            "code": code, "redirect_uri": redirect_uri}
    return record(name, requests.post(TOKEN_URL, data=data, timeout=30))


def refresh(name, client_id, secret, refresh_token):
    data = {"grant_type": "refresh_token", "client_id": client_id, "client_secret": secret,
            "refresh_token": refresh_token}
    return record(name, requests.post(TOKEN_URL, data=data, timeout=30))


def boards(name, access_token):
    return record(name, requests.get(BOARDS_URL, headers={"Authorization": "Bearer " + access_token}, timeout=30))


def raw_tls_request(host, request_bytes):
    """Sends REQUEST_BYTES to HOST:443 through the proxy (CONNECT, then TLS trusting REQUESTS_CA_BUNDLE);
    returns (status, body) of the answer (the request asks for Connection: close)."""
    proxy = urlsplit(os.environ["HTTPS_PROXY"])
    sock = socket.create_connection((proxy.hostname, proxy.port), timeout=30)
    sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit(json.dumps({"steps": steps, "error": "proxy closed during CONNECT"}))
        head += chunk
    if b" 200" not in head.split(b"\r\n", 1)[0]:
        raise SystemExit(json.dumps({"steps": steps, "error": "CONNECT refused: " + head.decode(errors="replace")}))
    context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    tls = context.wrap_socket(sock, server_hostname=host)
    tls.sendall(request_bytes)
    data = b""
    while True:
        try:
            chunk = tls.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    tls.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split(" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, body.decode(errors="replace")


def main():
    mode, client_id, secret, redirect_uri = sys.argv[1:5]

    if mode == "correct-query":
        code = authorize(client_id, redirect_uri)
        query = urlencode({"grant_type": "authorization_code", "client_id": client_id, "client_secret": secret,
                           "code": code, "redirect_uri": redirect_uri})
        tokens = record("exchange", requests.post(TOKEN_URL + "?" + query, timeout=30)).json()
        boards("boards", tokens["access_token"])
        query = urlencode({"grant_type": "refresh_token", "client_id": client_id, "client_secret": secret,
                           "refresh_token": tokens["refresh_token"]})
        new = record("refresh", requests.post(TOKEN_URL + "?" + query, timeout=30)).json()
        boards("boards-new", new["access_token"])

    elif mode == "trailing-slash":
        code = authorize(client_id, redirect_uri)
        exchange("exchange", client_id, secret, code, redirect_uri + "/")

    elif mode == "code-twice":
        code = authorize(client_id, redirect_uri)
        exchange("exchange-1", client_id, secret, code, redirect_uri)
        exchange("exchange-2", client_id, secret, code, redirect_uri)

    elif mode == "basic-newline":
        code = authorize(client_id, redirect_uri)
        credentials = base64.b64encode(f"{client_id}:{secret}\n".encode()).decode()
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        record("exchange", requests.post(TOKEN_URL, data=data, headers={"Authorization": "Basic " + credentials},
                                         timeout=30))

    elif mode == "basic-newline-raw":
        code = authorize(client_id, redirect_uri)
        body = urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}).encode()
        value = "Basic " + base64.encodebytes(f"{client_id}:{secret}".encode()).decode()  # ends with "\n"
        request = (f"POST /v1/oauth/token HTTP/1.1\r\nHost: api.miro.com\r\n"
                   f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
                   f"Connection: close\r\nAuthorization: {value}\r\n\r\n").encode() + body
        status, text = raw_tls_request("api.miro.com", request)
        steps.append({"name": "exchange", "status": status, "body": text})

    elif mode == "json-body":
        code = authorize(client_id, redirect_uri)
        payload = {"grant_type": "authorization_code", "client_id": client_id, "client_secret": secret,
                   "code": code, "redirect_uri": redirect_uri}
        record("exchange", requests.post(TOKEN_URL, json=payload, timeout=30))

    elif mode == "stale-refresh":
        code = authorize(client_id, redirect_uri)
        tokens = exchange("exchange", client_id, secret, code, redirect_uri).json()
        refresh("refresh-1", client_id, secret, tokens["refresh_token"])
        refresh("refresh-2", client_id, secret, tokens["refresh_token"])

    elif mode == "wrong-secret":
        code = authorize(client_id, redirect_uri)
        exchange("exchange", client_id, "not-the-apps-secret-0123456789abcdef", code, redirect_uri)

    elif mode == "expired-code":
        code = authorize(client_id, redirect_uri)
        record("advance", requests.post(ADVANCE_URL + "?seconds=660", timeout=30))
        exchange("exchange", client_id, secret, code, redirect_uri)

    elif mode == "bad-code-twice":
        authorize(client_id, redirect_uri)  # a real login whose code the app then loses
        exchange("exchange-1", client_id, secret, "not-a-code-0123456789abcdef", redirect_uri)
        exchange("exchange-2", client_id, secret, "not-a-code-0123456789abcdef", redirect_uri)

    elif mode == "unknown-code-after-success":
        code = authorize(client_id, redirect_uri)
        exchange("exchange-1", client_id, secret, code, redirect_uri)
        exchange("exchange-2", client_id, secret, "not-a-code-0123456789abcdef", redirect_uri)

    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps({"steps": steps}))


if __name__ == "__main__":
    main()
