import Crypto
import Foundation
import ProxyServer

/// The JVM settings `tokentap run` puts in `JAVA_TOOL_OPTIONS` (issue 21): the JVM takes proxy and
/// trust from system properties, not from the environment. `HttpURLConnection` and
/// `java.net.http.HttpClient` (whose default proxy selector, `ProxySelector.getDefault()`, reads
/// these properties) then go through the proxy and trust tokentap's CA. Pure.
public enum JavaOptions {
    /// The JVM's own default `http.nonProxyHosts`, kept when NO_PROXY adds entries to it.
    public static let jvmDefaultNonProxyHosts = ["localhost", "127.*", "[::1]"]
    /// A host each default entry matches, to check it against the intercepted patterns.
    static let jvmDefaultExamples = ["localhost": "localhost", "127.*": "127.0.0.1", "[::1]": "[::1]"]
    /// The password of the generated trust store (the JDK's well-known default; it protects nothing).
    public static let trustStorePassword = "changeit"

    /// `NO_PROXY` (already filtered by `NoProxy.filter`) in `http.nonProxyHosts` syntax:
    /// `|`-separated, a `*` only at the start or the end. `example.com`, `.example.com` and
    /// `*.example.com` (curl: the domain and its subdomains) → `example.com|*.example.com`;
    /// `host:port` → the host (the JVM has no ports here); IPv4 CIDR ranges on octet boundaries →
    /// `10.*`; IPv6 addresses in brackets. The JVM's defaults (loopback) come first, except those
    /// an intercepted pattern matches. `unsupported`: entries the JVM cannot express (other CIDR
    /// ranges), left out.
    public static func nonProxyHosts(_ noProxy: String, intercept: [HostPattern]) -> (value: String, unsupported: [String]) {
        var out: [String] = []
        var unsupported: [String] = []
        func add(_ item: String) {
            if !out.contains(item) { out.append(item) }
        }
        for item in jvmDefaultNonProxyHosts where !NoProxy.bypassesIntercepted(jvmDefaultExamples[item] ?? item, intercept: intercept) {
            add(item)
        }
        for raw in noProxy.split(separator: ",") {
            var entry = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if entry.isEmpty || entry == "*" { continue }
            if entry.contains("|") || entry.contains(" ") {
                unsupported.append(entry)
                continue
            }
            if entry.hasPrefix("[") {  // [v6] or [v6]:port
                add("[" + entry.dropFirst().prefix { $0 != "]" } + "]")
                continue
            }
            let colons = entry.filter { $0 == ":" }.count
            if colons > 1 {  // a bare IPv6 address (or range)
                if entry.contains("/") { unsupported.append(entry) } else { add("[\(entry)]") }
                continue
            }
            if colons == 1, let colon = entry.firstIndex(of: ":") { entry = String(entry[..<colon]) }
            if let slash = entry.firstIndex(of: "/") {
                let address = entry[..<slash].split(separator: ".", omittingEmptySubsequences: false)
                let bits = Int(entry[entry.index(after: slash)...])
                guard address.count == 4, address.allSatisfy({ UInt8($0) != nil }), let bits, bits >= 0, bits <= 32,
                      bits % 8 == 0 else {
                    unsupported.append(entry)
                    continue
                }
                add(bits == 0 ? "*" : address.prefix(bits / 8).joined(separator: ".") + (bits == 32 ? "" : ".*"))
                continue
            }
            if entry.hasPrefix("*.") { entry.removeFirst(2) } else if entry.hasPrefix(".") { entry.removeFirst() }
            if entry.isEmpty { continue }
            let isIPv4 = entry.split(separator: ".", omittingEmptySubsequences: false).count == 4
                && entry.split(separator: ".").allSatisfy { UInt8($0) != nil }
            add(entry)
            if !isIPv4 { add("*." + entry) }
        }
        return (out.joined(separator: "|"), unsupported)
    }

    /// `-Dname=value` as one `JAVA_TOOL_OPTIONS` word. The JVM splits that variable on white space
    /// and, since JDK 9, keeps quoted text whole (quotes removed); nil when `value` holds both
    /// kinds of quote.
    public static func property(_ name: String, _ value: String) -> String? {
        let plain = !value.isEmpty && !value.contains { $0.isWhitespace || $0 == "\"" || $0 == "'" }
        if plain { return "-D\(name)=\(value)" }
        if !value.contains("\"") { return "-D\(name)=\"\(value)\"" }
        if !value.contains("'") { return "-D\(name)='\(value)'" }
        return nil
    }

