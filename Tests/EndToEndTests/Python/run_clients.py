"""Unmodified Python HTTP clients exchanging a Miro authorization code, for `tokentap run`.

Usage: run_clients.py CLIENT CLIENT_ID CLIENT_SECRET REDIRECT_URI CODE

CLIENT is one of: oauthlib (requests-oauthlib OAuth2Session.fetch_token), miro (miro-api 2.2.4
Miro(...).exchange_code_for_access_token), httpx (httpx.post), aiohttp (a default ClientSession),
requests-env (a requests.Session, trust_env left True), requests-no-env (trust_env = False).
No proxy or CA setting of its own: whatever reaches tokentap does so through `tokentap run`'s
environment and Python hook. Prints one JSON document: {"client", "ok", "access_token" or "error"}.
"""
import json
import os
import sys

os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the sandbox's loopback redirect URI is http

TOKEN_URL = "https://api.miro.com/v1/oauth/token"


def form(client_id, client_secret, redirect_uri, code):
    return {"grant_type": "authorization_code", "client_id": client_id, "client_secret": client_secret,
            "code": code, "redirect_uri": redirect_uri}


def oauthlib(client_id, client_secret, redirect_uri, code):
    from requests_oauthlib import OAuth2Session
    session = OAuth2Session(client_id, redirect_uri=redirect_uri)
    token = session.fetch_token(TOKEN_URL, code=code, client_secret=client_secret, include_client_id=True, timeout=30)
    return token["access_token"]


def miro(client_id, client_secret, redirect_uri, code):
    from miro_api import Miro
    client = Miro(client_id=client_id, client_secret=client_secret, redirect_url=redirect_uri)
    return client.exchange_code_for_access_token(code)


def httpx_client(client_id, client_secret, redirect_uri, code):
    import httpx
    response = httpx.post(TOKEN_URL, data=form(client_id, client_secret, redirect_uri, code), timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def aiohttp_client(client_id, client_secret, redirect_uri, code):
    import asyncio
    import aiohttp

    async def exchange():
        async with aiohttp.ClientSession() as session:
            async with session.post(TOKEN_URL, data=form(client_id, client_secret, redirect_uri, code)) as response:
                response.raise_for_status()
                return (await response.json())["access_token"]

    return asyncio.run(exchange())


def requests_session(trust_env):
    def exchange(client_id, client_secret, redirect_uri, code):
        import requests
        session = requests.Session()
        session.trust_env = trust_env
        response = session.post(TOKEN_URL, data=form(client_id, client_secret, redirect_uri, code), timeout=10)
        response.raise_for_status()
        return response.json()["access_token"]
    return exchange


CLIENTS = {
    "oauthlib": oauthlib,
    "miro": miro,
    "httpx": httpx_client,
    "aiohttp": aiohttp_client,
    "requests-env": requests_session(True),
    "requests-no-env": requests_session(False),
}


def main():
    name, client_id, client_secret, redirect_uri, code = sys.argv[1:6]
    try:
        token = CLIENTS[name](client_id, client_secret, redirect_uri, code)
        print(json.dumps({"client": name, "ok": True, "access_token": token}))
    except Exception as error:  # the caller asserts on what happened
        print(json.dumps({"client": name, "ok": False, "error": "%s: %s" % (type(error).__name__, error)}))


if __name__ == "__main__":
    main()
