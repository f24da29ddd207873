import Crypto
import Foundation
import ProxyServer
import TokentapCore

/// The variables `tokentap run` sets so a command's HTTP clients go through the proxy and trust
/// tokentap's CA (issue 16; README "tokentap run"). Pure: files are prepared by `GeneratedFiles`.
public struct RunEnvironment: Sendable {
    /// Proxy variables, both cases (curl reads `http_proxy` only in lower case).
    public static let proxyVariables = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    /// Variables that name one CA bundle file, replacing the default trust store of their client.
    public static let bundleVariables = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
                                         "AWS_CA_BUNDLE", "DENO_CERT"]
    /// Variables whose certificates the composed bundle keeps (a corporate TLS-inspection CA keeps
    /// working for tunnelled hosts).
    public static let inheritedBundleVariables = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"]

    /// `http://HOST:PORT` of the proxy.
    public var proxyURL: String
    /// The host patterns the proxy intercepts (NO_PROXY entries bypassing them are removed).
    public var intercept: [HostPattern]
    /// System roots + inherited certificates + tokentap's CA.
    public var bundle: String
    /// tokentap's CA (plus the certificates of an inherited NODE_EXTRA_CA_CERTS).
    public var nodeExtraCertificates: String
    /// The generated wgetrc (`ca_certificate = BUNDLE`).
    public var wgetrc: String
    /// The folder holding the generated `sitecustomize.py`; nil: Python is not hooked.
    public var pythonHook: String?
    /// The generated Node preload (`NODE_OPTIONS=--require`); nil: no preload.
    public var nodeHook: String?
    /// The JVM's PKCS#12 trust store (the JDK's `cacerts` + tokentap's CA); nil: no JDK was found
    /// (or the store could not be made), so no `JAVA_TOOL_OPTIONS`.
    public var javaTrustStore: String?

    /// Values as `prepare` computes them; paths are absolute.
    public init(proxyURL: String, intercept: [HostPattern], bundle: String, nodeExtraCertificates: String, wgetrc: String,
                pythonHook: String?, nodeHook: String? = nil, javaTrustStore: String? = nil) {
        self.proxyURL = proxyURL
        self.intercept = intercept
        self.bundle = bundle
        self.nodeExtraCertificates = nodeExtraCertificates
        self.wgetrc = wgetrc
        self.pythonHook = pythonHook
        self.nodeHook = nodeHook
        self.javaTrustStore = javaTrustStore
    }

    /// `NODE_OPTIONS` for `base`: its own value, then the preload (nil: no preload).
    public func nodeOptions(base: [String: String]) -> String? {
        nodeHook.map { NodeHook.options(requiring: $0, appendingTo: base["NODE_OPTIONS"]) }
    }

    /// tokentap's JVM options (proxy, non-proxy hosts from NO_PROXY, trust store), without the
    /// command's own; nil when no trust store was made.
    public func javaOptions(base: [String: String]) -> String? {
        guard let javaTrustStore, let (host, port) = JavaOptions.hostAndPort(ofProxyURL: proxyURL) else { return nil }
        // The JVM reads no NO_PROXY: it gets the kept entries (lower case first, as curl reads them).
        let nonProxy = (base["no_proxy"] ?? base["NO_PROXY"]).map {
            JavaOptions.nonProxyHosts(NoProxy.filter($0, intercept: intercept).kept, intercept: intercept).value
        }
        return JavaOptions.toolOptions(proxyHost: host, proxyPort: port, nonProxyHosts: nonProxy, trustStore: javaTrustStore)
    }

    /// `JAVA_TOOL_OPTIONS` for `base`: its own value, then tokentap's (nil: no JVM settings).
    public func javaToolOptions(base: [String: String]) -> String? {
        javaOptions(base: base).map { JavaOptions.appending($0, to: base["JAVA_TOOL_OPTIONS"]) }
    }

    /// `base` with the proxy, trust and hook variables set.
    public func apply(to base: [String: String]) -> [String: String] {
        var env = base
        for name in Self.proxyVariables { env[name] = proxyURL }
        for name in ["NO_PROXY", "no_proxy"] {
            guard let value = base[name] else { continue }
            env[name] = NoProxy.filter(value, intercept: intercept).kept
        }
        for name in Self.bundleVariables { env[name] = bundle }
        env["NODE_EXTRA_CA_CERTS"] = nodeExtraCertificates
        env["WGETRC"] = wgetrc
        env["TOKENTAP_PROXY"] = proxyURL
        env["TOKENTAP_CA_BUNDLE"] = bundle
        if let pythonHook {
            // Earlier tokentap hooks (a `run` inside a `run`) give way to this one.
            let others = (base["PYTHONPATH"] ?? "").split(separator: ":", omittingEmptySubsequences: true).map(String.init)
                .filter { !FileManager.default.fileExists(atPath: $0 + "/" + PythonHook.moduleFile) }
            env["PYTHONPATH"] = ([pythonHook] + others).joined(separator: ":")
        }
        // Node ≥ 22.21 / ≥ 24.5 then honour HTTPS_PROXY for http, https and fetch; the preload
        // serves older Node (and stands aside on these).
        env["NODE_USE_ENV_PROXY"] = "1"
        if let options = nodeOptions(base: base) { env["NODE_OPTIONS"] = options }
        if let options = javaToolOptions(base: base) { env["JAVA_TOOL_OPTIONS"] = options }
        return env
    }
}

