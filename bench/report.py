#!/usr/bin/env python3
"""Turns bench/run's rows into a table, bench/results/latest.json (+ a dated copy) and BENCHMARKS.md.

usage: report.py ROWS.jsonl E_JSON RESULTS_DIR BENCHMARKS.md DURATION MITM_VERSION NGINX_VERSION COMMIT TOKENTAP_BINARY
"""
import datetime
import json
import os
import platform
import sys


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_total": mem,
            "kernel": platform.release(), "python": platform.python_version()}


def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def ratio(a, b):
    if not a or not b:
        return None
    return round(a / b, 3)


def targets(ratios, by, e):
    """(name, measured text, met: bool or None when not measured) for each target of issue 10."""
    out = []
    for w in ("a_get_keepalive_16", "b_post_form_1k_json"):
        v = ratios.get(w, {})
        m, d, p = v.get("tokentap_over_mitmdump_rps"), v.get("tokentap_over_direct_rps"), v.get("tokentap_added_p50_ms")
        out.append((f"{w[0]}: ≥ 10× mitmdump", fmt(m, 1) + "×", None if m is None else m >= 10))
        out.append((f"{w[0]}: ≥ 0.4× direct", fmt(d, 3) + "×", None if d is None else d >= 0.4))
        out.append((f"{w[0]}: added p50 ≤ 1 ms", fmt(p, 2) + " ms", None if p is None else p <= 1))
    c0 = ratios.get("c0_first_request_new_host", {}).get("tokentap_added_p50_ms")
    out.append(("c: new-host first request ≤ 5 ms over direct", fmt(c0, 2) + " ms", None if c0 is None else c0 <= 5))
    drow = by.get(("d_download_256mib", "tokentap"))
    rss = drow and drow.get("proxy_peak_rss_mib")
    out.append(("d: peak RSS < 64 MiB through 256 MiB", fmt(rss) + " MiB", None if rss is None else rss < 64))
    r5 = e.get("rss_after_5000_mib")
    r50 = next((v for k, v in e.items() if k.startswith("rss_after_") and k != "rss_after_5000_mib"), None)
    flat = None if not r5 or r50 is None else abs(r50 - r5) / r5 <= 0.10
    out.append(("e: RSS flat (±10%) 5,000 → 50,000 exchanges", f"{fmt(r5)} → {fmt(r50)} MiB", flat))
    lm = e.get("list_4xx_ms")
    out.append((f"e: filtered list < 300 ms ({fmt(e.get('list_lines_all'))} rows)", fmt(lm) + " ms", None if lm is None else lm < 300))
    return out


def main():
    rows_path, e_json, results_dir, md_path, duration, mitm_version, nginx_version, commit, binary = sys.argv[1:10]
    rows = [json.loads(l) for l in open(rows_path) if l.strip()]
    e = json.loads(e_json)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    m = machine()

    by = {(r["workload"], r["target"]): r for r in rows}
    workloads = [w for w in dict.fromkeys(r["workload"] for r in rows) if not w.startswith("e_")]
    ratios = {}
    for w in workloads:
        d, t, x = by.get((w, "direct")), by.get((w, "tokentap")), by.get((w, "mitmdump"))
        ratios[w] = {
            "tokentap_over_direct_rps": ratio(t and t["rps"], d and d["rps"]),
            "tokentap_over_mitmdump_rps": ratio(t and t["rps"], x and x["rps"]),
            "tokentap_added_p50_ms": (round(t["p50_ms"] - d["p50_ms"], 3) if t and d and t["p50_ms"] is not None and d["p50_ms"] is not None else None),
        }

    doc = {"date": now.isoformat(), "commit": commit, "machine": m, "duration_s": float(duration),
           "mitmdump": mitm_version, "tokentap_binary": binary, "nginx": nginx_version, "rows": rows, "ratios": ratios, "e": e}
    os.makedirs(results_dir, exist_ok=True)
    for name in ("latest.json", now.strftime("%Y%m%dT%H%M%SZ") + ".json"):
        with open(os.path.join(results_dir, name), "w") as f:
            json.dump(doc, f, indent=2)

    lines = []
    lines.append("| workload | target | requests | errors | req/s | MiB/s | p50 ms | p99 ms | proxy peak RSS MiB | proxy CPU s | proxy CPU s / 1k req |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        lines.append(f"| {r['workload']} | {r['target']} | {fmt(r['requests'])} | {fmt(r['errors'])} | {fmt(r['rps'])} | {fmt(r.get('mib_per_s'))} | "
                     f"{fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {fmt(r['proxy_peak_rss_mib'])} | {fmt(r.get('proxy_cpu_s'), 2)} | {fmt(r['proxy_cpu_s_per_1k'], 3)} |")
    table = "\n".join(lines)
    rlines = ["| workload | tokentap / direct (req/s) | tokentap / mitmdump (req/s) | tokentap added p50 ms |", "|---|---:|---:|---:|"]
    for w, v in ratios.items():
        if w.startswith("d_"):
            continue  # one request: see MiB/s and RSS instead
        rlines.append(f"| {w} | {fmt(v['tokentap_over_direct_rps'], 3)} | {fmt(v['tokentap_over_mitmdump_rps'], 3)} | {fmt(v['tokentap_added_p50_ms'], 2)} |")
    rtable = "\n".join(rlines)
    elines = ["| figure | value |", "|---|---:|"] + [f"| {k} | {fmt(v)} |" for k, v in e.items()]
    etable = "\n".join(elines)
    ttable = "\n".join(["| target (issue 10) | measured | met |", "|---|---|:---:|"] + [
        f"| {name} | {measured} | {'n/a' if ok is None else ('yes' if ok else '**no**')} |" for name, measured, ok in targets(ratios, by, e)])

    print(table)
    print()
    print(rtable)
    print()
    print(etable)
    print()
    print(ttable)

    # bench/load's section (issue 26) is the end of the file: kept as it is.
    kept = ""
    if os.path.exists(md_path):
        old = open(md_path, encoding="utf-8").read()
        marker = "\n## bench/load:"
        if marker in old:
            kept = "\n" + marker.lstrip("\n") + old.split(marker, 1)[1]
    with open(md_path, "w") as f:
        f.write(f"""# tokentap benchmarks

Latest run of `bench/run` (see `bench/README.md` for what each workload measures and how the
figures are taken). Numbers from one run on a shared machine: compare the ratios, not the absolutes.

- Date: {now.isoformat()} · commit {commit}
- Machine: {m['nproc']} CPUs, {m['cpu_model']}, {m['mem_total']} RAM, Linux {m['kernel']}
- Upstream: nginx {nginx_version} (1 worker, TLS, keep-alive) on 127.0.0.1
- Load generator: `tokentap-loadgen` (`bench/LoadGen`, SwiftNIO + NIOSSL, 2 event-loop threads, one process) — the same client for every target
- mitmdump: {mitm_version} (`--mode regular`, writing a flow file with `-w`, default options: it
  buffers whole bodies, as `stream_large_bodies` is unset)
- tokentap: `{binary}`{" — **DEBUG build: not representative of release performance**" if "/debug/" in binary else " (release build)"}, recording on (SQLite), default `--max-body` (1 MiB)
- Throughput runs: {duration} s each

## Results

{table}

## Ratios

{rtable}

## (e) 50,000 recorded exchanges, then the list timings at E_LIST_ROWS (tokentap only)

{etable}

## Targets

{ttable}
""")
        if kept:
            f.write("\n" + kept.lstrip("\n"))


if __name__ == "__main__":
    main()