    /// The proxy and trust options, or nil when the trust store's path cannot be written in
    /// `JAVA_TOOL_OPTIONS` (it holds both kinds of quote).
    public static func toolOptions(proxyHost: String, proxyPort: Int, nonProxyHosts: String?, trustStore: String) -> String? {
        var words = ["-Dhttps.proxyHost=\(proxyHost)", "-Dhttps.proxyPort=\(proxyPort)",
                     "-Dhttp.proxyHost=\(proxyHost)", "-Dhttp.proxyPort=\(proxyPort)"]
        if let nonProxyHosts, !nonProxyHosts.isEmpty {
            guard let word = property("http.nonProxyHosts", nonProxyHosts) else { return nil }
            words.append(word)
        }
        guard let store = property("javax.net.ssl.trustStore", trustStore) else { return nil }
        words += [store, "-Djavax.net.ssl.trustStorePassword=\(trustStorePassword)", "-Djavax.net.ssl.trustStoreType=PKCS12"]
        return words.joined(separator: " ")
    }

    /// `existing` (the command's `JAVA_TOOL_OPTIONS`, if any) followed by `ours`: for a property set
    /// twice, the JVM keeps the last.
    public static func appending(_ ours: String, to existing: String?) -> String {
        guard let existing = existing?.trimmingCharacters(in: .whitespaces), !existing.isEmpty else { return ours }
        if existing.hasSuffix(ours) { return existing }
        return existing + " " + ours
    }

    /// Host and port of `http://HOST:PORT` (IPv6 literals without their brackets).
    public static func hostAndPort(ofProxyURL url: String) -> (host: String, port: Int)? {
        var rest = Substring(url)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        rest = rest.prefix { $0 != "/" }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else { return nil }
        var host = String(rest[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}

/// The PKCS#12 trust store the JVM gets under `tokentap run`: the JDK's own `cacerts` plus
/// tokentap's CA, made with the JDK's `keytool`, in the generated folder, named after a hash of
/// the CA and the `cacerts` it was made from (so `tokentap ca --reissue`, or a JDK update, makes a
/// new one; an unchanged pair is reused).
public enum JavaTrustStore {
    /// `$JAVA_HOME/bin/keytool`, else `keytool` on `PATH`; nil: no JDK, no JVM settings.
    public static func findKeytool(environment: [String: String]) -> String? {
        if let home = environment["JAVA_HOME"], !home.isEmpty {
            let path = home + "/bin/keytool"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        for folder in (environment["PATH"] ?? "").split(separator: ":") where !folder.isEmpty {
            let path = String(folder) + "/keytool"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// The `cacerts` of the JDK `keytool` belongs to (`lib/security`, or `jre/lib/security` for
    /// Java 8), following symbolic links (Debian: `/usr/bin/keytool` → `/etc/alternatives` → the JDK).
    public static func cacerts(forKeytool keytool: String) -> String? {
        let real = URL(fileURLWithPath: keytool).resolvingSymlinksInPath()
        let jdk = real.deletingLastPathComponent().deletingLastPathComponent()
        for relative in ["lib/security/cacerts", "jre/lib/security/cacerts"] {
            let path = jdk.appendingPathComponent(relative).path
            if FileManager.default.isReadableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Why a trust store could not be made.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The store for `caPEM`, made when missing: `keytool -importkeystore` of `cacerts` into a new
    /// PKCS#12 file, then `keytool -importcert` of the CA (about a second, once per CA).
    public static func make(keytool: String, cacerts: String, caPEM: String, files: GeneratedFiles) throws -> URL {
        let cacertsData = try Data(contentsOf: URL(fileURLWithPath: cacerts))
        let cacertsHash = SHA256.hash(data: cacertsData).map { String(format: "%02x", $0) }.joined()
        try files.prepare()
        let name = "java-truststore-\(GeneratedFiles.hash([caPEM, cacertsHash])).p12"
        let url = files.folder.appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: url.path) { return url }

        let work = files.folder.appendingPathComponent(".java-\(UInt64.random(in: 0 ... .max)).tmp", isDirectory: true)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: work) }
        let store = work.appendingPathComponent("store.p12").path
        let ca = work.appendingPathComponent("tokentap-ca.pem")
        try Data(caPEM.utf8).write(to: ca)
        let password = JavaOptions.trustStorePassword
        try runKeytool(keytool, ["-importkeystore", "-noprompt", "-srckeystore", cacerts, "-srcstorepass", password,
                                 "-destkeystore", store, "-deststoretype", "PKCS12", "-deststorepass", password])
        try runKeytool(keytool, ["-importcert", "-noprompt", "-alias", "tokentap-ca", "-file", ca.path,
                                 "-keystore", store, "-storetype", "PKCS12", "-storepass", password])
        if rename(store, url.path) != 0, !FileManager.default.fileExists(atPath: url.path) {
            throw Failure(description: "cannot move the trust store to \(url.path): \(String(cString: strerror(errno)))")
        }
        chmod(url.path, 0o644)
        return url
    }

    static func runKeytool(_ keytool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: keytool)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        // keytool is a JVM: no options or agents of the user's (nor "Picked up …" on stderr).
        for name in ["JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"] { environment[name] = nil }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw Failure(description: "cannot run \(keytool): \(error)")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let detail = text.split(separator: "\n").last.map(String.init) ?? "no output"
            throw Failure(description: "\(keytool) \(arguments.first ?? "") exited \(process.terminationStatus): \(detail)")
        }
    }
}
