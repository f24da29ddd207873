import CertificateAuthority
import ProxyServer
import Testing

@Suite("Intercept patterns against the CA's name constraints")
struct InterceptCoverageTests {
    func config(_ patterns: [String]) throws -> ProxyConfiguration {
        var config = ProxyConfiguration()
        config.intercept = try patterns.map { try HostPattern(parsing: $0) }
        return config
    }

    @Test("each pattern maps to the subtree holding every host it matches; * maps to none")
    func subtrees() throws {
        #expect(try HostPattern(parsing: "*.Example.com").permittedSubtree == .dns("example.com"))
        #expect(try HostPattern(parsing: "auth.example.com").permittedSubtree == .dns("auth.example.com"))
        #expect(try HostPattern(parsing: "10.0.0.5").permittedSubtree == .ip(IPRange(address: IPAddress("10.0.0.5")!, prefixLength: 32)!))
        #expect(try HostPattern(parsing: "[::1]").permittedSubtree == .ip(IPRange(address: IPAddress("::1")!, prefixLength: 128)!))
        #expect(try HostPattern(parsing: "*").permittedSubtree == nil)
        #expect(try HostPattern(parsing: "*.example.com").shellQuoted == "'*.example.com'")
    }

    @Test("a constrained CA covers the defaults and what it was issued for, nothing else")
    func constrained() throws {
        let layout = CertificateAuthority.Layout.constrained(PermittedNames.tokentap(adding: [.dns("example.com")]))
        #expect(try config([]).coverage(by: layout) == .covered)
        #expect(try config(["*.example.com", "auth.example.com", "localhost", "127.0.0.1", "::1"]).coverage(by: layout) == .covered)
        let outside = try config(["auth.example.com", "*.example.org", "10.0.0.1"])
        #expect(outside.coverage(by: layout) == .outside([try HostPattern(parsing: "*.example.org"), try HostPattern(parsing: "10.0.0.1")]))
        #expect(try config(["auth.example.com", "*"]).coverage(by: layout) == .unconstrainable)
        // What a CA issued for a configuration permits covers that configuration.
        let wanted = try config(["*.example.org", "10.0.0.1"])
        #expect(wanted.coverage(by: .constrained(wanted.permittedNames)) == .covered)
    }

    @Test("an unconstrained CA, or one of before name constraints, covers everything, * included")
    func unconstrained() throws {
        for layout in [CertificateAuthority.Layout.unconstrained, .selfSigned] {
            #expect(try config(["*", "example.org"]).coverage(by: layout) == .covered)
        }
    }
}
