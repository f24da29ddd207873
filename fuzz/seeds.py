#!/usr/bin/env python3
"""fuzz/seeds.py OUT: seeds for every fuzz target, taken from the test corpora.

Reads the string literals of the main package's tests (Tests/RedactionTests, OAuthDiagnosisTests,
RecordingTests, the end-to-end secret corpus), single-line and multi-line (an interpolation
`\\(...)` becomes `x`), and files each under the targets whose input it looks like: forms,
JSON, XML/HTML, Basic credentials (also base64-encoded), JWTs, URLs and queries, HAR documents;
every literal of 8 bytes or more is also a text seed. Writes OUT/TARGET/seed-N files.
"""
import base64, hashlib, os, re, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SOURCES = ["Tests/RedactionTests", "Tests/OAuthDiagnosisTests", "Tests/RecordingTests",
           "Tests/ReportsTests", "Tests/EndToEndTests/SecretCorpusEndToEndTests.swift",
           "Tests/EndToEndTests/RedactionEndToEndTests.swift"]
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", '"': '"', "\\": "\\", "'": "'"}


def unescape(body):
    body = re.sub(r"\\\((?:[^()]|\([^()]*\))*\)", "x", body)  # interpolations
    body = re.sub(r"\\u\{([0-9a-fA-F]+)\}", lambda m: chr(int(m.group(1), 16)), body)
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), body)


def literals(text):
    for m in re.finditer(r'"""\n(.*?)\n\s*"""', text, re.S):  # multi-line
        lines = m.group(1).split("\n")
        indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
        yield unescape("\n".join(l[indent:] for l in lines))
    for m in re.finditer(r'#"(.*?)"#', text):  # raw: no escapes
        yield re.sub(r"\\#\((?:[^()]|\([^()]*\))*\)", "{}", m.group(1))
    for m in re.finditer(r'(?<![#"])"((?:[^"\\\n]|\\.)*)"(?!")', text):
        yield unescape(m.group(1))


def targets(s):
    out = set()
    if len(s.encode()) >= 8:
        out.add("FuzzText")
    if "=" in s and ("&" in s or s.count("=") == 1) and "<" not in s:
        out.update(["FuzzForm", "FuzzURL"])
    if s.lstrip().startswith(("{", "[")):
        out.add("FuzzJSON")
    if "<" in s and ">" in s:
        out.add("FuzzXML")
    if s.startswith(("Basic", "Bearer")) or re.fullmatch(r"[A-Za-z0-9+/=_-]{8,}", s):
        out.add("FuzzBasic")
    if "eyJ" in s:
        out.add("FuzzJWT")
    if "://" in s or s.startswith("/") or "?" in s:
        out.add("FuzzURL")
    if '"log"' in s and '"entries"' in s:
        out.add("FuzzHAR")
    return out


def main(out):
    seen = set()
    for src in SOURCES:
        path = os.path.join(ROOT, src)
        files = [os.path.join(path, f) for f in sorted(os.listdir(path))] if os.path.isdir(path) else [path]
        for f in files:
            if f.endswith(".swift"):
                for s in literals(open(f, encoding="utf-8").read()):
                    seen.add(s)
    extra = set()
    for s in seen:
        if ":" in s and len(s) < 200 and "\n" not in s:  # id:secret pairs, as a Basic header carries them
            extra.add("Basic " + base64.b64encode(s.encode()).decode())
    counts = {}
    for s in sorted(seen | extra):
        for t in targets(s) | ({"FuzzBasic"} if s in extra else set()):
            d = os.path.join(out, t)
            os.makedirs(d, exist_ok=True)
            data = s.encode("utf-8", "surrogatepass")
            with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:12]), "wb") as fh:
                fh.write(data)
            counts[t] = counts.get(t, 0) + 1
    for t in ["FuzzForm", "FuzzJSON", "FuzzXML", "FuzzText", "FuzzBasic", "FuzzJWT", "FuzzURL", "FuzzHAR"]:
        os.makedirs(os.path.join(out, t), exist_ok=True)
        print(f"{t}: {counts.get(t, 0)} seeds")


if __name__ == "__main__":
    main(sys.argv[1])
