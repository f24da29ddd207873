import Foundation
import Logging
import Testing
import TestSupport
@testable import Recording
import Reports
import TokentapCore

/// A fresh temporary folder, removed by `cleanup()`.
struct TempHome {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tokentap-rec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    var database: URL { url.appendingPathComponent("recordings/tokentap.sqlite") }
    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// `e` as the store returns it: `started` at µs precision, ids set.
func normalized(_ e: Exchange, id: Int64) -> Exchange {
    var e = e
    e.id = id
    e.started = Date(microsecondsSince1970: e.started.microsecondsSince1970)
    e.findings = e.findings.map { var f = $0; f.exchange = id; return f }
    return e
}

@Suite("ExchangeStore")
struct StoreTests {
    @Test func roundTripKeepsEveryField() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)

        var binary = Data((0..<256).map { UInt8($0) })
        binary.append(contentsOf: [0xFF, 0xFE, 0x00])
        let big = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let full = Exchange(
            session: "20261129-120000", kind: .http, started: at(0.123456),
            timings: Timings(connect: 1.5, tls: 7.25, send: 0.125, wait: 80.5, receive: 3.0, total: 92.375),
            clientAddress: "127.0.0.1:53211", scheme: "https", host: "api.miro.com", port: 8443,
            method: "POST", target: "/v1/oauth/token?x=1",
            request: MessageRecord(
                httpVersion: "HTTP/1.1",
                headers: [HeaderField(name: "host", value: "api.miro.com"),
                          HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded"),
                          HeaderField(name: "X-Dup", value: "a"), HeaderField(name: "x-dup", value: "b "),
                          HeaderField(name: "Authorization", value: "Basic abc\n")],
                body: binary, truncated: true, wireSize: 9999, decodedFrom: nil),
            status: 400, reason: "Bad Request",
            response: MessageRecord(
                httpVersion: "HTTP/1.0",
                headers: [HeaderField(name: "Content-Encoding", value: "gzip"),
                          HeaderField(name: "content-type", value: "application/json")],
                body: big, truncated: false, wireSize: 12345, decodedFrom: "gzip"),
            error: "upstream reset", findings: [finding("redirect-uri-mismatch"), finding("pkce-missing", .warning)],
            keepsSecrets: true)
        let tunnel = Exchange(session: "20261129-120000", kind: .tunnel, started: at(1), host: "example.org",
                              port: 443, method: "", target: "",
                              request: MessageRecord(wireSize: 517), response: MessageRecord(wireSize: 4096))

        let stored = try await store.insert([full, tunnel])
        #expect(stored.count == 2)
        let id0 = try #require(stored[0].id)
        let id1 = try #require(stored[1].id)
        #expect(id1 > id0)
        #expect(stored[0].findings.allSatisfy { $0.exchange == id0 })

        let readFull = try #require(try store.exchange(id: id0))
        #expect(readFull == normalized(full, id: id0))
        #expect(readFull.started.microsecondsSince1970 == at(0.123456).microsecondsSince1970)
        #expect(readFull.request.headers.map(\.name) == ["host", "Content-Type", "X-Dup", "x-dup", "Authorization"])
        #expect(readFull.request.body == binary)
        #expect(readFull.response.body.count == 3_000_000)
        #expect(readFull.timings.tls == 7.25)
        #expect(readFull.timings.connect == 1.5)

        let readTunnel = try #require(try store.exchange(id: id1))
        #expect(readTunnel == normalized(tunnel, id: id1))
        #expect(readTunnel.timings.connect == nil)
        #expect(readTunnel.status == nil)
        #expect(readTunnel.request.body.isEmpty)

