#!/usr/bin/env python3
"""bench/load's check: every response the load generator got against what the proxy recorded.

The client log (tokentap-loadgen --log) has one line per request: `STATUS TARGET BYTES FNV1A64`
(the body's length and FNV-1a 64 hash) or `ERR TARGET REASON`; every target is unique
(`c=CONNECTION&n=SEQ`). The database is opened read-only; the rows of the session are matched by
`target`: a response with no row is **lost**; a row whose status, body length or body hash differ
from what the client got is **corrupted**; a target recorded twice is a **duplicate**. Rows for
requests the client saw fail (`ERR`) are counted, not judged (the proxy records failures too).
RSS: the proxy's VmRSS sampled every second, and VmHWM at the end of the load, against a bound.
Prints a Markdown section (also written to --markdown); exits 1 when a check fails.
"""
import argparse, json, sqlite3, statistics, sys


# The section bench/load owns: from this heading to the end of BENCHMARKS.md (bench/report.py keeps it).
MARKER = "## bench/load: connections, lost, corrupted, RSS (issue 26)"


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    a = argparse.ArgumentParser()
    for name in ["client-log", "database", "session", "loadgen", "rss", "hwm-kib", "rss-limit-mib", "proxy-status",
                 "stop-seconds", "cpu-ticks", "connections", "duration", "binary", "proxy-stderr", "markdown"]:
        a.add_argument("--" + name, required=True)
    a.add_argument("--benchmarks", help="BENCHMARKS.md: its `## bench/load` section (the end of the file) is replaced")
    a.add_argument("--date", default="")
    o = a.parse_args()

    ok, failed = {}, {}
    for line in open(o.client_log, encoding="utf-8"):
        parts = line.rstrip("\n").split(" ", 3)
        if parts[0] == "ERR":
            failed[parts[1]] = parts[2] if len(parts) > 2 else ""
        elif len(parts) == 4:
            ok[parts[1]] = (int(parts[0]), int(parts[2]), int(parts[3], 16))
    db = sqlite3.connect(f"file:{o.database}?mode=ro", uri=True)
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    rows = {}
    duplicates = 0
    total_rows = 0
    for target, status, body, kind in db.execute(
            "SELECT target, status, response_body, kind FROM exchange WHERE session = ?", (o.session,)):
        total_rows += 1
        if target in rows:
            duplicates += 1
        rows[target] = (status, body or b"")
    lost, corrupted, hashed = [], [], 0
    for target, (status, length, digest) in ok.items():
        row = rows.get(target)
        if row is None:
            lost.append(target)
            continue
        rstatus, body = row
        if rstatus != status or len(body) != length or fnv1a64(body) != digest:
            corrupted.append(f"{target}: client {status}/{length}/{digest:x}, recorded {rstatus}/{len(body)}/{fnv1a64(body):x}")
        hashed += 1
    failed_recorded = sum(1 for t in failed if t in rows)
    unexplained = [t for t in rows if t not in ok and t not in failed]

    loadgen = json.loads(open(o.loadgen).read().strip().splitlines()[-1])
    samples = []
    for line in open(o.rss):
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            samples.append(int(parts[1]) / 1024)
    hwm = int(o.hwm_kib) / 1024
    limit = float(o.rss_limit_mib)
    tenth = max(1, len(samples) // 10)
    first, last = statistics.mean(samples[tenth:2 * tenth] or samples[:1]), statistics.mean(samples[-tenth:])
    warnings = [l.rstrip() for l in open(o.proxy_stderr) if l.strip()]

    checks = [
        ("lost (a response the client got, no row)", len(lost) == 0, str(len(lost))),
        ("corrupted (status, body length or body hash differ)", len(corrupted) == 0, str(len(corrupted))),
        ("duplicate rows", duplicates == 0, str(duplicates)),
        ("rows no client request explains", len(unexplained) == 0, str(len(unexplained))),
        ("database integrity_check", integrity == "ok", integrity),
        (f"proxy peak RSS (VmHWM) ≤ {limit:.0f} MiB", hwm <= limit, f"{hwm:.1f} MiB"),
        ("proxy exit status after SIGTERM", o.proxy_status == "0", o.proxy_status),
    ]
    debug = "/debug/" in o.binary
    md = [MARKER, "", f"`bench/load` (see bench/README.md), run {o.date}: {o.connections} client connections for "
          f"{o.duration} s through `tokentap proxy` to a local nginx, then every response compared with the recording.", ""]
    if debug:
        md += [f"**Debug binary** ({o.binary}): figures are not release figures.", ""]
    md += ["| figure | value |", "|---|---|",
           f"| client responses (complete) | {len(ok)} |",
           f"| client errors (no complete response) | {len(failed)} ({failed_recorded} of them recorded, as failures) |",
           f"| req/s (client) | {loadgen.get('rps')} |",
           f"| p50 / p99 ms (client) | {loadgen.get('p50_ms')} / {loadgen.get('p99_ms')} |",
           f"| rows recorded in the session | {total_rows} |",
           f"| responses compared (status, length, FNV-1a 64 of the body) | {hashed} |",
           f"| proxy RSS: 2nd tenth of the run → last tenth (mean VmRSS) | {first:.1f} → {last:.1f} MiB |",
           f"| proxy RSS: max sample / VmHWM | {max(samples):.1f} / {hwm:.1f} MiB |",
           f"| proxy CPU s during the load (user+sys) | {int(o.cpu_ticks) / 100:.1f} |",
           f"| SIGTERM → exit (writes the backlog) | {o.stop_seconds} s |",
           "", "| check | result | |", "|---|---|---|"]
    md += [f"| {name} | {value} | {'pass' if good else '**FAIL**'} |" for name, good, value in checks]
    if lost:
        md += ["", "Lost, first 5: " + ", ".join(f"`{t}`" for t in lost[:5])]
    if corrupted:
        md += ["", "Corrupted, first 5: " + "; ".join(f"`{c}`" for c in corrupted[:5])]
    if failed:
        reasons = {}
        for r in failed.values():
            reasons[r] = reasons.get(r, 0) + 1
        md += ["", "Client errors by reason: " + "; ".join(f"{n} × {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:5])]
    if warnings:
        md += ["", "Proxy stderr (first 5 lines): " + "; ".join(f"`{w[:160]}`" for w in warnings[:5])]
    text = "\n".join(md) + "\n"
    print(text)
    with open(o.markdown, "w") as fh:
        fh.write(text)
    if o.benchmarks:
        with open(o.benchmarks, encoding="utf-8") as fh:
            old = fh.read()
        head = old.split("\n" + MARKER)[0].rstrip("\n")
        with open(o.benchmarks, "w", encoding="utf-8") as fh:
            fh.write(head + "\n\n" + text)
    sys.exit(0 if all(good for _, good, _ in checks) else 1)


if __name__ == "__main__":
    main()
