import Foundation
import Testing
import Redaction

@Suite struct PlaceholderTests {
    @Test func rendersAndParsesBack() throws {
        let p = Placeholder(role: "client_secret", fingerprint: "3f2a9c1b0d4e", length: 43,
                            flags: [.lineBreak, .trailingWhitespace])
        #expect(p.text == "redacted.client_secret.3f2a9c1b0d4e.43.trail-ws.newline")
        let parsed = try #require(Placeholder(parsing: p.text))
        #expect(parsed == p)
        let all = Placeholder(role: "x-api-key", fingerprint: "000000000000", length: 0, flags: Set(ShapeFlag.allCases))
        #expect(all.text == "redacted.x-api-key.000000000000.0.lead-ws.trail-ws.newline.quoted.pct.plus")
        #expect(Placeholder(parsing: all.text) == all)
    }

    @Test(arguments: [
        "", "redacted", "redacted.code.3f2a9c1b0d4e", "redacted.code.3f2a9c1b0d4.43",
        "redacted.code.3F2A9C1B0D4E.43", "redacted.code.3f2a9c1b0d4e.x", "redacted.code.3f2a9c1b0d4e.043",
        "redacted.Code.3f2a9c1b0d4e.43", "redacted..3f2a9c1b0d4e.43", "redacted.code.3f2a9c1b0d4e.43.bogus",
        "redacted.code.3f2a9c1b0d4e.43.newline.trail-ws", "redacted.code.3f2a9c1b0d4e.43.pct.pct",
        " redacted.code.3f2a9c1b0d4e.43", "redacted.code.3f2a9c1b0d4e.43 ", "secret.code.3f2a9c1b0d4e.43",
    ])
    func rejectsWhatIsNotExactlyOnePlaceholder(_ text: String) {
        #expect(Placeholder(parsing: text) == nil)
    }

    @Test func onlyUnreservedCharacters() throws {
        let nasty = " \"quoted+value%2F\"\n"
        let text = redactor.placeholder(role: "Weird.Header Name", value: nasty)
        #expect(text.utf8.allSatisfy { b in
            (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || "-._~".utf8.contains(b)
        })
        let p = try #require(Placeholder(parsing: text))
        #expect(p.role == "weird_header_name")
        #expect(p.flags == [.leadingWhitespace, .trailingWhitespace, .lineBreak, .quoted, .percentEncoded, .plus])
        #expect(p.length == nasty.unicodeScalars.count)
    }

    @Test func findsPlaceholdersInText() {
        let a = redactor.placeholder(role: "code", value: "one")
        let b = redactor.placeholder(role: "client_secret", value: "two\n")
        let found = Placeholder.all(in: "POST /token?code=\(a)&x=1 body {\"client_secret\":\"\(b)\"} redacted.nope")
        #expect(found.map(\.text) == [a, b])
    }

    @Test func fingerprintIsKeyedHMACSHA256() {
        // Reference values computed independently: hmac.new(b"\x07"*32, msg, sha256).hexdigest()[:12]
        #expect(redactor.fingerprint("abc") == "127da4ced6a8")
        #expect(redactor.fingerprint("é\n") == "11644267b11c")
        #expect(Redactor(key: Data(repeating: 8, count: 32)).fingerprint("abc") != "127da4ced6a8")
        // The fingerprint does not depend on the role: a value reused in another role matches.
        let asCode = Placeholder(parsing: redactor.placeholder(role: "code", value: "v"))
        let asBearer = Placeholder(parsing: redactor.placeholder(role: "access_token", value: "v"))
        #expect(asCode?.fingerprint == asBearer?.fingerprint)
        #expect(asCode.map { redactor.matches($0, value: "v") } == true)
        #expect(asCode.map { redactor.matches($0, value: "v\n") } == false)
    }

    @Test func shapeFlagsOfRawValues() {
        #expect(shapeFlags(of: "") == [])
        #expect(shapeFlags(of: "abcDEF123") == [])
        #expect(shapeFlags(of: " abc") == [.leadingWhitespace])
        #expect(shapeFlags(of: "abc\n") == [.trailingWhitespace, .lineBreak])
        #expect(shapeFlags(of: "ab\r\ncd") == [.lineBreak])
        #expect(shapeFlags(of: "\"abc\"") == [.quoted])
        #expect(shapeFlags(of: "'abc") == [.quoted])
        #expect(shapeFlags(of: "ab%2Fc") == [.percentEncoded])
        #expect(shapeFlags(of: "100%") == [])
        #expect(shapeFlags(of: "a+b") == [.plus])
    }

    @Test func sameValueSamePlaceholderNewlineDiffers() throws {
        let a = try #require(Placeholder(parsing: redactor.placeholder(role: "client_secret", value: "s3cr3t")))
        let b = try #require(Placeholder(parsing: redactor.placeholder(role: "client_secret", value: "s3cr3t\n")))
        #expect(a.fingerprint != b.fingerprint)
        #expect(b.flags.contains(.lineBreak) && !a.flags.contains(.lineBreak))
        #expect(b.length == a.length + 1)
    }
}
