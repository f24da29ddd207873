"""WebSocket echo server and clients for the upgrade end-to-end tests (Python `websockets` >= 15).

  ws_echo.py server CERT KEY              TLS echo server on 127.0.0.1:0; prints "listening on HOST:PORT"
  ws_echo.py echo PROXY_URL CA URI        1,000 messages (text and binary, 1 B .. 1 MiB on a log scale,
                                          a few MiB in total) through the proxy; each echo checked; close 1000
  ws_echo.py few PROXY_URL CA URI         three messages, close 1000
  ws_echo.py drop PROXY_URL CA URI        one message, then half a frame, then the TCP connection reset
Prints one JSON object on stdout (clients).
"""
import asyncio
import json
import math
import os
import signal
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

MAX = 2 ** 21


def sizes():
    """1,000 sizes: every power of two from 1 B to 1 MiB, and 979 more log-spaced from 1 B to 16 KiB."""
    small = [round(math.exp(math.log(16384) * i / 978)) for i in range(979)]
    powers = [2 ** k for k in range(21)]
    out = []
    step = len(small) // len(powers)
    for i, s in enumerate(small):
        out.append(s)
        if i % step == step - 1 and powers:
            out.append(powers.pop(0))
    out.extend(powers)
    assert len(out) == 1000
    return out


def message(i, size):
    if i % 2 == 0:
        return "".join(chr(0x61 + (i + j) % 26) for j in range(size)) if size < 64 else (chr(0x61 + i % 26) * size)
    return bytes((i * 7 + j) % 251 for j in range(min(size, 251))) * (size // 251) + bytes((i * 7 + j) % 251 for j in range(size % 251))


def wire_size(size, masked):
    """A frame's bytes on the wire (RFC 6455 section 5.2): header, mask key, payload."""
    return 2 + (0 if size < 126 else 2 if size <= 0xFFFF else 8) + (4 if masked else 0) + size


async def server(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def echo(ws):
        try:
            async for msg in ws:
                await ws.send(msg)
        except Exception:
            pass

    async with serve(echo, "127.0.0.1", 0, ssl=ctx, max_size=MAX, ping_interval=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        print(f"listening on 127.0.0.1:{port}", flush=True)
        await asyncio.Future()


def client_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


async def echo_client(proxy, ca, uri, count):
    all_sizes = sizes()[:count] if count < 1000 else sizes()
    total = 0
    # No permessage-deflate: the frames carry the messages as they are, so the wire sizes are known.
    async with connect(uri, proxy=proxy, ssl=client_context(ca), max_size=MAX, ping_interval=None, compression=None) as ws:
        for i, size in enumerate(all_sizes):
            msg = message(i, size)
            await ws.send(msg)
            back = await ws.recv()
            if type(back) is not type(msg) or back != msg:
                return {"ok": False, "failed_at": i, "size": size, "got": len(back)}
            total += size
        await ws.close(code=1000)
    # The close frames: the client's carries the code (masked), the server's echoes it.
    wire_client = sum(wire_size(n, True) for n in all_sizes) + wire_size(2, True)
    wire_server = sum(wire_size(n, False) for n in all_sizes) + wire_size(2, False)
    return {"ok": True, "messages": len(all_sizes), "bytes": total, "close_code": ws.close_code,
            "wire_client": wire_client, "wire_server": wire_server}


async def drop_client(proxy, ca, uri):
    ws = await connect(uri, proxy=proxy, ssl=client_context(ca), max_size=MAX, ping_interval=None)
    await ws.send("before the drop")
    back = await ws.recv()
    # Half a masked binary frame announcing 4096 bytes, then a reset.
    ws.transport.write(bytes([0x82, 0xFE, 0x10, 0x00, 1, 2, 3, 4]) + os.urandom(100))
    await asyncio.sleep(0.3)
    ws.transport.abort()
    return {"ok": back == "before the drop"}


def main():
    mode = sys.argv[1]
    # Started from a test process whose threads block signals: take SIGTERM back.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if mode == "server":
        asyncio.run(server(sys.argv[2], sys.argv[3]))
        return
    proxy, ca, uri = sys.argv[2], sys.argv[3], sys.argv[4]
    proxy = None if proxy == "none" else proxy
    if mode == "echo":
        result = asyncio.run(echo_client(proxy, ca, uri, 1000))
    elif mode == "few":
        result = asyncio.run(echo_client(proxy, ca, uri, 3))
    elif mode == "drop":
        result = asyncio.run(drop_client(proxy, ca, uri))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