        #expect(try store.exchange(id: id1 + 100) == nil)
    }

    @Test func migrationsCreateSchemaOnAFreshFileAndReopen() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        #expect(!FileManager.default.fileExists(atPath: home.database.path))
        do {
            let store = try ExchangeStore(path: home.database)
            #expect(try store.count() == 0)
            try await store.insert([sample()])
        }
        #expect(FileManager.default.fileExists(atPath: home.database.path))
        let gitignore = try String(contentsOf: home.database.deletingLastPathComponent().appendingPathComponent(".gitignore"), encoding: .utf8)
        #expect(gitignore == "*\n")
        let mode = try FileManager.default.attributesOfItem(atPath: home.database.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Reopening runs no migration twice and keeps the rows.
        let again = try ExchangeStore(path: home.database)
        #expect(try again.count() == 1)
        let (columns, indexes, journal, migrations) = try await again.pool.read { db in
            (try db.columns(in: "exchange").map(\.name),
             try db.indexes(on: "exchange").map(\.name),
             try String.fetchOne(db, sql: "PRAGMA journal_mode"),
             try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"))
        }
        for column in ["id", "session", "kind", "started", "connect_ms", "tls_ms", "send_ms", "wait_ms", "receive_ms",
                       "total_ms", "client_address", "scheme", "host", "port", "method", "target",
                       "request_http_version", "request_headers", "request_body", "request_truncated",
                       "request_wire_size", "request_decoded_from", "status", "reason", "response_http_version",
                       "response_headers", "response_body", "response_truncated", "response_wire_size",
                       "response_decoded_from", "error", "findings", "keeps_secrets"] {
            #expect(columns.contains(column), "missing column \(column)")
        }
        for index in ["exchange_on_session_started", "exchange_on_host", "exchange_on_status", "exchange_on_started",
                      "exchange_on_session_status"] {
            #expect(indexes.contains(index), "missing index \(index)")
        }
        #expect(journal == "wal")
        #expect(migrations == ["v1-exchange", "v2-session-status-index", "v3-websocket", "v4-error-kind", "v4-session-profiles"])
        #expect(columns.contains("websocket") && columns.contains("websocket_key"))
    }

    /// Issue 24: the provider profiles in force are recorded per session, replaced by name, read
    /// back in name order, and deleted with the session.
    @Test func sessionProfilesAreRecordedPerSession() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        try await store.insert([sample(session: "s1"), sample(session: "s2")])
        let miro = SessionProfile(name: "Miro", origin: "built-in", overrides: ["codeLifetime": "/home/me/profiles/miro.json"])
        let acme = SessionProfile(name: "Acme", origin: "/tmp/acme.json", overrides: [:])
        try store.recordProfiles([miro, acme], session: "s1")
        try store.recordProfiles([SessionProfile(name: "Miro", origin: "built-in", overrides: [:])], session: "s2")
        #expect(try store.profiles(session: "s1") == [acme, miro])
        #expect(try store.profiles(session: "s2") == [SessionProfile(name: "Miro", origin: "built-in", overrides: [:])])
        // Recording again replaces a profile of the same name.
        try store.recordProfiles([SessionProfile(name: "Acme", origin: "/tmp/acme2.json", overrides: [:])], session: "s1")
        #expect(try store.profiles(session: "s1").first?.origin == "/tmp/acme2.json")
        // A read-only opener sees them; deleting the session deletes them.
        let reader = try ExchangeStore.openReadOnly(path: home.database)
        #expect(try reader.profiles(session: "s1").count == 2)
        try store.deleteSession("s1")
        #expect(try store.profiles(session: "s1").isEmpty)
        #expect(try store.profiles(session: "s2").count == 1)
    }

    /// A `websocket` row is written at the 101 and written again at close: the second write
    /// updates the first row (found by its key), in the same batch or a later one.
    @Test func aWebSocketRowWrittenAgainAtCloseIsUpdatedInPlace() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        var open = sample(kind: .websocket, target: "/socket", status: 101)
        open.websocket = WebSocketSummary(key: "k1")
        let first = try await store.insert([sample(), open])
        var closed = open
        closed.websocket = WebSocketSummary(key: "k1", open: false, framesClient: 3, framesServer: nil, bytesClient: 40, bytesServer: 50,
                                            closeCode: 1000, closedBy: "client", countingError: "x",
                                            messages: [WebSocketMessage(time: at(1), type: "send", opcode: 1, length: 5)])
        closed.error = "late"
        closed.timings.total = 900
        var other = open
        other.websocket = WebSocketSummary(key: "k2")
        let second = try await store.insert([closed, other])
        #expect(second[0].id == first[1].id)
        #expect(second[1].id != first[1].id)
        #expect(try store.count() == 3)
        let firstID = try #require(first[1].id)
        let stored = try #require(try store.exchange(id: firstID))
        #expect(stored.websocket == closed.websocket)
        #expect(stored.error == "late")
        #expect(stored.timings.total == 900)
        #expect(stored.kind == .websocket)
        // Both writes in one batch: one row.
        var a = open, b = closed
        a.websocket?.key = "k3"; b.websocket?.key = "k3"
        _ = try await store.insert([a, b])
        #expect(try store.count() == 4)
        #expect(try store.exchanges(ExchangeQuery(kinds: [.websocket])).count == 3)
    }

    /// A database last written by a tokentap that knew only v1 is still listed read-only; the next
    /// writer adds the index.
    @Test func aV1DatabaseIsReadableAndUpgradedByTheNextWriter() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        do {
            let store = try ExchangeStore(path: home.database)
            try await store.insert([sample(status: 404)])
            try await store.pool.write { db in
                try db.execute(sql: "DROP INDEX exchange_on_session_status")
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v2-session-status-index'")
            }
        }
        let reader = try ExchangeStore.openReadOnly(path: home.database)
        #expect(try reader.exchanges(ExchangeQuery(status: .statusClass(4))).count == 1)
        let writer = try ExchangeStore(path: home.database)
        let indexes = try await writer.pool.read { db in try db.indexes(on: "exchange").map(\.name) }
        #expect(indexes.contains("exchange_on_session_status"))
    }

    @Test func headersAreStoredAsJSONArraysInOrder() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        try await store.insert([sample(requestHeaders: [HeaderField(name: "B", value: "2"), HeaderField(name: "a", value: "1")])])
        let text = try await store.pool.read { db in try String.fetchOne(db, sql: "SELECT request_headers FROM exchange") }
        let parsed = try JSONSerialization.jsonObject(with: Data(try #require(text).utf8)) as? [[String: String]]
        #expect(parsed == [["name": "B", "value": "2"], ["name": "a", "value": "1"]])
    }

    /// Issue 25: header fields are encoded once each and remembered; the column must still be the
    /// JSON array JSONEncoder writes for the whole list (same objects, same order; JSONEncoder itself
    /// does not fix the order of keys inside an object), the first time and from the memo.
    @Test func memoisedHeaderJSONIsJSONEncodersArray() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        let headers = [HeaderField(name: "Host", value: "api.miro.com"), HeaderField(name: "X-Path", value: "/a/b \"q\" \\ é \u{1}"),
                       HeaderField(name: "Host", value: "api.miro.com"), HeaderField(name: "Empty", value: "")]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        func objects(_ text: String?) throws -> [[String: String]]? {
            try JSONSerialization.jsonObject(with: Data(try #require(text).utf8)) as? [[String: String]]
        }
        let expected = try objects(String(decoding: try encoder.encode(headers), as: UTF8.self))
        let expectedReversed = try objects(String(decoding: try encoder.encode(Array(headers.reversed())), as: UTF8.self))
        #expect(expected?.count == 4)
        for round in 0..<3 {  // the first insert fills the memo, the later ones read it
            try await store.insert([sample(requestHeaders: headers, responseHeaders: Array(headers.reversed()))])
            let request = try await store.pool.read { db in
                try String.fetchOne(db, sql: "SELECT request_headers FROM exchange ORDER BY id DESC LIMIT 1")
            }
            let response = try await store.pool.read { db in
                try String.fetchOne(db, sql: "SELECT response_headers FROM exchange ORDER BY id DESC LIMIT 1")
            }
            #expect(try objects(request) == expected, "round \(round)")
            #expect(try objects(response) == expectedReversed, "round \(round)")
            #expect(request?.hasPrefix("[{") == true && request?.hasSuffix("}]") == true)
        }
        let empty = sample(requestHeaders: [])
        let stored = try await store.insert([empty])
        #expect(try store.exchange(id: try #require(stored.first?.id))?.request.headers == [])
        #expect(try store.exchanges(ExchangeQuery()).dropLast().allSatisfy { $0.request.headers == headers })
    }

    @Test func iso8601MicrosecondsIsUTCWithSixDigits() {
        #expect(iso8601Microseconds(Date(microsecondsSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(iso8601Microseconds(Date(microsecondsSince1970: 1_796_385_600_123_456)) == "2026-12-04T12:00:00.123456Z")
        #expect(iso8601Microseconds(Date(microsecondsSince1970: 951_825_599_999_999)) == "2000-02-29T11:59:59.999999Z")
        #expect(iso8601Microseconds(Date(microsecondsSince1970: -1)) == "1969-12-31T23:59:59.999999Z")
        for us: Int64 in [0, 1_796_385_600_123_456, 951_825_599_999_999] {
            #expect(parseISO8601(iso8601Microseconds(Date(microsecondsSince1970: us)))?.microsecondsSince1970 == us)
        }
    }

    @Test func queryFilters() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        let rows: [Exchange] = [
            sample(session: "a", started: at(0), host: "miro.com", target: "/oauth/authorize?response_type=code&client_id=1", status: 200),
            sample(session: "a", started: at(10), host: "api.miro.com", method: "POST", target: "/v1/oauth/token", status: 401),
            sample(session: "a", started: at(20), host: "api.miro.com", method: "post", target: "/v2/boards", status: 404),
            sample(session: "a", started: at(30), host: "api.miro.com", target: "/v2/boards", status: 200,
                   findings: [finding("token-expired")]),
            sample(session: "a", started: at(40), host: "api.miro.com", target: "/v2/boards", status: 502, error: "connection refused"),
            sample(session: "a", kind: .tunnel, started: at(50), host: "example.org", method: "", target: "", status: nil),
            sample(session: "b", started: at(60), host: "api.miro.com", target: "/v2/me", status: 200),
            sample(session: "a", started: at(5), host: "api.miro.com", target: "/v2/warn", status: 200,
                   findings: [finding("note", .warning)]),
        ]
        let stored = try await store.insert(rows)
        func targets(_ q: ExchangeQuery) throws -> [String] { try store.exchanges(q).map(\.target) }

        // Session, default kinds, oldest first by start time.
        #expect(try targets(ExchangeQuery(session: "a")) ==
                ["/oauth/authorize?response_type=code&client_id=1", "/v2/warn", "/v1/oauth/token", "/v2/boards", "/v2/boards", "/v2/boards"])
        #expect(try store.exchanges(ExchangeQuery()).count == 7)
        #expect(try store.exchanges(ExchangeQuery(kinds: Set(ExchangeKind.allCases))).count == 8)
        #expect(try store.exchanges(ExchangeQuery(kinds: [.tunnel])).map(\.host) == ["example.org"])
        #expect(try store.exchanges(ExchangeQuery(session: "a", host: "MIRO.com")).count == 1)
        #expect(try store.exchanges(ExchangeQuery(method: "post")).map(\.status) == [401, 404])
        #expect(try store.exchanges(ExchangeQuery(status: .exact(401))).map(\.target) == ["/v1/oauth/token"])
        #expect(try store.exchanges(ExchangeQuery(status: StatusFilter(parsing: "4xx"))).map(\.status) == [401, 404])
        #expect(try store.exchanges(ExchangeQuery(status: StatusFilter(parsing: "5XX"))).map(\.status) == [502])
        // Failed: ≥ 400, an error, or an error finding (not a warning).
        #expect(try store.exchanges(ExchangeQuery(failedOnly: true)).map { $0.started.microsecondsSince1970 } ==
                [at(10), at(20), at(30), at(40)].map(\.microsecondsSince1970))
        #expect(try store.exchanges(ExchangeQuery(since: at(30))).map(\.status) == [200, 502, 200])
        // Limit keeps the newest, still oldest first.
        #expect(try store.exchanges(ExchangeQuery(session: "a", limit: 2)).map(\.status) == [200, 502])
        // afterID orders by id (tail).
        let afterID = try #require(stored[4].id)
        #expect(try store.exchanges(ExchangeQuery(kinds: Set(ExchangeKind.allCases), afterID: afterID)).map(\.id) ==
                stored[5...].map(\.id))
        // OAuth: authorize and token requests.
        #expect(try targets(ExchangeQuery(oauthOnly: true)) ==
                ["/oauth/authorize?response_type=code&client_id=1", "/v1/oauth/token"])
        #expect(try targets(ExchangeQuery(oauthOnly: true, limit: 1)) == ["/v1/oauth/token"])
        // Filters combine.
        #expect(try store.exchanges(ExchangeQuery(session: "a", host: "api.miro.com", status: .statusClass(2), since: at(25))).map(\.target) == ["/v2/boards"])
        #expect(try store.exchanges(ExchangeQuery(session: "nope")).isEmpty)
        // Host patterns.
        #expect(try store.exchanges(ExchangeQuery(host: "*.miro.com")).count == 6)
        #expect(try store.exchanges(ExchangeQuery(host: "*.MIRO.com", status: .exact(200))).map(\.target) == ["/v2/warn", "/v2/boards", "/v2/me"])
    }

    @Test func listingWithoutBodies() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        var e = sample(method: "POST", target: "/x", requestBody: Data("grant_type=client_credentials".utf8))
        e.response.body = Data(repeating: 0x61, count: 10_000)
        e.response.wireSize = 10_000
        e.response.truncated = true
        try await store.insert([e])
        let light = try #require(try store.exchanges(ExchangeQuery(includeBodies: false)).first)
        #expect(light.request.body.isEmpty && light.response.body.isEmpty)
        #expect(light.response.wireSize == 10_000 && light.response.truncated)
        #expect(light.request.headers == e.request.headers && light.target == "/x")
        // --oauth still sees the request body (grant_type).
        let oauth = try store.exchanges(ExchangeQuery(oauthOnly: true, includeBodies: false))
        #expect(oauth.count == 1 && oauth[0].response.body.isEmpty)
        let full = try #require(try store.exchanges(ExchangeQuery()).first)
        #expect(full.response.body.count == 10_000)
    }

    @Test func latestSessionSessionsAndDelete() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        #expect(try store.latestSession() == nil)
        #expect(try store.sessions().isEmpty)
        try await store.insert([sample(session: "old", started: at(0)), sample(session: "old", started: at(5), status: 500)])
        #expect(try store.latestSession() == "old")
        // An imported session with earlier timestamps written later is the latest one.
        try await store.insert([sample(session: "imported", started: at(-1000)),
                                sample(session: "imported", kind: .tunnel, started: at(-999), status: nil)])
        #expect(try store.latestSession() == "imported")
        let sessions = try store.sessions()
        #expect(sessions.map(\.name) == ["old", "imported"])
        #expect(sessions[0].count == 2 && sessions[0].httpCount == 2 && sessions[0].failures == 1)
        #expect(sessions[0].firstStarted.microsecondsSince1970 == at(0).microsecondsSince1970)
        #expect(sessions[0].lastStarted.microsecondsSince1970 == at(5).microsecondsSince1970)
        #expect(sessions[1].count == 2 && sessions[1].httpCount == 1 && sessions[1].failures == 0)
        #expect(try store.deleteSession("imported") == 2)
        #expect(try store.latestSession() == "old")
        #expect(try store.deleteSession("imported") == 0)
    }

    @Test func twoWritersShareTheFile() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let first = try ExchangeStore(path: home.database)
        let second = try ExchangeStore(path: home.database)
        async let a: Void = {
            for i in 0..<100 { _ = try await first.insert([sample(session: "one", started: at(Double(i)))]) }
        }()
        async let b: Void = {
            for i in 0..<100 { _ = try await second.insert([sample(session: "two", started: at(Double(i)))]) }
        }()
        _ = try await (a, b)
        #expect(try first.exchanges(ExchangeQuery(session: "one")).count == 100)
        #expect(try first.exchanges(ExchangeQuery(session: "two")).count == 100)
        #expect(Set(try first.exchanges(ExchangeQuery()).compactMap(\.id)).count == 200)
    }

    @Test func aFileThatIsNotADatabaseIsRefused() throws {
        let home = try TempHome()
        defer { home.cleanup() }
        try FileManager.default.createDirectory(at: home.database.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(repeating: 0x42, count: 4096).write(to: home.database)
        #expect(throws: (any Error).self) { try ExchangeStore(path: home.database) }
        #expect(throws: (any Error).self) { try ExchangeStore.openReadOnly(path: home.database) }
    }

    /// The files as a `kill -9` leaves them: the writer still open, its WAL not checkpointed.
    @Test func crashSnapshotOpensWithEveryCommittedRow() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        let writer = RecordingWriter(store: store, logger: Logger(label: "test"))
        for i in 0..<25 { writer.submit(sample(session: "crash", started: at(Double(i)))) }
        await writer.close()
        let copies = try TempHome()
        defer { copies.cleanup() }
        let copy = copies.url.appendingPathComponent("tokentap.sqlite")
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: home.database.path + suffix) {
            try FileManager.default.copyItem(atPath: home.database.path + suffix, toPath: copy.path + suffix)
        }
        #expect(FileManager.default.fileExists(atPath: copy.path + "-wal"))
        let reader = try ExchangeStore.openReadOnly(path: copy)
        #expect(try reader.exchanges(ExchangeQuery(session: "crash")).count == 25)
        let reopened = try ExchangeStore(path: copy)
        #expect(try reopened.exchanges(ExchangeQuery(session: "crash")).count == 25)
        _ = store
    }

    @Test func missingDatabaseIsAClearError() throws {
        let home = try TempHome()
        defer { home.cleanup() }
        #expect(throws: StoreError.missingDatabase(home.database.path)) {
            try ExchangeStore.openReadOnly(path: home.database)
        }
        let message = StoreError.missingDatabase(home.database.path).description
        #expect(message.contains("tokentap proxy"))
        #expect(message.contains(home.database.path))
        // Opening read-only does not create the file.
        #expect(!FileManager.default.fileExists(atPath: home.database.path))
    }

    @Test func readOnlyStoreCannotWriteAndSeesNewRows() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let writer = try ExchangeStore(path: home.database)
        try await writer.insert([sample()])
        let reader = try ExchangeStore.openReadOnly(path: home.database)
        #expect(reader.isReadOnly)
        #expect(try reader.exchanges(ExchangeQuery()).count == 1)
        try await writer.insert([sample(started: at(1))])
        #expect(try reader.exchanges(ExchangeQuery()).count == 2)
        await #expect(throws: (any Error).self) { try await reader.insert([sample()]) }
        #expect(throws: (any Error).self) { try reader.deleteSession("s1") }
    }

    @Test func readOnlyOpenAfterWriterClosed() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        do {
            let writer = try ExchangeStore(path: home.database)
            try await writer.insert([sample()])
        }
        // Writer gone (its -wal/-shm files cleaned up): the CLI can still read.
        let reader = try ExchangeStore.openReadOnly(path: home.database)
        #expect(try reader.exchanges(ExchangeQuery()).count == 1)
    }
}