/// `NO_PROXY` / `no_proxy`: comma-separated host names, `.domain`, `*.domain`, `host:port`, IP
/// addresses and CIDR ranges, or `*`. curl and Python treat `example.com` as that host and its
/// subdomains; an entry is dropped when some intercepted host would match it.
public enum NoProxy {
    /// The list without the entries that would send an intercepted host around the proxy.
    public static func filter(_ value: String, intercept: [HostPattern]) -> (kept: String, removed: [String]) {
        var kept: [String] = []
        var removed: [String] = []
        for raw in value.split(separator: ",") {
            let entry = raw.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty { continue }
            if bypassesIntercepted(entry, intercept: intercept) { removed.append(entry) } else { kept.append(entry) }
        }
        return (kept.joined(separator: ","), removed)
    }

    static func bypassesIntercepted(_ entry: String, intercept: [HostPattern]) -> Bool {
        if entry == "*" { return true }
        var domain = entry.lowercased()
        if domain.hasPrefix("*.") { domain.removeFirst(2) } else if domain.hasPrefix(".") { domain.removeFirst() }
        // host:port (not an IPv6 literal), [v6]:port
        if domain.hasPrefix("[") {
            domain = String(domain.dropFirst().prefix { $0 != "]" })
        } else if domain.filter({ $0 == ":" }).count == 1, let colon = domain.firstIndex(of: ":") {
            domain = String(domain[..<colon])
        }
        if domain.isEmpty { return false }
        for pattern in intercept {
            let p = pattern.pattern
            if p == "*" { return true }
            if p.hasPrefix("*.") {
                let base = String(p.dropFirst(2))
                // The entry names a host under base (or base's parent domain): some intercepted
                // subdomain matches it.
                if domain == base || domain.hasSuffix("." + base) || base.hasSuffix("." + domain) { return true }
            } else if p == domain || p.hasSuffix("." + domain) {
                return true
            }
        }
        return false
    }
}

/// Composes the one CA bundle `run` names everywhere.
public enum CABundle {
    /// Where Linux distributions keep the system roots.
    public static let systemRootFiles = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                                         "/etc/ssl/cert.pem"]

    /// The `-----BEGIN CERTIFICATE-----` blocks of a PEM text, each ending in a newline.
    public static func certificates(in pem: String) -> [String] {
        var result: [String] = []
        var current: [Substring]?
        for line in pem.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "-----BEGIN CERTIFICATE-----" {
                current = [Substring(trimmed)]
            } else if current != nil {
                current!.append(Substring(trimmed))
                if trimmed == "-----END CERTIFICATE-----" {
                    result.append(current!.joined(separator: "\n") + "\n")
                    current = nil
                }
            }
        }
        return result
    }

    /// System roots, then the certificates of every inherited bundle (deduplicated), then
    /// tokentap's CA. `inherited` pairs a variable name with its file's text.
    public static func compose(systemRoots: String?, inherited: [(name: String, text: String)], caPEM: String) -> String {
        var seen = Set<String>()
        var out = "# tokentap run: system roots, certificates the environment named, tokentap's CA\n"
        func add(_ certs: [String], label: String) {
            let fresh = certs.filter { seen.insert($0).inserted }
            guard !fresh.isEmpty else { return }
            out += "# \(label)\n" + fresh.joined()
        }
        add(certificates(in: systemRoots ?? ""), label: "system roots")
        for (name, text) in inherited { add(certificates(in: text), label: "from \(name)") }
        add(certificates(in: caPEM), label: "tokentap CA")
        return out
    }

    /// The system roots' text, or nil when none of `systemRootFiles` is readable.
    public static func systemRoots() -> String? {
        for path in systemRootFiles {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) { return text }
        }
        return nil
    }
}

