// tokentap-loadgen: the HTTPS load generator bench/run drives (see bench/README.md).
//
// SwiftNIO client: optional CONNECT through a proxy, TLS trusting one given CA, HTTP/1.1
// keep-alive over N connections (one request in flight on each), for a duration or a fixed
// request count. Prints one JSON object on stdout:
//   {"requests", "errors", "seconds", "rps", "p50_ms", "p99_ms", "bytes", "mib_per_s", "wall_seconds"}
LoadGen.main()