@Suite("RecordingWriter")
struct WriterTests {
    @Test func prepareRunsBeforeStoringAndItsResultIsStored() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        let writer = RecordingWriter(store: store, logger: Logger(label: "test"), prepare: { batch in
            batch.map { var e = $0; e.target = e.target + "?prepared"; return e }
        })
        for i in 0..<5 { writer.submit(sample(started: at(Double(i)), target: "/p/\(i)")) }
        await writer.close()
        #expect(try store.exchanges(ExchangeQuery()).map(\.target) == (0..<5).map { "/p/\($0)?prepared" })
    }

    @Test func writesEverythingSubmittedAndReportsIDs() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        let seen = Locked<[Int64]>([])
        let writer = RecordingWriter(store: store, logger: Logger(label: "test"), onStored: { batch in
            seen.withLock { $0.append(contentsOf: batch.compactMap(\.id)) }
        })
        for i in 0..<250 { writer.submit(sample(started: at(Double(i)), target: "/n/\(i)")) }
        await writer.close()
        let all = try store.exchanges(ExchangeQuery())
        #expect(all.map(\.target) == (0..<250).map { "/n/\($0)" })
        #expect(seen.withLock { $0 } == all.compactMap(\.id))
        #expect(writer.counts.written == 250 && writer.counts.dropped == 0)
        // After close, submissions are dropped, not stored.
        writer.submit(sample(started: at(999)))
        await writer.close()
        #expect(try store.count() == 250)
    }

    /// The writer's backlog is bounded by back-pressure: full at `high` exchanges (or `highBytes`),
    /// room again once written down to three quarters, and whoever waited is called then. Nothing is dropped.
    @Test func backlogTurnsFullAtTheHighMarkAndCallsWaitersWhenDrained() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        let gate = DispatchSemaphore(value: 0)
        // The first batch waits for the gate, so the backlog cannot drain while the test looks at it.
        let writer = RecordingWriter(store: store, logger: Logger(label: "test"),
                                     limits: .init(high: 10, highBytes: 1 << 20),
                                     prepare: { batch in gate.wait(); gate.signal(); return batch })
        for i in 0..<9 { writer.submit(sample(started: at(Double(i)))) }
        #expect(!writer.isFull)
        #expect(writer.whenRoom { Issue.record("called although there was room") } == false)
        writer.submit(sample(started: at(9)))
        #expect(writer.isFull)
        #expect(writer.backlog == 10)
        let called = Locked(0)
        #expect(writer.whenRoom { called.withLock { $0 += 1 } })
        #expect(called.withLock { $0 } == 0)
        for i in 10..<15 { writer.submit(sample(started: at(Double(i)))) }  // still accepted
        gate.signal()
        await writer.close()
        #expect(called.withLock { $0 } == 1)
        #expect(!writer.isFull && writer.backlog == 0)
        #expect(try store.count() == 15)
    }

    @Test func bodyBytesAlsoFillTheBacklog() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        let gate = DispatchSemaphore(value: 0)
        let writer = RecordingWriter(store: store, logger: Logger(label: "test"),
                                     limits: .init(high: 1_000, highBytes: 4_096),
                                     prepare: { batch in gate.wait(); gate.signal(); return batch })
        writer.submit(sample(requestBody: Data(count: 3_000)))
        #expect(!writer.isFull)
        writer.submit(sample(requestBody: Data(count: 1_500)))
        #expect(writer.isFull)
        gate.signal()
        await writer.close()
        #expect(!writer.isFull)
    }

    @Test func readOnlyListingWhileWriterWrites() async throws {
        let home = try TempHome()
        defer { home.cleanup() }
        let store = try ExchangeStore(path: home.database)
        let writer = RecordingWriter(store: store, logger: Logger(label: "test"))
        let reader = try ExchangeStore.openReadOnly(path: home.database)

        let writerDone = Locked(false)
        let readTask = Task.detached { () throws -> (reads: Int, maxSeen: Int, monotonic: Bool) in
            var reads = 0
            var maxSeen = 0
            var monotonic = true
            var finished = false
            // Read until every row is seen, or one last time after the writer has closed.
            while maxSeen < 500 && !finished {
                finished = writerDone.withLock { $0 }
                let rows = try reader.exchanges(ExchangeQuery(session: "load"))
                if rows.count < maxSeen { monotonic = false }   // rows only ever appear
                maxSeen = rows.count
                reads += 1
                _ = Render.listJSON(rows.suffix(20))
                _ = Render.listTable(rows.suffix(20), color: false)
            }
            return (reads, maxSeen, monotonic)
        }
        for i in 0..<500 {
            writer.submit(sample(session: "load", started: at(Double(i)), target: "/load/\(i)",
                                 requestBody: Data(repeating: 0x61, count: 2048)))
            if i % 50 == 0 { await Task.yield() }
        }
        await writer.close()
        writerDone.withLock { $0 = true }
        let result = try await readTask.value
        #expect(result.maxSeen == 500)
        #expect(result.monotonic)
        #expect(result.reads >= 1)
        #expect(try reader.exchanges(ExchangeQuery(session: "load")).map(\.target) == (0..<500).map { "/load/\($0)" })
    }
}

