import ArgumentParser
import CertificateAuthority
import Foundation
import ProxyServer
import RunSupport
import TokentapCore

/// Paths of the files tokentap keeps in `certs/`.
struct CertificatePaths {
    let home: Home
    /// The root certificate users trust.
    var caCertificate: URL { home.certs.appendingPathComponent("tokentap-ca.pem") }
    /// The name-constrained intermediate that signs leaves (absent for a CA of before name constraints).
    var caIntermediate: URL { home.certs.appendingPathComponent("tokentap-ca-intermediate.pem") }
    /// The intermediate's key (for a CA of before name constraints, the self-signed CA's key).
    var caKey: URL { home.certs.appendingPathComponent("tokentap-ca-key.pem") }
    var fingerprintKey: URL { home.certs.appendingPathComponent("tokentap-fingerprint.key") }
    var sandboxCA: URL { home.certs.appendingPathComponent("sandbox-ca.pem") }
    var sandboxCAKey: URL { home.certs.appendingPathComponent("sandbox-ca-key.pem") }

    var caFiles: CertificateAuthority.ChainFiles {
        CertificateAuthority.ChainFiles(root: caCertificate, intermediate: caIntermediate, key: caKey)
    }

    /// Whether any file of tokentap's CA exists.
    var caExists: Bool {
        [caCertificate, caIntermediate, caKey].contains { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// Loads or creates tokentap's CA; a broken CA is a runtime failure naming the file and the fix.
    /// - Parameters:
    ///   - permitting: the names a CA created by this call permits (nil: unconstrained).
    ///   - reissue: replace an existing CA.
    func loadAuthority(permitting: PermittedNames? = PermittedNames.tokentap(adding: []),
                       reissue: Bool = false) throws -> (CertificateAuthority, created: Bool) {
        do {
            return try CertificateAuthority.loadOrCreate(files: caFiles, permitting: permitting, reissue: reissue)
        } catch let error as CertificateAuthorityError {
            throw CLIFailure.runtime(error.description)
        } catch {
            throw CLIFailure.runtime("cannot create the CA in \(home.certs.path): \(error)")
        }
    }

    /// Loads (or, on first use, creates with `config`'s patterns) the CA a proxy will use, and
    /// checks that it can sign for every host `config` intercepts.
    ///
    /// - Throws: `CLIFailure.usage` (exit 2) when `--intercept '*'` meets a name-constrained CA
    ///   (or no CA yet: none is created), or when a pattern matches hosts outside the CA's name
    ///   constraints; the message names the `tokentap ca --reissue` command that fixes it.
    ///   `CLIFailure.runtime` for a broken CA.
    func authority(for config: ProxyConfiguration) throws -> (CertificateAuthority, created: Bool) {
        if !caExists, config.intercept.contains(where: { $0.permittedSubtree == nil }) {
            throw CLIFailure.usage(Self.unconstrainableMessage(caFile: caCertificate.path, permitted: nil))
        }
        let (authority, created) = try loadAuthority(permitting: config.permittedNames)
        switch config.coverage(by: authority.layout) {
        case .covered:
            break
        case .unconstrainable:
            guard case .constrained(let permitted) = authority.layout else { break }
            throw CLIFailure.usage(Self.unconstrainableMessage(caFile: caCertificate.path, permitted: permitted))
        case .outside(let patterns):
            guard case .constrained(let permitted) = authority.layout else { break }
            let names = patterns.map(\.shellQuoted).joined(separator: " ")
            let reissue = config.intercept.map { "--intercept \($0.shellQuoted)" }.joined(separator: " ")
            throw CLIFailure.usage("""
                tokentap's CA (\(caCertificate.path)) cannot sign for --intercept \(names): its name constraints \
                permit only \(permitted), so clients would reject the certificates. Run `tokentap ca --reissue \(reissue)` \
                to issue a CA that permits it, then remove the old CA where you installed it by hand and trust the new one \
                (`tokentap run` does this by itself)
                """)
        }
        return (authority, created)
    }

    static func unconstrainableMessage(caFile: String, permitted: PermittedNames?) -> String {
        let scope = permitted.map { "tokentap's CA (\(caFile)) is name-constrained to \($0)" }
            ?? "tokentap issues name-constrained CAs"
        return "--intercept '*' matches every host, and \(scope): no name constraint permits every name. "
            + "Intercept the hosts you need by name (--intercept '*.example.com'), or, knowing that anyone who copies "
            + "its key can then impersonate every site to machines that trust it, run "
            + "`tokentap ca --reissue --unconstrained`"
    }

    /// One line on the CA's name constraints, for `tokentap ca`.
    static func describe(_ layout: CertificateAuthority.Layout) -> String {
        switch layout {
        case .constrained(let permitted):
            return "\(permitted) (critical name constraints on the root and the intermediate)"
        case .unconstrained:
            return "ANY NAME: issued with --unconstrained; anyone who copies the key can impersonate every site to machines that trust this CA"
        case .selfSigned:
            return "ANY NAME: a CA made before name constraints; `tokentap ca --reissue` issues a name-constrained one"
        }
    }

    /// The one-line start-up warning for a CA without name constraints (nil for a constrained one).
    func startupWarning(_ layout: CertificateAuthority.Layout) -> String? {
        switch layout {
        case .constrained:
            return nil
        case .unconstrained:
            return "WARNING: tokentap's CA \(caCertificate.path) has no name constraints (--unconstrained): whoever copies \(caKey.path) can impersonate every site to machines that trust it"
        case .selfSigned:
            return "WARNING: tokentap's CA \(caCertificate.path) predates name constraints and can sign for any name: run `tokentap ca --reissue` for a name-constrained CA (then trust the new one)"
        }
    }
}

struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Show tokentap's CA, its name constraints, and the settings that make a client use tokentap (created on first use).",
        discussion: """
        The CA is a root (the certificate to trust) and an intermediate that signs the leaves; both carry critical \
        name constraints permitting only miro.com, the --intercept patterns given when it was issued, localhost, \
        127.0.0.0/8 and ::1. The root's key is discarded once it has signed the intermediate.
        """)

