import Foundation
import Testing
import TokentapCore

@Suite("Home folder resolution")
struct HomeTests {
    let checkout: URL
    let exe: String

    init() throws {
        checkout = FileManager.default.temporaryDirectory.appendingPathComponent("tokentap-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: checkout.appendingPathComponent(".build/debug"), withIntermediateDirectories: true)
        try "let package = Package(\n    name: \"tokentap\",\n)".write(to: checkout.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        exe = checkout.appendingPathComponent(".build/debug/tokentap").path
    }

    @Test("--home wins over everything")
    func option() {
        let home = Home.resolve(option: "/tmp/a", environment: ["TOKENTAP_HOME": "/tmp/b", "HOME": "/root"], executablePath: exe)
        #expect(home.url.path == "/tmp/a")
        #expect(home.source == .option)
    }

    @Test("a relative --home is taken from the current directory")
    func relativeOption() {
        let home = Home.resolve(option: "data", environment: [:], executablePath: nil, currentDirectory: "/srv/app")
        #expect(home.url.path == "/srv/app/data")
    }

    @Test("TOKENTAP_HOME comes next")
    func environment() {
        let home = Home.resolve(option: nil, environment: ["TOKENTAP_HOME": "/tmp/b", "HOME": "/root"], executablePath: exe)
        #expect(home.url.path == "/tmp/b")
        #expect(home.source == .environment)
    }

    @Test("then the checkout the binary was built in")
    func checkoutHome() {
        let home = Home.resolve(option: nil, environment: ["HOME": "/root"], executablePath: exe)
        #expect(home.url.standardizedFileURL.path == checkout.standardizedFileURL.path)
        #expect(home.source == .checkout)
    }

    @Test("a binary under another project's .build is not a tokentap checkout")
    func foreignCheckout() throws {
        try "let package = Package(name: \"other\")".write(to: checkout.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        let home = Home.resolve(option: nil, environment: ["HOME": "/home/u"], executablePath: exe)
        #expect(home.url.path == "/home/u/.tokentap")
    }

    @Test("then ~/.tokentap")
    func userHome() {
        let home = Home.resolve(option: nil, environment: ["HOME": "/home/u"], executablePath: "/usr/local/bin/tokentap")
        #expect(home.url.path == "/home/u/.tokentap")
        #expect(home.source == .userHome)
    }

    @Test("prepare creates certs/ and recordings/ with a * .gitignore, and keeps existing folders as they are")
    func prepare() throws {
        let root = checkout.appendingPathComponent("fresh")
        let home = Home(url: root, source: .option)
        try home.prepare()
        for dir in [root, home.certs, home.recordings] {
            #expect(try String(contentsOf: dir.appendingPathComponent(".gitignore"), encoding: .utf8) == "*\n")
        }
        let existing = Home(url: checkout, source: .checkout)
        try FileManager.default.createDirectory(at: existing.certs, withIntermediateDirectories: true)
        try existing.prepare()
        #expect(!FileManager.default.fileExists(atPath: existing.certs.appendingPathComponent(".gitignore").path))
        #expect(FileManager.default.fileExists(atPath: existing.recordings.appendingPathComponent(".gitignore").path))
    }

    @Test("writeAtomically creates files with the requested mode")
    func atomicMode() throws {
        let file = checkout.appendingPathComponent("secret.key")
        try FileSystem.writeAtomically(Data("x".utf8), to: file, mode: 0o600)
        #expect(FileSystem.mode(of: file.path) == 0o600)
        try FileSystem.writeAtomically(Data("y".utf8), to: file, mode: 0o600)
        #expect(try String(contentsOf: file, encoding: .utf8) == "y")
    }
}

@Suite("Header names")
struct HeaderNameTests {
    @Test func namesCompareASCIICaseInsensitively() {
        let headers = [HeaderField(name: "Content-Type", value: "a"), HeaderField(name: "x-Api-KEY", value: "b"),
                       HeaderField(name: "content-type", value: "c")]
        #expect(headers.first(named: "content-type") == "a")
        #expect(headers.first(named: "X-API-Key") == "b")
        #expect(headers.all(named: "CONTENT-TYPE") == ["a", "c"])
        #expect(headers.first(named: "Content-Typ") == nil)
        // Only letters fold: "-" (0x2D) and "\r" (0x0D) differ by the case bit but are not letters.
        #expect(!HeaderField(name: "a-b", value: "").hasName("a\rb"))
        #expect(!HeaderField(name: "a@", value: "").hasName("a`"))
    }
}