@Suite("Parsing helpers")
struct ParsingTests {
    @Test func statusFilter() {
        #expect(StatusFilter(parsing: "401") == .exact(401))
        #expect(StatusFilter(parsing: "4xx") == .statusClass(4))
        #expect(StatusFilter(parsing: "4XX") == .statusClass(4))
        #expect(StatusFilter(parsing: "4x") == nil)
        #expect(StatusFilter(parsing: "abc") == nil)
        #expect(StatusFilter(parsing: "700") == nil)
        #expect(StatusFilter.statusClass(4).matches(499))
        #expect(!StatusFilter.statusClass(4).matches(500))
        #expect(!StatusFilter.exact(401).matches(nil))
    }

    @Test func since() throws {
        let now = at(10_000)
        #expect(ExchangeQuery.parseSince("10m", now: now) == at(10_000 - 600))
        #expect(ExchangeQuery.parseSince("30s", now: now) == at(10_000 - 30))
        #expect(ExchangeQuery.parseSince("2h", now: now) == at(10_000 - 7200))
        #expect(ExchangeQuery.parseSince("1d", now: now) == at(10_000 - 86400))
        #expect(ExchangeQuery.parseSince("2026-11-29T12:00:00Z", now: now) == at(0))
        #expect(ExchangeQuery.parseSince("2026-11-29T13:00:00+01:00", now: now) == at(0))
        let fractional = try #require(ExchangeQuery.parseSince("2026-11-29T12:00:00.123456Z", now: now))
        #expect(fractional.microsecondsSince1970 == at(0.123456).microsecondsSince1970)
        #expect(ExchangeQuery.parseSince("yesterday", now: now) == nil)
        #expect(ExchangeQuery.parseSince("10x", now: now) == nil)
    }