    @Flag(help: "Print only the root certificate (the one to trust), PEM.")
    var pem = false

    @Flag(help: "Create a new CA, replacing the current one (clients must trust the new one).")
    var reissue = false

    @Option(help: ArgumentHelp("With --reissue: also permit hosts matching this pattern (exact or *.domain), as `proxy --intercept` takes it.", valueName: "PATTERN"))
    var intercept: [String] = []

    @Flag(help: "With --reissue: a CA WITHOUT name constraints, which can sign for any name (needed for --intercept '*'). Loud on purpose.")
    var unconstrained = false

    @OptionGroup var homeOptions: HomeOptions

    func run() async throws {
        let patterns: [HostPattern]
        do { patterns = try intercept.map { try HostPattern(parsing: $0) } } catch let error as ConfigurationError {
            throw CLIFailure.usage(error.description)
        }
        if !reissue && (unconstrained || !intercept.isEmpty) {
            let flag = unconstrained ? "--unconstrained" : "--intercept"
            throw CLIFailure.usage("\(flag) shapes a new CA: add --reissue (tokentap ca --reissue \(flag)\(unconstrained ? "" : " PATTERN")), which replaces the current one")
        }
        if unconstrained && !patterns.isEmpty {
            throw CLIFailure.usage("--unconstrained permits every name: leave out --intercept")
        }
        if patterns.contains(where: { $0.permittedSubtree == nil }) {
            throw CLIFailure.usage("--intercept '*' cannot be name-constrained: run `tokentap ca --reissue --unconstrained` for a CA that signs for any name (anyone who copies its key can then impersonate every site to machines that trust it)")
        }
        let home = try homeOptions.resolve()
        let paths = CertificatePaths(home: home)
        let hadCA = paths.caExists
        let permitting: PermittedNames? = unconstrained ? nil : PermittedNames.tokentap(adding: patterns.compactMap(\.permittedSubtree))
        let (authority, created) = try paths.loadAuthority(permitting: permitting, reissue: reissue)
        if pem {
            print(authority.rootPEM, terminator: "")
            return
        }
        let ca = paths.caCertificate.path
        if created {
            if reissue && hadCA {
                print("""
                    issued a new CA: the old root is no longer used. Remove it wherever you installed it by hand (system \
                    store, browsers, Java keystores; see below) and trust this one; `tokentap run` trusts the new one by itself.
                    """)
            } else {
                print("created a new CA")
            }
        }
        if authority.layout == .unconstrained {
            print("WARNING: this CA has NO name constraints: anyone who copies \(paths.caKey.path) can impersonate every site to machines that trust it")
        }
        let chain: String
        switch authority.layout {
        case .selfSigned:
            chain = "key:          \(paths.caKey.path) (mode 0600; never share it)"
        case .constrained, .unconstrained:
            chain = """
            intermediate: \(paths.caIntermediate.path) (signed by the root; signs the leaves)
            key:          \(paths.caKey.path) (the intermediate's key, mode 0600; never share it; the root's key was never kept)
            """
        }
        print("""
        tokentap CA:  \(ca) (the root: the certificate to trust)
        \(chain)
        permits:      \(CertificatePaths.describe(authority.layout))
        home:         \(home.url.path) (from \(home.source.rawValue))
        """)
        // The settings `tokentap run` gives a command, for apps started another way.
        let live = await ProxyStateFile(home: home).liveProxy()
        let address = live?.address ?? "127.0.0.1:8877"
        let intercept = (live?.intercept ?? HostPattern.defaults.map(\.pattern)).compactMap { try? HostPattern(parsing: $0) }
        guard let caPEM = try? String(contentsOf: paths.caCertificate, encoding: .utf8) else {
            throw CLIFailure.runtime("cannot read \(ca): run `tokentap ca --reissue` to make a new CA")
        }
        let prepared: RunEnvironment
        do {
            prepared = try RunEnvironment.prepare(base: ProcessInfo.processInfo.environment, proxyURL: "http://\(address)",
                                                  intercept: intercept, caPEM: caPEM, files: GeneratedFiles(home: home)).0
        } catch {
            throw CLIFailure.runtime("cannot write the generated files in \(GeneratedFiles(home: home).folder.path): \(error)")
        }
        let q = shellQuoted
        let proxy = q(prepared.proxyURL)
        let bundle = q(prepared.bundle)
        print("""

        `tokentap run -- COMMAND` sets all of this for one command. For an app you start another way, with
        \(live == nil ? "`tokentap proxy` listening on \(address)" : "the proxy running at \(address) (session \(live!.session))"), paste into its shell:
          export HTTPS_PROXY=\(proxy) https_proxy=\(proxy) HTTP_PROXY=\(proxy) http_proxy=\(proxy) ALL_PROXY=\(proxy) all_proxy=\(proxy)
          export SSL_CERT_FILE=\(bundle) REQUESTS_CA_BUNDLE=\(bundle) CURL_CA_BUNDLE=\(bundle)
          export GIT_SSL_CAINFO=\(bundle) AWS_CA_BUNDLE=\(bundle) DENO_CERT=\(bundle)
          export NODE_EXTRA_CA_CERTS=\(q(prepared.nodeExtraCertificates)) WGETRC=\(q(prepared.wgetrc))
        """)
        if let hook = prepared.pythonHook {
            print("""
              export TOKENTAP_PROXY=\(proxy) TOKENTAP_CA_BUNDLE=\(bundle) PYTHONPATH=\(q(hook))${PYTHONPATH:+:$PYTHONPATH}
            """)
        } else {
            print("  export TOKENTAP_PROXY=\(proxy) TOKENTAP_CA_BUNDLE=\(bundle)")
        }
        // Appended to the shell's own values, as `run` does.
        if let node = prepared.nodeOptions(base: [:]) {
            print("  export NODE_USE_ENV_PROXY=1 NODE_OPTIONS=\"${NODE_OPTIONS:+$NODE_OPTIONS }\"\(q(node))")
        }
        if let java = prepared.javaOptions(base: ProcessInfo.processInfo.environment) {
            print("  export JAVA_TOOL_OPTIONS=\"${JAVA_TOOL_OPTIONS:+$JAVA_TOOL_OPTIONS }\"\(q(java))")
        }
        print("""
        (the bundle is the system roots + certificates your SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and
        NODE_EXTRA_CA_CERTS named + tokentap's CA; the Python hook routes urllib3, aiohttp and certifi users; Node
        >= 22.21 / >= 24.5 follows NODE_USE_ENV_PROXY, older Node gets the preload (https and http, not fetch());
        the JVM gets proxy properties and \(prepared.javaTrustStore.map { "\(q($0)), a PKCS#12 copy of the JDK's own trust store + tokentap's CA (password changeit)" } ?? "no trust store: no JDK was found, so no JVM settings"))

        Or one client at a time:
          curl              curl --proxy http://\(address) --cacert \(q(ca)) https://api.miro.com/...
          Debian system     sudo cp \(q(ca)) /usr/local/share/ca-certificates/tokentap.crt && sudo update-ca-certificates
          Firefox           Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import
                            (tick "Trust this CA to identify websites")
        To intercept hosts outside `permits`, issue a new CA: `tokentap ca --reissue --intercept PATTERN...`.
        Remove the trust when you are done; `tokentap ca --reissue` makes a new CA.
        """)
    }
}

/// `text` as one shell word: single-quoted when it holds anything but safe characters.
func shellQuoted(_ text: String) -> String {
    if !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/._-:=@%+,".contains($0)) }) { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
