import ArgumentParser
import CertificateAuthority
import Foundation
import ProxyServer
import RunSupport
import TokentapCore

/// Paths of the files tokentap keeps in `certs/`.
struct CertificatePaths {
    let home: Home
    var caCertificate: URL { home.certs.appendingPathComponent("tokentap-ca.pem") }
    var caKey: URL { home.certs.appendingPathComponent("tokentap-ca-key.pem") }
    var fingerprintKey: URL { home.certs.appendingPathComponent("tokentap-fingerprint.key") }
    var sandboxCA: URL { home.certs.appendingPathComponent("sandbox-ca.pem") }
    var sandboxCAKey: URL { home.certs.appendingPathComponent("sandbox-ca-key.pem") }

    /// Loads or creates tokentap's CA; a broken CA is a runtime failure naming the file and the fix.
    func loadAuthority(reissue: Bool = false) throws -> (CertificateAuthority, created: Bool) {
        do {
            return try CertificateAuthority.loadOrCreate(certificateURL: caCertificate, keyURL: caKey, reissue: reissue)
        } catch let error as CertificateAuthorityError {
            throw CLIFailure.runtime(error.description)
        } catch {
            throw CLIFailure.runtime("cannot create the CA in \(home.certs.path): \(error)")
        }
    }
}

struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Show tokentap's CA certificate and the settings that make a client use tokentap (created on first use).")

    @Flag(help: "Print only the CA certificate, PEM.")
    var pem = false

    @Flag(help: "Create a new CA, replacing the current one (clients must trust the new one).")
    var reissue = false

    @OptionGroup var homeOptions: HomeOptions

    func run() async throws {
        let home = try homeOptions.resolve()
        let paths = CertificatePaths(home: home)
        let (authority, created) = try paths.loadAuthority(reissue: reissue)
        if pem {
            print(authority.certificatePEM, terminator: authority.certificatePEM.hasSuffix("\n") ? "" : "\n")
            return
        }
        let ca = paths.caCertificate.path
        if created { print(reissue ? "issued a new CA (clients that trusted the old one must trust this one)" : "created a new CA") }
        print("""
        tokentap CA: \(ca)
        key:         \(paths.caKey.path) (mode 0600; never share it)
        home:        \(home.url.path) (from \(home.source.rawValue))
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
        }
        print("""
        (the bundle is the system roots + certificates your SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and
        NODE_EXTRA_CA_CERTS named + tokentap's CA; the Python hook routes urllib3, aiohttp and certifi users)

        Or one client at a time:
          curl              curl --proxy http://\(address) --cacert \(q(ca)) https://api.miro.com/...
          Debian system     sudo cp \(q(ca)) /usr/local/share/ca-certificates/tokentap.crt && sudo update-ca-certificates
          Firefox           Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import
                            (tick "Trust this CA to identify websites")
        Remove the trust when you are done; `tokentap ca --reissue` makes a new CA.
        """)
    }
}

/// `text` as one shell word: single-quoted when it holds anything but safe characters.
func shellQuoted(_ text: String) -> String {
    if !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/._-:=@%+,".contains($0)) }) { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
