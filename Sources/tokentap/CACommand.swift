import ArgumentParser
import CertificateAuthority
import Foundation
import TokentapCore

/// Paths of the files tokentap keeps in `certs/`.
struct CertificatePaths {
    let home: Home
    var caCertificate: URL { home.certs.appendingPathComponent("tokentap-ca.pem") }
    var caKey: URL { home.certs.appendingPathComponent("tokentap-ca-key.pem") }
    var fingerprintKey: URL { home.certs.appendingPathComponent("tokentap-fingerprint.key") }
    var bundle: URL { home.certs.appendingPathComponent("tokentap-bundle.pem") }
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

struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Show tokentap's CA certificate and how to trust it (created on first use).")

    @Flag(help: "Print only the CA certificate, PEM.")
    var pem = false

    @Flag(help: "Create a new CA, replacing the current one (clients must trust the new one).")
    var reissue = false

    @OptionGroup var homeOptions: HomeOptions

    func run() throws {
        let paths = CertificatePaths(home: try homeOptions.resolve())
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
        home:        \(paths.home.url.path) (from \(paths.home.source.rawValue))

        Trust it only on this machine, for the apps you debug:
          curl              curl --proxy http://127.0.0.1:8877 --cacert \(ca) https://api.miro.com/...
          Python requests   export REQUESTS_CA_BUNDLE=\(paths.bundle.path)   (system roots + this CA; `tokentap run` writes it)
          Python ssl/httpx  export SSL_CERT_FILE=\(paths.bundle.path)
          Node.js           export NODE_EXTRA_CA_CERTS=\(ca)
          Java              keytool -importcert -alias tokentap -file \(ca) -cacerts -storepass changeit -noprompt
          Debian system     sudo cp \(ca) /usr/local/share/ca-certificates/tokentap.crt && sudo update-ca-certificates
          Chrome/Chromium   certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n tokentap -i \(ca)
                            (or Settings > Privacy and security > Security > Manage certificates > Authorities > Import)
          Firefox           Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import
                            (tick "Trust this CA to identify websites")
        Or let `tokentap run -- COMMAND` set the proxy and trust variables for one command.
        Remove the trust when you are done; `tokentap ca --reissue` makes a new CA.
        """)
    }
}
