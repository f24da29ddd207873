"""Misbehaving peers for the proxy's failure corpora (raw sockets, Python's ssl).

    bad_peers.py upstream DIR      serve the bad upstreams; DIR holds good.pem/good.key, wrong.pem,
                                   unknown.pem/unknown.key, expired.pem; prints one JSON line of ports
    bad_peers.py client MODE PROXY_PORT ROOT_PEM HOST HOW WAIT   stdin's bytes to the proxy: MODE plain
                                   (straight), tls (CONNECT HOST:443 + TLS), connect-raw (CONNECT, then
                                   the bytes without TLS); HOW send, close (close after sending) or
                                   trickle (a byte every 0.4 s); reads until close or WAIT s of silence;
                                   prints {"received": first 2000 bytes as latin-1, "closed": bool}

Upstream ports: "tls" answers by request path (see RESPONSES), "wrong"/"unknown"/"expired" present
such certificates, "plain" answers ClientHello with plain HTTP, "hangup" closes at once, "silent"
never answers, "refused" has no listener.
"""
import json
import os
import socket
import ssl
import sys
import threading
import time

from raw_client import read_until_quiet


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


def rst(conn):
    sock = conn
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        # An SSLSocket closes its socket without close_notify when not unwrapped.
        socket.socket.close(sock) if not isinstance(sock, ssl.SSLSocket) else sock.close()
    except OSError:
        pass


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
CUT = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"  # declares 100 bytes, sends 10

# Path -> (bytes sent, what happens next): keep (the connection serves the next request), notify
# (TLS close_notify, then close), no-notify (TCP close under TLS, no close_notify), reset (RST),
# drop (close as it is), wait (4 s of silence, past --upstream-timeout).
RESPONSES = {
    "/ok": (OK, "keep"),
    "/reset-mid": (CUT, "reset"),
    "/cl-long": (CUT, "notify"),
    "/cl-long-no-notify": (CUT, "no-notify"),
    "/cl-short": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", "notify"),
    "/no-cl-early": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial body", "no-notify"),
    "/no-cl-notify": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nwhole body", "notify"),
    "/complete-no-notify": (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone", "no-notify"),
    "/bad-status": (b"HTTP/1.1 abc Broken\r\n\r\n", "drop"),
    "/garbage": (b"this is not http at all\r\n\r\n", "drop"),
    "/bad-chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", "drop"),
    "/slow": (b"", "wait"),
    "/close-before-response": (b"", "notify"),
    "/reset-before-response": (b"", "reset"),
}


def serve_path(conn, path):
    """One response by path. Returns False when the connection must not be reused."""
    if path == "/endless-chunked":
        endless_chunked(conn)
        return False
    data, then = RESPONSES.get(path, (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "keep"))
    conn.sendall(data)
    if then == "keep":
        return True
    time.sleep(4 if then == "wait" else 0.2)
    if then == "notify":
        conn.unwrap().close()
    elif then == "no-notify":
        rst_plain(conn)
    elif then == "reset":
        rst(conn)
    return False


def endless_chunked(conn):
    """A chunked body that never ends: 64 KiB chunks until the proxy goes away (at most 20 s)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            conn.sendall(chunk)
    except OSError:
        pass


def rst_plain(conn):
    """Closes the TCP connection under TLS without close_notify (a FIN, no alert)."""
    raw = socket.socket(fileno=os.dup(conn.fileno()))
    raw.shutdown(socket.SHUT_RDWR)
    raw.close()
    try:
        socket.socket.close(conn)
    except OSError:
        pass


def tls_server(context, handler):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def loop():
        while True:
            raw, _ = srv.accept()
            threading.Thread(target=handler, args=(raw, context), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def tls_paths(raw, context):
    try:
        conn = context.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    try:
        while True:
            head = read_head(conn)
            if head is None:
                break
            path = head.split(b" ", 2)[1].decode().split("?")[0]
            if not serve_path(conn, path):
                return
    except (ssl.SSLError, OSError):
        pass
    try:
        conn.close()
    except OSError:
        pass


def tls_ok(raw, context):
    tls_paths(raw, context)


def plain_answer(raw, _):
    try:
        raw.recv(65536)
        raw.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    finally:
        raw.close()


def hangup(raw, _):
    raw.close()


def silent(raw, _):
    time.sleep(30)
    raw.close()


def upstream(directory):
    def context(cert, key):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.load_cert_chain(os.path.join(directory, cert), os.path.join(directory, key))
        return c
    ports = {
        "tls": tls_server(context("good.pem", "good.key"), tls_paths),
        "wrong": tls_server(context("wrong.pem", "good.key"), tls_ok),
        "unknown": tls_server(context("unknown.pem", "unknown.key"), tls_ok),
        "expired": tls_server(context("expired.pem", "good.key"), tls_ok),
        "plain": tls_server(None, plain_answer),
        "hangup": tls_server(None, hangup),
        "silent": tls_server(None, silent),
    }
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    ports["refused"] = probe.getsockname()[1]
    probe.close()
    print(json.dumps(ports), flush=True)
    sys.stdin.read()  # until the test closes stdin


def client(mode, port, root, host, how, wait):
    """Sends stdin's bytes through the proxy as `how` says; reads until close or `wait` s of silence."""
    request = sys.stdin.buffer.read()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if mode in ("tls", "connect-raw"):
        sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(1)
            if not chunk:
                break
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            print(json.dumps({"received": answer.decode("latin-1"), "closed": True}))
            return 0
        if mode == "tls":
            sock = ssl.create_default_context(cafile=root).wrap_socket(sock, server_hostname=host)
    try:
        if how == "trickle":  # one byte every 0.4 s, then silence
            for b in request:
                sock.sendall(bytes([b]))
                time.sleep(0.4)
        else:
            sock.sendall(request)
        if how == "close":
            sock.close()
            print(json.dumps({"received": "", "closed": True}))
            return 0
    except OSError:
        pass
    try:
        received, closed = read_until_quiet(sock, wait)
    except OSError:
        received, closed = b"", True
    print(json.dumps({"received": received[:2000].decode("latin-1"), "closed": closed}))
    return 0


def main(argv):
    if argv[:1] == ["upstream"] and len(argv) == 2:
        upstream(argv[1])
        return 0
    if argv[:1] == ["client"] and len(argv) == 7:
        _, mode, port, root, host, how, wait = argv
        return client(mode, int(port), root, host, how, float(wait))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
