import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The JSON line bench/run reads (same keys and rounding as the old loadgen.py).
struct Summary {
    let requests: Int
    let errors: Int
    let seconds: Double
    let bytes: Int
    let p50: Double?
    let p99: Double?
    let wallSeconds: Double

    init(results: [WorkerResult], start: NIODeadline, wallStart: NIODeadline, wallEnd: NIODeadline) {
        var all: [UInt64] = []
        all.reserveCapacity(results.reduce(0) { $0 + $1.latencies.count })
        for r in results { all.append(contentsOf: r.latencies) }
        all.sort()
        func percentile(_ q: Double) -> Double? {
            guard !all.isEmpty else { return nil }
            return Double(all[min(all.count - 1, Int(q * Double(all.count)))]) / 1e6
        }
        let end = results.map(\.end).max() ?? start
        requests = all.count
        errors = results.reduce(0) { $0 + $1.errors }
        bytes = results.reduce(0) { $0 + $1.bytes }
        seconds = Double((end - start).nanoseconds) / 1e9
        p50 = percentile(0.50)
        p99 = percentile(0.99)
        wallSeconds = Double((wallEnd - wallStart).nanoseconds) / 1e9
    }

    func json() -> String {
        let rps = seconds > 0 ? round(Double(requests) / seconds, 1) : 0
        let mib = seconds > 0 ? round(Double(bytes) / 1_048_576 / seconds, 1) : 0
        let fields: [(String, String)] = [
            ("requests", String(requests)),
            ("errors", String(errors)),
            ("seconds", number(round(seconds, 3))),
            ("rps", number(rps)),
            ("p50_ms", p50.map { number(round($0, 3)) } ?? "null"),
            ("p99_ms", p99.map { number(round($0, 3)) } ?? "null"),
            ("bytes", String(bytes)),
            ("mib_per_s", number(mib)),
            ("wall_seconds", number(round(wallSeconds, 3))),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    private func round(_ value: Double, _ digits: Int) -> Double {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        return (value * scale).rounded() / scale
    }

    private func number(_ value: Double) -> String {
        value.isFinite ? value.description : "null"
    }
}

/// stderr without Foundation (and without touching the C `stderr` global from several threads).
func writeStderr(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 { break }
            offset += n
        }
    }
}
