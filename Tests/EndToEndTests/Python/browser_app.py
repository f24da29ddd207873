"""A tiny OAuth web app for the `tokentap browser` end-to-end tests (standard library only).

    browser_app.py PORT CLIENT_ID CLIENT_SECRET [--trailing-slash]

Listens on 127.0.0.1:PORT. `GET /login` redirects to Miro's authorize URL (the sandbox, through the
proxy); `GET /callback?code=…&state=…` checks the state and exchanges the code at
https://api.miro.com/v1/oauth/token (urllib, through the HTTPS_PROXY that `tokentap run` sets).
With --trailing-slash, the exchange sends the redirect URI with a `/` added (a real-world mistake:
the sandbox answers 401 "Redirect URI mismatch."). After the callback it prints one JSON line
({"exchanged": STATUS, "body": …}) and exits.
"""
import http.server
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

AUTHORIZE_URL = "https://miro.com/oauth/authorize"
TOKEN_URL = "https://api.miro.com/v1/oauth/token"

port = int(sys.argv[1])
client_id, client_secret = sys.argv[2], sys.argv[3]
trailing_slash = "--trailing-slash" in sys.argv[4:]
redirect_uri = "http://127.0.0.1:%d/callback" % port
states = set()
done = threading.Event()


class App(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("browser_app: " + (fmt % args) + "\n")

    def answer(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/login":
            state = secrets.token_urlsafe(16)
            states.add(state)
            target = AUTHORIZE_URL + "?" + urllib.parse.urlencode(
                {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state})
            self.answer(302, "<a href='%s'>log in with Miro</a>" % target, [("Location", target)])
        elif url.path == "/callback":
            if query.get("state") not in states or "code" not in query:
                self.answer(400, "bad callback")
                report({"error": "bad callback", "query_names": sorted(query)})
                return
            form = urllib.parse.urlencode({
                "grant_type": "authorization_code", "client_id": client_id, "client_secret": client_secret,
                "code": query["code"], "redirect_uri": redirect_uri + ("/" if trailing_slash else ""),
            }).encode()
            request = urllib.request.Request(TOKEN_URL, data=form, method="POST",
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, body = response.status, response.read().decode()
            except urllib.error.HTTPError as error:
                status, body = error.code, error.read().decode()
            ok = status == 200 and "access_token" in body
            self.answer(200 if ok else 502, "<p>%s</p>" % ("logged in" if ok else "login failed"))
            report({"exchanged": status, "body": json.loads(body) if body.startswith("{") else body})
        else:
            self.answer(404, "not found")


def report(result):
    # Never the token itself on stdout: only whether one came back.
    body = result.get("body")
    if isinstance(body, dict) and "access_token" in body:
        result["body"] = {"access_token": "present"}
    print(json.dumps(result), flush=True)
    done.set()


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), App)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(json.dumps({"listening": port}), flush=True)
done.wait(120)
time.sleep(1)  # the browser may still ask for /favicon.ico
server.shutdown()