/// Files `run` writes into `<home>/run/` (a folder with a `.gitignore` of `*`), named after a hash
/// of their content: a file a running command uses never changes under it, and two runs with
/// different environments never overwrite each other's.
public struct GeneratedFiles: Sendable {
    /// `<home>/run`.
    public let folder: URL

    /// The generated-files folder of `home` (created on first write).
    public init(home: Home) {
        folder = home.url.appendingPathComponent("run", isDirectory: true)
    }

    /// Creates the folder (with its `.gitignore`) when missing.
    public func prepare() throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir), isDir.boolValue { return }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileSystem.writeAtomically(Data("*\n".utf8), to: folder.appendingPathComponent(".gitignore"), mode: 0o644)
    }

    /// The first 16 hex digits of SHA-256 of `parts`.
    static func hash(_ parts: [String]) -> String {
        var hasher = SHA256()
        for part in parts {
            hasher.update(data: Data(part.utf8))
            hasher.update(data: Data([0]))
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined().prefix(16).description
    }

    /// `<folder>/<prefix>-<hash><suffix>` holding `content`, written (atomically) when missing.
    public func file(_ prefix: String, suffix: String = "", content: String, mode: mode_t = 0o644) throws -> URL {
        try prepare()
        let url = folder.appendingPathComponent("\(prefix)-\(Self.hash([content]))\(suffix)")
        if !FileManager.default.fileExists(atPath: url.path) {
            try FileSystem.writeAtomically(Data(content.utf8), to: url, mode: mode)
        }
        return url
    }

    /// `<folder>/<prefix>-<hash>/` holding `files` (name → content), created when missing.
    public func directory(_ prefix: String, files: [(name: String, content: String)]) throws -> URL {
        try prepare()
        let url = folder.appendingPathComponent("\(prefix)-\(Self.hash(files.flatMap { [$0.name, $0.content] }))", isDirectory: true)
        if FileManager.default.fileExists(atPath: url.path) { return url }
        let temp = folder.appendingPathComponent(".\(prefix)-\(UInt64.random(in: 0 ... .max)).tmp", isDirectory: true)
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        for (name, content) in files {
            try FileSystem.writeAtomically(Data(content.utf8), to: temp.appendingPathComponent(name), mode: 0o644)
        }
        if rename(temp.path, url.path) != 0 {
            try? FileManager.default.removeItem(at: temp)  // another run made it first
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
        return url
    }
}

extension RunEnvironment {
    /// Reads what `base` names (inherited bundles, the user's wgetrc), writes the generated files
    /// (bundle, Node's extra certificates, wgetrc, the Python hook, the Node preload, the JVM's
    /// trust store) and returns the environment plus notes for stderr (an inherited bundle that
    /// cannot be read, NO_PROXY entries dropped, a trust store keytool could not make).
    /// `keytool`: the JDK's (nil: no JDK, so no JVM settings and no note).
    /// - Throws: when the generated folder or its files cannot be written.
    public static func prepare(base: [String: String], proxyURL: String, intercept: [HostPattern], caPEM: String,
                               files: GeneratedFiles, userHome: String = NSHomeDirectory(),
                               keytool: String?? = nil) throws -> (RunEnvironment, notes: [String]) {
        var notes: [String] = []
        var inherited: [(name: String, text: String)] = []
        var readPaths = Set<String>()
        for name in inheritedBundleVariables {
            guard let path = base[name], !path.isEmpty, readPaths.insert(path).inserted else { continue }
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                inherited.append((name, text))
            } else {
                notes.append("\(name)=\(path) cannot be read: its certificates are not in the bundle")
            }
        }
        let bundleText = CABundle.compose(systemRoots: CABundle.systemRoots(), inherited: inherited, caPEM: caPEM)
        let bundle = try files.file("ca-bundle", suffix: ".pem", content: bundleText)

        var nodeExtra = caPEM.hasSuffix("\n") ? caPEM : caPEM + "\n"
        if let path = base["NODE_EXTRA_CA_CERTS"], let text = inherited.first(where: { $0.name == "NODE_EXTRA_CA_CERTS" })?.text
            ?? (try? String(contentsOfFile: path, encoding: .utf8)) {
            let extra = CABundle.certificates(in: text).filter { !nodeExtra.contains($0) }
            nodeExtra = extra.joined() + nodeExtra
        }
        let nodeFile = try files.file("node-extra-ca", suffix: ".pem", content: nodeExtra)

        // WGETRC replaces ~/.wgetrc: keep the user's settings, then trust the bundle (Debian's
        // wget uses GnuTLS, which ignores SSL_CERT_FILE). Mode 0600: it may hold their settings.
        var wgetrc = "# Generated by tokentap run: your wgetrc, then tokentap's CA bundle.\n"
        let userRC = base["WGETRC"].flatMap { $0.isEmpty ? nil : $0 } ?? (userHome + "/.wgetrc")
        if let text = try? String(contentsOfFile: userRC, encoding: .utf8) {
            wgetrc += text.hasSuffix("\n") || text.isEmpty ? text : text + "\n"
        }
        wgetrc += "ca_certificate = \(bundle.path)\n"
        let wgetrcFile = try files.file("wgetrc", content: wgetrc, mode: 0o600)

        var hook: String?
        if files.folder.path.contains(":") {
            notes.append("Python is not hooked: the home's path \(files.folder.path) contains ':', which PYTHONPATH cannot hold")
        } else {
            hook = try files.directory("python", files: PythonHook.files).path
        }
        for name in ["NO_PROXY", "no_proxy"] {
            guard let value = base[name] else { continue }
            let removed = NoProxy.filter(value, intercept: intercept).removed
            if !removed.isEmpty {
                notes.append("\(name): dropped \(removed.joined(separator: ",")) (it would send intercepted hosts around the proxy)")
            }
        }
        let nodeHook = try files.file(NodeHook.filePrefix, suffix: ".js", content: NodeHook.source).path

        var javaTrustStore: String?
        if let keytool = keytool ?? JavaTrustStore.findKeytool(environment: base) {
            if let cacerts = JavaTrustStore.cacerts(forKeytool: keytool) {
                do {
                    javaTrustStore = try JavaTrustStore.make(keytool: keytool, cacerts: cacerts, caPEM: caPEM, files: files).path
                } catch {
                    notes.append("the JVM is not set up (no JAVA_TOOL_OPTIONS): cannot make its trust store: \(error)")
                }
            } else {
                notes.append("the JVM is not set up (no JAVA_TOOL_OPTIONS): no cacerts next to \(keytool)")
            }
        }
        var env = RunEnvironment(proxyURL: proxyURL, intercept: intercept, bundle: bundle.path, nodeExtraCertificates: nodeFile.path,
                                 wgetrc: wgetrcFile.path, pythonHook: hook, nodeHook: nodeHook, javaTrustStore: javaTrustStore)
        if javaTrustStore != nil, env.javaOptions(base: base) == nil {
            notes.append("the JVM is not set up (no JAVA_TOOL_OPTIONS): the path \(javaTrustStore!) or NO_PROXY holds both kinds of quote")
            env.javaTrustStore = nil
        }
        if let value = base["no_proxy"] ?? base["NO_PROXY"], env.javaTrustStore != nil {
            let unsupported = JavaOptions.nonProxyHosts(NoProxy.filter(value, intercept: intercept).kept, intercept: intercept).unsupported
            if !unsupported.isEmpty {
                notes.append("NO_PROXY: the JVM's http.nonProxyHosts cannot express \(unsupported.joined(separator: ",")): the JVM sends those through the proxy")
            }
        }
        return (env, notes)
    }
}
