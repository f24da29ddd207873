#!/usr/bin/env python3
"""HTTPS load generator for bench/run: optional CONNECT through a proxy, TLS with a given CA,
HTTP/1.1 keep-alive over N connections, for a duration or a fixed request count.

Standard library only (asyncio + ssl). Several worker processes share the connections so the
client is not limited to one core. Prints one JSON object on stdout:
  {"requests": int, "errors": int, "seconds": float, "rps": float,
   "p50_ms": float, "p99_ms": float, "bytes": int, "mib_per_s": float, "wall_seconds": float}

The HTTP/1.1 response reader below understands Content-Length and chunked bodies only; that is
all nginx and the two proxies send for these workloads. It is a measuring tool, not a client.
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import os
import ssl
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connect", required=True, help="HOST:PORT to open TCP to (the proxy, or the server when direct)")
    p.add_argument("--proxy-target", help="send CONNECT HOST:PORT first (through a proxy); omit for direct")
    p.add_argument("--sni", default="api.miro.com", help="TLS server name and Host header")
    p.add_argument("--ca", required=True, help="PEM CA file the client trusts")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--procs", type=int, default=2, help="worker processes")
    p.add_argument("--duration", type=float, default=0, help="seconds (0 = use --requests)")
    p.add_argument("--requests", type=int, default=0, help="total requests (split across connections)")
    p.add_argument("--method", default="GET")
    p.add_argument("--path", action="append", help="request path; repeat to cycle through several")
    p.add_argument("--body", default="", help="request body (form-encoded for POST)")
    p.add_argument("--new-conn", action="store_true", help="a new TCP+TLS connection (and CONNECT) per request")
    p.add_argument("--timeout", type=float, default=30)
    return p.parse_args(argv)


async def read_response(reader):
    """Reads one HTTP/1.1 response; returns (status, body_bytes_count, keep_alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    chunked = False
    close = False
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and value.lower() == b"close":
            close = True
    n = 0
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                break
            n += await drain(reader, size)
            await reader.readexactly(2)
    elif length is not None:
        n = await drain(reader, length)
    else:
        while True:
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        close = True
    return status, n, not close


async def drain(reader, count):
    left = count
    while left > 0:
        chunk = await reader.read(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("body cut short")
        left -= len(chunk)
    return count


async def open_conn(args, ctx):
    host, port = args.connect.rsplit(":", 1)
    if not args.proxy_target:
        return await asyncio.open_connection(host, int(port), ssl=ctx, server_hostname=args.sni)
    reader, writer = await asyncio.open_connection(host, int(port))
    t = args.proxy_target
    writer.write(f"CONNECT {t} HTTP/1.1\r\nHost: {t}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200" not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError("CONNECT refused: " + head.split(b"\r\n", 1)[0].decode(errors="replace"))
    await writer.start_tls(ctx, server_hostname=args.sni)
    return reader, writer


def build_request(args, path):
    body = args.body.encode()
    head = f"{args.method} {path} HTTP/1.1\r\nHost: {args.sni}\r\nUser-Agent: tokentap-bench\r\nAccept: */*\r\n"
    if args.method != "GET" or body:
        head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def connection_loop(args, ctx, deadline, quota, lat, stats, offset):
    paths = args.path or ["/"]
    reqs = [build_request(args, p) for p in paths]
    i = offset
    conn = None
    done = 0
    while True:
        if deadline and time.perf_counter() >= deadline:
            break
        if quota is not None and done >= quota:
            break
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = await open_conn(args, ctx)
            reader, writer = conn
            writer.write(reqs[i % len(reqs)])
            i += 1
            status, n, keep = await asyncio.wait_for(read_response(reader), args.timeout)
            lat.append(time.perf_counter() - t0)
            stats["bytes"] += n
            if status >= 500:
                stats["errors"] += 1
            done += 1
            if not keep or args.new_conn:
                writer.close()
                conn = None
        except Exception as e:  # noqa: BLE001 - count and carry on with a fresh connection
            stats["errors"] += 1
            if stats["errors"] <= 3:
                print(f"loadgen: {type(e).__name__}: {e}", file=sys.stderr)
            if conn is not None:
                conn[1].close()
            conn = None
            done += 1
            if stats["errors"] > 1000:
                break
    if conn is not None:
        conn[1].close()


async def worker_main(args, nconn, quota_each, start_at, offset):
    ctx = ssl.create_default_context(cafile=args.ca)
    lat, stats = [], {"bytes": 0, "errors": 0}
    while time.time() < start_at:
        await asyncio.sleep(0.005)
    t0 = time.perf_counter()
    deadline = t0 + args.duration if args.duration else None
    await asyncio.gather(*[
        connection_loop(args, ctx, deadline, quota_each[k], lat, stats, offset + k)
        for k in range(nconn)
    ])
    return lat, stats, time.perf_counter() - t0


def worker(payload):
    args, nconn, quotas, start_at, offset = payload
    return asyncio.run(worker_main(args, nconn, quotas, start_at, offset))


def main():
    args = parse_args()
    procs = max(1, min(args.procs, args.connections))
    split = [args.connections // procs + (1 if k < args.connections % procs else 0) for k in range(procs)]
    if args.requests:
        per_conn = [args.requests // args.connections + (1 if k < args.requests % args.connections else 0)
                    for k in range(args.connections)]
    else:
        per_conn = [None] * args.connections
    payloads, c = [], 0
    start_at = time.time() + 0.3
    for k, n in enumerate(split):
        payloads.append((args, n, per_conn[c:c + n], start_at, c))
        c += n
    t0 = time.time()
    with mp.get_context("fork").Pool(procs) as pool:
        results = pool.map(worker, payloads)
    lat = [x for r in results for x in r[0]]
    seconds = max(r[2] for r in results)
    errors = sum(r[1]["errors"] for r in results)
    nbytes = sum(r[1]["bytes"] for r in results)
    lat.sort()
    def pct(q):
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 3) if lat else None
    print(json.dumps({
        "requests": len(lat), "errors": errors, "seconds": round(seconds, 3),
        "rps": round(len(lat) / seconds, 1) if seconds > 0 else 0,
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "bytes": nbytes,
        "mib_per_s": round(nbytes / 1048576 / seconds, 1) if seconds > 0 else 0,
        "wall_seconds": round(time.time() - t0, 3),
    }))


if __name__ == "__main__":
    main()
