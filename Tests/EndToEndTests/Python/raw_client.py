"""A raw HTTP/1.1 client through the proxy: sends exactly the bytes it is given, reports exactly the
bytes it gets back (no HTTP parsing), and whether and when the proxy closed the connection.

    raw_client.py tls PROXY_PORT ROOT_PEM HOST IDLE_SECONDS    CONNECT HOST:443, TLS (trusting ROOT_PEM), then the bytes
    raw_client.py plain PROXY_PORT IDLE_SECONDS                the bytes straight to the proxy (absolute-form requests)

The request bytes come on stdin. Reads until the proxy closes or nothing arrives for IDLE_SECONDS.
Prints one JSON object: {"received": base64, "closed": bool, "seconds": time from the last byte
sent to EOF (or to the idle cut)}.
"""
import base64
import json
import socket
import ssl
import sys
import time


def read_until_quiet(sock, idle):
    """Reads until the peer closes (or resets) or nothing arrives for `idle` seconds: (bytes, closed)."""
    sock.settimeout(idle)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return received, False
        except (ConnectionResetError, ssl.SSLError):
            return received, True
        if not chunk:
            return received, True
        received += chunk


def main(argv):
    if argv[:1] == ["tls"] and len(argv) == 5:
        _, port, root, host, idle = argv
    elif argv[:1] == ["plain"] and len(argv) == 3:
        _, port, idle = argv
        root = host = None
    else:
        print(__doc__, file=sys.stderr)
        return 2
    request = sys.stdin.buffer.read()
    sock = socket.create_connection(("127.0.0.1", int(port)), timeout=20)
    if root is not None:
        sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(1)
            if not chunk:
                raise SystemExit("proxy closed during CONNECT")
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"CONNECT refused: {answer!r}")
        sock = ssl.create_default_context(cafile=root).wrap_socket(sock, server_hostname=host)
    sock.sendall(request)
    sent = time.monotonic()
    received, closed = read_until_quiet(sock, float(idle))
    elapsed = time.monotonic() - sent
    print(json.dumps({"received": base64.b64encode(received).decode(), "closed": closed, "seconds": elapsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