    @Test func iso8601WithMicroseconds() {
        #expect(iso8601Microseconds(at(0.123456)) == "2026-11-29T12:00:00.123456Z")
        #expect(iso8601Microseconds(at(0)) == "2026-11-29T12:00:00.000000Z")
        #expect(iso8601Microseconds(at(86399.999999)) == "2026-11-30T11:59:59.999999Z")
        #expect(iso8601Microseconds(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500000Z")
    }

    @Test func oauthClassification() {
        func ex(_ method: String, _ target: String, status: Int? = 200, body: String = "",
                req: [HeaderField] = [], resp: [HeaderField] = []) -> Exchange {
            sample(method: method, target: target, status: status, requestHeaders: req, requestBody: Data(body.utf8),
                   responseHeaders: resp)
        }
        #expect(ex("GET", "/oauth/authorize?response_type=code&client_id=x").isOAuthRelated)
        #expect(ex("GET", "/app/install?response_type=code&client_id=x").isOAuthRelated)
        #expect(ex("GET", "/callback", status: 302,
                   resp: [HeaderField(name: "location", value: "http://localhost:3000/cb?code=abc&state=s")]).isOAuthRelated)
        #expect(ex("POST", "/v1/oauth/token").isOAuthRelated)
        #expect(ex("POST", "/v2/oauth/revoke").isOAuthRelated)
        #expect(ex("GET", "/v1/oauth-token").isOAuthRelated)
        #expect(ex("POST", "/realms/x/protocol/openid-connect/token").isOAuthRelated)
        #expect(!ex("GET", "/v2/tokens-of-appreciation").isOAuthRelated)
        #expect(ex("POST", "/some/path", body: "grant_type=refresh_token&refresh_token=x").isOAuthRelated)
        #expect(ex("POST", "/some/path", body: #"{"grant_type":"authorization_code"}"#).isOAuthRelated)
        #expect(ex("GET", "/v2/boards", req: [HeaderField(name: "authorization", value: "Bearer eyJ")]).isOAuthRelated)
        #expect(!ex("GET", "/v2/boards").isOAuthRelated)
        #expect(!ex("GET", "/v2/boards", req: [HeaderField(name: "Authorization", value: "Basic abc")]).isOAuthRelated)
        #expect(!ex("GET", "/r", status: 302, resp: [HeaderField(name: "Location", value: "/home?codec=1")]).isOAuthRelated)
    }
}
