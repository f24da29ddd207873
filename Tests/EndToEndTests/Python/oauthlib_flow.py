"""A complete Miro OAuth flow with requests-oauthlib, through tokentap's proxy, against `tokentap sandbox`.

Usage: oauthlib_flow.py CLIENT_ID CLIENT_SECRET REDIRECT_URI [basic|body]

The proxy and its CA come from the environment (HTTPS_PROXY, REQUESTS_CA_BUNDLE). `basic` (the
default of requests-oauthlib) authenticates the client with an HTTP Basic header; `body` sends
client_id and client_secret in the form body. Prints one JSON document on stdout:
{"authorize": {...}, "token": {...}, "boards": {...}, "refresh": {...}, "boards_new": {...},
 "boards_old": {...}} where each step is {"status": int, "body": str, "location": str|null, ...}.
"""
import json
import os
import sys

# The sandbox's demo redirect URI is http://127.0.0.1:…, a loopback URI (RFC 8252 §7.3); oauthlib
# refuses non-https redirect responses unless told this is a test.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

from requests.auth import HTTPBasicAuth  # noqa: E402
from requests_oauthlib import OAuth2Session  # noqa: E402

AUTHORIZE_URL = "https://miro.com/oauth/authorize"
TOKEN_URL = "https://api.miro.com/v1/oauth/token"
BOARDS_URL = "https://api.miro.com/v2/boards"


def step(response, **extra):
    out = {"status": response.status_code, "body": response.text, "location": response.headers.get("Location")}
    out.update(extra)
    return out


def main():
    client_id, client_secret, redirect_uri = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "basic"
    result = {"mode": mode}
    session = OAuth2Session(client_id, redirect_uri=redirect_uri)
    # The token endpoint's bodies as sent (oauthlib turns `scope` into a list when it parses them).
    raw_bodies = []

    def keep_body(response):
        raw_bodies.append(response.text)
        return response

    session.register_compliance_hook("access_token_response", keep_body)
    session.register_compliance_hook("refresh_token_response", keep_body)
    url, state = session.authorization_url(AUTHORIZE_URL)
    r = session.get(url, allow_redirects=False, timeout=30)
    result["authorize"] = step(r, state=state)
    location = r.headers.get("Location")
    if r.status_code != 302 or not location:
        print(json.dumps(result))
        return

    if mode == "basic":
        token = session.fetch_token(TOKEN_URL, authorization_response=location,
                                    auth=HTTPBasicAuth(client_id, client_secret), timeout=30)
    else:
        token = session.fetch_token(TOKEN_URL, authorization_response=location, client_secret=client_secret,
                                    include_client_id=True, timeout=30)
    result["token"] = {"status": 200, "token": dict(token), "body": raw_bodies[-1]}

    r = session.get(BOARDS_URL, timeout=30)
    result["boards"] = step(r, ratelimit_limit=r.headers.get("X-RateLimit-Limit"))

    old_access = token["access_token"]
    if mode == "basic":
        new = session.refresh_token(TOKEN_URL, auth=HTTPBasicAuth(client_id, client_secret), timeout=30)
    else:
        new = session.refresh_token(TOKEN_URL, client_id=client_id, client_secret=client_secret, timeout=30)
    result["refresh"] = {"status": 200, "token": dict(new), "body": raw_bodies[-1]}

    r = session.get(BOARDS_URL, timeout=30)
    result["boards_new"] = step(r)
    r = session.get(BOARDS_URL, headers={"Authorization": "Bearer " + old_access}, withhold_token=True, timeout=30)
    result["boards_old"] = step(r)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
