import Foundation
import GRDB
import TokentapCore

/// Errors of the recording store, with messages that say what to do next.
public enum StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No database at the path: nothing has been recorded in this home yet.
    case missingDatabase(String)
    /// The database was written by a newer tokentap (unknown migrations) or is not finished migrating.
    case incompatibleSchema(String)
    /// A stored row could not be read back (corrupt JSON column, unknown kind).
    case corruptRow(id: Int64, detail: String)

    public var description: String {
        switch self {
        case .missingDatabase(let path):
            return "no recordings database at \(path): run `tokentap proxy` (or `tokentap import FILE.har`) first to record exchanges, or pass the right --home"
        case .incompatibleSchema(let path):
            return "the recordings database at \(path) has a schema this tokentap does not know (written by a newer version?) or was never fully set up: run `tokentap proxy` from this build once, or use the tokentap that recorded it"
        case .corruptRow(let id, let detail):
            return "exchange \(id) could not be read (\(detail)); the database may be damaged"
        }
    }
}

/// Filter on the response status: an exact code (`401`) or a class (`4xx` = 400...499).
public enum StatusFilter: Sendable, Hashable {
    case exact(Int)
    /// The hundreds digit: `4` for `4xx`.
    case statusClass(Int)

    /// Parses `401`, `4xx` or `4XX`; `nil` for anything else (`abc`, `4x`, `600`).
    public init?(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t.count == 3, t.hasSuffix("xx"), let d = Int(t.prefix(1)), (1...5).contains(d) {
            self = .statusClass(d)
        } else if t.count == 3, let n = Int(t), (100...599).contains(n) {
            self = .exact(n)
        } else {
            return nil
        }
    }

    /// Whether `status` passes the filter (`nil` never does).
    public func matches(_ status: Int?) -> Bool {
        guard let status else { return false }
        switch self {
        case .exact(let n): return status == n
        case .statusClass(let d): return status / 100 == d
        }
    }
}

/// What `ExchangeStore.exchanges(_:)` returns. Every filter set combines with AND.
public struct ExchangeQuery: Sendable, Hashable {
    /// Only this session; `nil` = every session.
    public var session: String?
    /// Row kinds to include; `[.http]` by default (`list --all` passes every kind).
    public var kinds: Set<ExchangeKind>
    /// Host, compared case-insensitively (hosts are stored lower-cased); `*.miro.com` matches
    /// every subdomain of miro.com (not miro.com itself).
    public var host: String?
    /// Request method, compared case-insensitively.
    public var method: String?
    public var status: StatusFilter?
    /// Status ≥ 400, an error (upstream failure, handshake failure) or a finding of severity `error`.
    public var failedOnly: Bool
    /// OAuth traffic only: authorize requests, redirects carrying `code=`, token requests and
    /// requests with an `Authorization: Bearer` header (see `Exchange.isOAuthRelated`).
    public var oauthOnly: Bool
    /// Only exchanges that started at or after this instant.
    public var since: Date?
    /// Only rows with an id greater than this (for `tail`, which then orders by id).
    public var afterID: Int64?
    /// At most this many rows: the newest ones (still returned oldest first).
    public var limit: Int?
    /// When false, the returned exchanges are summaries: empty bodies (their `wireSize`, `truncated`
    /// and `decodedFrom` stay) and no headers, which makes listing large sessions cheap (decoding
    /// the headers' JSON was half the cost of `list`). `oauthOnly` still sees request bodies and
    /// headers. `list` and `tail` pass false; `show`, `doctor` and `export` need true.
    public var includeBodies: Bool

    public init(session: String? = nil, kinds: Set<ExchangeKind> = [.http], host: String? = nil,
                method: String? = nil, status: StatusFilter? = nil, failedOnly: Bool = false,
                oauthOnly: Bool = false, since: Date? = nil, afterID: Int64? = nil, limit: Int? = nil,
                includeBodies: Bool = true) {
        self.session = session
        self.kinds = kinds
        self.host = host
        self.method = method
        self.status = status
        self.failedOnly = failedOnly
        self.oauthOnly = oauthOnly
        self.since = since
        self.afterID = afterID
        self.limit = limit
        self.includeBodies = includeBodies
    }

    /// Parses `--since`: a duration back from `now` (`30s`, `10m`, `2h`, `1d`) or an ISO 8601
    /// timestamp (`2026-11-29T12:00:00Z`, with optional fractional seconds or offset).
    /// `nil` when it is neither.
    public static func parseSince(_ text: String, now: Date) -> Date? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let unit = t.last, let n = Double(t.dropLast()), n >= 0 {
            let factor: Double?
            switch unit {
            case "s": factor = 1
            case "m": factor = 60
            case "h": factor = 3600
            case "d": factor = 86400
            default: factor = nil
            }
            if let factor { return now.addingTimeInterval(-n * factor) }
        }
        return parseISO8601(t)
    }
}

/// A provider profile in force for a session (design.md, `--profile`): its name, where it came from
/// (`built-in` or a file path) and the fields a file overrode (field name → file path).
public struct SessionProfile: Sendable, Hashable, Codable {
    public var name: String
    public var origin: String
    public var overrides: [String: String]
    public init(name: String, origin: String, overrides: [String: String]) {
        self.name = name; self.origin = origin; self.overrides = overrides
    }
}

extension JSONEncoder {
    fileprivate static var sortedKeys: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}

/// One session as `tokentap sessions` shows it.
public struct SessionSummary: Sendable, Hashable, Codable {
    public var name: String
    /// Start of the earliest row of the session.
    public var firstStarted: Date
    /// Start of the latest row of the session.
    public var lastStarted: Date
    /// Rows of every kind.
    public var count: Int
    /// Rows of kind `http`.
    public var httpCount: Int
    /// Rows that failed: status ≥ 400, an error, or a finding of severity `error`.
    public var failures: Int

    public init(name: String, firstStarted: Date, lastStarted: Date, count: Int, httpCount: Int, failures: Int) {
        self.name = name
        self.firstStarted = firstStarted
        self.lastStarted = lastStarted
        self.count = count
        self.httpCount = httpCount
        self.failures = failures
    }
}

extension Exchange {
    /// True for what `list --failed` shows: status ≥ 400, an error, or a finding of severity `error`.
    public var isFailed: Bool {
        if let status, status >= 400 { return true }
        if error != nil { return true }
        return findings.contains { $0.severity == .error }
    }

    /// True for what `list --oauth` shows (RFC 6749 §4.1): authorization requests (path ending
    /// `/oauth/authorize`, or a query with `response_type` and `client_id`), redirects whose
    /// `Location` carries `code=`, token requests (path containing `/oauth/token` or `/token`, or
    /// a query or body carrying `grant_type`), Miro's revoke (`/oauth/revoke`) and token context
    /// (`/v1/oauth-token`) calls, and requests with an `Authorization: Bearer` header.
    public var isOAuthRelated: Bool {
        guard kind == .http else { return false }
        let p = path.lowercased()
        let queryNames = Set(formParameterNames(query ?? ""))
        if p.hasSuffix("/oauth/authorize") || p.hasSuffix("/oauth/authorize/") { return true }
        if queryNames.contains("response_type") && queryNames.contains("client_id") { return true }
        if let location = response.headers.first(named: "Location"), let status, (300..<400).contains(status) {
            let names = URLComponents(string: location)?.queryItems?.map(\.name) ?? []
            if names.contains("code") || location.contains("?code=") || location.contains("&code=") { return true }
        }
        // Token endpoint (RFC 6749 §3.2), Miro's revoke (`/v1/oauth/revoke`, `/v2/oauth/revoke`)
        // and token context (`/v1/oauth-token`) endpoints (miro-oauth.md).
        if p.contains("/oauth/") || p.contains("/oauth-token") || p.hasSuffix("/token") || p.contains("/token/") {
            return true
        }
        if queryNames.contains("grant_type") { return true }
        if let body = String(data: request.body.prefix(65536), encoding: .utf8), body.contains("grant_type") {
            if formParameterNames(body).contains("grant_type") || body.contains("\"grant_type\"") { return true }
        }
        if request.headers.all(named: "Authorization").contains(where: {
            $0.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("bearer")
        }) { return true }
        return false
    }
}

/// Names of `a=1&b=2` parameters, percent-decoded.
func formParameterNames(_ text: String) -> [String] {
    text.split(separator: "&").compactMap { pair in
        let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let decoded = FormCoding.decode(name)
        return decoded.isEmpty ? nil : decoded
    }
}

/// The SQLite store of recorded exchanges: `<home>/recordings/tokentap.sqlite` (design.md,
/// "Data on disk"). A GRDB `DatabasePool` (WAL: readers never block the writer), busy timeout 5 s so
/// the CLI and several proxies can share the file. Schema changes go through `DatabaseMigrator`.
///
/// Thread-safe; writes are `async` (GRDB's `await pool.write`) and must never run on an event loop.
public final class ExchangeStore: Sendable {
    /// The file the store uses.
    public let path: URL
    /// Whether the store was opened with `openReadOnly`.
    public let isReadOnly: Bool
    let pool: DatabasePool

    /// Opens (creating the file and its folder if needed, and running migrations) for writing.
    /// A new folder gets a `.gitignore` of `*`; a new database file gets mode 0600. Several
    /// processes (two proxies, an import) may open the same file: WAL plus the busy timeout
    /// serialize their writes. Throws GRDB's `DatabaseError` when the file cannot be opened or
    /// migrated (e.g. it is not an SQLite database).
    public init(path: URL) throws {
        let folder = path.deletingLastPathComponent()
        let fm = FileManager.default
        if !fm.fileExists(atPath: folder.path) {
            // design.md: every folder tokentap creates gets a `.gitignore` of `*`.
            try fm.createDirectory(at: folder, withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
            try Data("*\n".utf8).write(to: folder.appendingPathComponent(".gitignore"))
        }
        if !fm.fileExists(atPath: path.path) {
            // Recordings may hold fingerprints or (with --keep-secrets) raw secrets: owner-only.
            // SQLite gives the -wal and -shm files the database file's mode.
            _ = fm.createFile(atPath: path.path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.label = "tokentap.store"
        config.prepareDatabase { db in
            // WAL + NORMAL: a commit survives a process crash (kill -9); only power loss can lose
            // the last commits. Much cheaper than FULL (no fsync per transaction).
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        self.pool = try DatabasePool(path: path.path, configuration: config)
        self.path = path
        self.isReadOnly = false
        try Self.migrator.migrate(pool)
    }

    private init(readOnlyPool: DatabasePool, path: URL) {
        self.pool = readOnlyPool
        self.path = path
        self.isReadOnly = true
    }

    /// Opens an existing database read-only (the CLI: `list`, `show`, `doctor`, `export`). Works while
    /// a proxy writes to it. Throws `StoreError.missingDatabase` when there is no file (nothing
    /// recorded yet), `StoreError.incompatibleSchema` when its migrations are not the ones this
    /// build knows.
    public static func openReadOnly(path: URL) throws -> ExchangeStore {
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw StoreError.missingDatabase(path.path)
        }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(5)
        config.label = "tokentap.store.readonly"
        config.prepareDatabase { db in
            // Listing a large session reads many pages: map them instead of one pread each.
            try db.execute(sql: "PRAGMA mmap_size = 268435456")
        }
        let pool = try DatabasePool(path: path.path, configuration: config)
        // The table is v1's; later migrations add indexes, which a reader can do without (a
        // database last written by an older tokentap is still listed, just slower), and v3's
        // nullable `websocket` columns, read only where present.
        let ok = try pool.read { db in
            try migrator.appliedIdentifiers(db).contains("v1-exchange") && !(try migrator.hasBeenSuperseded(db))
        }
        guard ok else { throw StoreError.incompatibleSchema(path.path) }
        return ExchangeStore(readOnlyPool: pool, path: path)
    }

    // MARK: Schema

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-exchange") { db in
            try db.create(table: "exchange") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("session", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("started", .integer).notNull()          // µs since 1970-01-01 UTC
                t.column("connect_ms", .double)
                t.column("tls_ms", .double)
                t.column("send_ms", .double)
                t.column("wait_ms", .double)
                t.column("receive_ms", .double)
                t.column("total_ms", .double).notNull().defaults(to: 0)
                t.column("client_address", .text)
                t.column("scheme", .text).notNull()
                t.column("host", .text).notNull()
                t.column("port", .integer).notNull()
                t.column("method", .text).notNull()
                t.column("target", .text).notNull()
                t.column("request_http_version", .text).notNull()
                t.column("request_headers", .text).notNull()     // JSON [{name,value}]
                t.column("request_truncated", .boolean).notNull()
                t.column("request_wire_size", .integer).notNull()
                t.column("request_decoded_from", .text)
                t.column("status", .integer)
                t.column("reason", .text)
                t.column("response_http_version", .text).notNull()
                t.column("response_headers", .text).notNull()
                t.column("response_truncated", .boolean).notNull()
                t.column("response_wire_size", .integer).notNull()
                t.column("response_decoded_from", .text)
                t.column("error", .text)
                t.column("findings", .text).notNull()            // JSON [Finding]
                t.column("keeps_secrets", .boolean).notNull()
                // Derived at insert: Exchange.isFailed, so `--failed` is one indexed SQL filter.
                t.column("failed", .boolean).notNull()
                // Bodies last: listing reads the columns before them without walking the BLOBs'
                // overflow pages.
                t.column("request_body", .blob).notNull()
                t.column("response_body", .blob).notNull()
            }
            try db.create(index: "exchange_on_session_started", on: "exchange", columns: ["session", "started"])
            try db.create(index: "exchange_on_host", on: "exchange", columns: ["host"])
            try db.create(index: "exchange_on_status", on: "exchange", columns: ["status"])
            try db.create(index: "exchange_on_started", on: "exchange", columns: ["started"])
            try db.create(index: "exchange_on_kind", on: "exchange", columns: ["kind"])
            try db.create(index: "exchange_on_failed", on: "exchange", columns: ["failed"])
        }
        // `list --status 4xx` on a large session: the matching rows only, not a scan of the session.
        migrator.registerMigration("v2-session-status-index") { db in
            try db.create(index: "exchange_on_session_status", on: "exchange", columns: ["session", "status"])
        }
        // Kind `websocket`: its summary (JSON), and the key its row is found by when it is written
        // again at close.
        migrator.registerMigration("v3-websocket") { db in
            try db.alter(table: "exchange") { t in
                t.add(column: "websocket", .text)
                t.add(column: "websocket_key", .text)
            }
            try db.create(index: "exchange_on_websocket_key", on: "exchange", columns: ["websocket_key"])
        }
        // The typed kind of a proxy-side failure (design.md `error_kind`); null on older rows.
        migrator.registerMigration("v4-error-kind") { db in
            try db.alter(table: "exchange") { t in
                t.add(column: "error_kind", .text)
            }
        }
        // Issue 24: which provider profiles were in force when a session's findings were computed.
        migrator.registerMigration("v4-session-profiles") { db in
            try db.create(table: "session_profile") { t in
                t.column("session", .text).notNull()
                t.column("name", .text).notNull()
                t.column("origin", .text).notNull()
                t.column("overrides", .text).notNull()
                t.primaryKey(["session", "name"])
            }
        }
        return migrator
    }

    // MARK: Writing

    /// Inserts `exchanges` in one transaction. Returns them with `id` set, and each finding's
    /// `exchange` set to that id. Their ids are assigned in order and never reused. A `websocket`
    /// exchange whose key is already stored (written at the 101) updates that row instead.
    @discardableResult
    public func insert(_ exchanges: [Exchange]) async throws -> [Exchange] {
        if exchanges.isEmpty { return [] }
        let rows = try exchanges.map { try ExchangeRow($0) }
        let ids: [Int64] = try await pool.write { db in
            var ids: [Int64] = []
            ids.reserveCapacity(rows.count)
            // One cached INSERT with arguments by position: no per-row container or SQL building.
            let insert = try db.cachedStatement(sql: ExchangeRow.insertSQL)
            for var row in rows {
                if let key = row.websocketKey,
                   let existing = try Int64.fetchOne(db, sql: "SELECT id FROM exchange WHERE websocket_key = ?", arguments: [key]) {
                    row.id = existing
                    try row.update(db)
                    ids.append(existing)
                    continue
                }
                if let id = row.id {
                    try row.insert(db)  // an id given by the caller (rare): GRDB's record insert
                    ids.append(id)
                    continue
                }
                try insert.execute(arguments: StatementArguments(row.values.map(\.1)))
                ids.append(db.lastInsertedRowID)
            }
            return ids
        }
        return zip(exchanges, ids).map { exchange, id in
            var stored = exchange
            stored.id = id
            stored.findings = stored.findings.map { var f = $0; f.exchange = id; return f }
            return stored
        }
    }

    /// Deletes every row of session `name`; returns how many rows went.
    @discardableResult
    public func deleteSession(_ name: String) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM session_profile WHERE session = ?", arguments: [name])
            return try ExchangeRow.filter(Column("session") == name).deleteAll(db)
        }
    }

    /// Records the provider profiles in force for `session` (replacing what was recorded for a
    /// profile of the same name: a `run` attached later with other files records its own).
    public func recordProfiles(_ profiles: [SessionProfile], session: String) throws {
        let rows = try profiles.map { p -> [DatabaseValueConvertible] in
            let overrides = String(decoding: try JSONEncoder.sortedKeys.encode(p.overrides), as: UTF8.self)
            return [session, p.name, p.origin, overrides]
        }
        try pool.write { db in
            for r in rows {
                try db.execute(sql: "INSERT OR REPLACE INTO session_profile (session, name, origin, overrides) VALUES (?, ?, ?, ?)",
                               arguments: StatementArguments(r))
            }
        }
    }

    /// The provider profiles recorded for `session`, by name (empty for a session recorded before
    /// profiles were recorded).
    public func profiles(session: String) throws -> [SessionProfile] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, origin, overrides FROM session_profile WHERE session = ? ORDER BY name", arguments: [session])
                .map { row in
                    let text: String = row["overrides"]
                    let overrides = (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
                    return SessionProfile(name: row["name"], origin: row["origin"], overrides: overrides)
                }
        }
    }

    // MARK: Reading

    /// The exchange with this id, or `nil` when there is none.
    public func exchange(id: Int64) throws -> Exchange? {
        try pool.read { db in
            try Row.fetchOne(db, ExchangeRow.filter(key: id).asRequest(of: Row.self)).map { try ExchangeRow.exchange($0) }
        }
    }

    /// The exchanges `query` selects, oldest first (by start time, then id; by id when `afterID`
    /// is set, for `tail`). With `limit`, the newest `limit` of them. Session, kinds, host, method,
    /// status, failed, since and afterID are SQL (indexed); `oauthOnly` is applied in Swift.
    public func exchanges(_ query: ExchangeQuery) throws -> [Exchange] {
        try pool.read { db in
            var request = ExchangeRow.all()
            if let session = query.session { request = request.filter(Column("session") == session) }
            if query.kinds != Set(ExchangeKind.allCases) {
                request = request.filter(query.kinds.map(\.rawValue).contains(Column("kind")))
            }
            if let host = query.host?.lowercased() {
                if host.hasPrefix("*.") {
                    let suffix = host.dropFirst(1).replacingOccurrences(of: "%", with: "")
                    request = request.filter(Column("host").like("%" + suffix))
                } else {
                    request = request.filter(Column("host") == host)
                }
            }
            if !query.includeBodies {
                let empty = SQL(sql: "X''")
                let noHeaders = SQL(sql: "'[]'")
                request = request.select([
                    AllColumnsExcluding(["request_body", "response_body", "request_headers", "response_headers"]),
                    query.oauthOnly ? Column("request_body").forKey("request_body") : empty.forKey("request_body"),
                    empty.forKey("response_body"),
                    query.oauthOnly ? Column("request_headers").forKey("request_headers") : noHeaders.forKey("request_headers"),
                    query.oauthOnly ? Column("response_headers").forKey("response_headers") : noHeaders.forKey("response_headers"),
                ] as [any SQLSelectable])
            }
            if let method = query.method { request = request.filter(Column("method").collating(.nocase) == method) }
            switch query.status {
            case .exact(let n)?: request = request.filter(Column("status") == n)
            case .statusClass(let d)?: request = request.filter(Column("status") >= d * 100 && Column("status") < (d + 1) * 100)
            case nil: break
            }
            if query.failedOnly { request = request.filter(Column("failed") == true) }
            if let since = query.since { request = request.filter(Column("started") >= since.microsecondsSince1970) }
            if let after = query.afterID { request = request.filter(Column("id") > after) }
            let byID = query.afterID != nil
            let newestFirst = query.limit != nil
            let order: [SQLOrderingTerm] = byID
                ? [newestFirst ? Column("id").desc : Column("id").asc]
                : (newestFirst ? [Column("started").desc, Column("id").desc] : [Column("started").asc, Column("id").asc])
            request = request.order(order)
            if !query.oauthOnly, let limit = query.limit { request = request.limit(max(0, limit)) }

            var result: [Exchange] = []
            let cursor = try Row.fetchCursor(db, request.asRequest(of: Row.self))
            var columns: ColumnIndexes?
            while let row = try cursor.next() {
                if let limit = query.limit, result.count >= limit { break }
                if columns == nil { columns = ColumnIndexes(row) }
                let exchange = try ExchangeRow.exchange(row, columns: columns)
                if query.oauthOnly && !exchange.isOAuthRelated { continue }
                result.append(exchange)
            }
            return newestFirst ? result.reversed() : result
        }
    }

    /// The session of the most recently stored row, or `nil` when the store is empty.
    public func latestSession() throws -> String? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT session FROM exchange ORDER BY id DESC LIMIT 1")
        }
    }

    /// Every session, the most recently written last.
    public func sessions() throws -> [SessionSummary] {
        try pool.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT session, MIN(started) AS first, MAX(started) AS last, COUNT(*) AS n,
                       SUM(kind = 'http') AS http, SUM(failed) AS failures
                FROM exchange GROUP BY session ORDER BY MAX(id)
                """)
            return rows.map { row in
                SessionSummary(name: row["session"], firstStarted: Date(microsecondsSince1970: row["first"]),
                               lastStarted: Date(microsecondsSince1970: row["last"]), count: row["n"],
                               httpCount: row["http"] ?? 0, failures: row["failures"] ?? 0)
            }
        }
    }

    /// The number of rows in the store.
    public func count() throws -> Int {
        try pool.read { db in try ExchangeRow.fetchCount(db) }
    }
}

// MARK: - Time

extension Date {
    /// Whole microseconds since 1970-01-01 UTC (rounded): how `started` is stored.
    public var microsecondsSince1970: Int64 {
        Int64((timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The instant `us` microseconds after 1970-01-01 UTC.
    public init(microsecondsSince1970 us: Int64) {
        // Split to keep µs exact for present-day dates.
        let seconds = us.quotientAndRemainder(dividingBy: 1_000_000)
        self.init(timeIntervalSince1970: Double(seconds.quotient) + Double(seconds.remainder) / 1_000_000)
    }
}

// MARK: - Row

private let rowEncoder: JSONEncoder = {
    let e = JSONEncoder()
    e.outputFormatting = [.withoutEscapingSlashes]
    return e
}()

/// The JSON text of a header list, `[{"name":…,"value":…},…]`, as `rowEncoder` writes it: each
/// field is encoded by `rowEncoder` once and remembered (the same few dozen fields, `Host`,
/// `Content-Type`, `Server`, come back in almost every exchange, and encoding them was the largest
/// single cost of storing a row), then the array is those objects between `[` and `]`, separated by
/// `,`: the array JSONEncoder writes for them (same objects, same order; JSONEncoder itself does not
/// fix the order of the keys inside an object, and readers decode it). Bounded: emptied past 4,096 fields.
final class HeaderJSONMemo: @unchecked Sendable {
    private let lock = NSLock()
    private var fields: [HeaderField: String] = [:]

    func json(_ headers: [HeaderField]) throws -> String {
        if headers.isEmpty { return "[]" }
        var out = "["
        for (i, field) in headers.enumerated() {
            if i > 0 { out += "," }
            if let known = lock.withLock({ fields[field] }) {
                out += known
                continue
            }
            let text = String(decoding: try rowEncoder.encode(field), as: UTF8.self)
            lock.withLock {
                if fields.count >= 4_096 { fields.removeAll(keepingCapacity: true) }
                fields[field] = text
            }
            out += text
        }
        return out + "]"
    }
}

private let headerJSON = HeaderJSONMemo()

/// The `exchange` table's row. Headers and findings are JSON text; bodies are BLOBs.
struct ExchangeRow: MutablePersistableRecord, TableRecord, Sendable {
    static let databaseTableName = "exchange"

    var id: Int64?
    /// Column values in a fixed order (so GRDB reuses one cached INSERT statement).
    var values: [(String, DatabaseValue)]
    var websocketKey: String?

    init(_ e: Exchange) throws {
        id = e.id
        let columns: KeyValuePairs<String, (any DatabaseValueConvertible)?> = [
            "session": e.session,
            "kind": e.kind.rawValue,
            "started": e.started.microsecondsSince1970,
            "connect_ms": e.timings.connect,
            "tls_ms": e.timings.tls,
            "send_ms": e.timings.send,
            "wait_ms": e.timings.wait,
            "receive_ms": e.timings.receive,
            "total_ms": e.timings.total,
            "client_address": e.clientAddress,
            "scheme": e.scheme,
            "host": e.host,
            "port": e.port,
            "method": e.method,
            "target": e.target,
            "request_http_version": e.request.httpVersion,
            "request_headers": try headerJSON.json(e.request.headers),
            "request_body": e.request.body,
            "request_truncated": e.request.truncated,
            "request_wire_size": e.request.wireSize,
            "request_decoded_from": e.request.decodedFrom,
            "status": e.status,
            "reason": e.reason,
            "response_http_version": e.response.httpVersion,
            "response_headers": try headerJSON.json(e.response.headers),
            "response_body": e.response.body,
            "response_truncated": e.response.truncated,
            "response_wire_size": e.response.wireSize,
            "response_decoded_from": e.response.decodedFrom,
            "error": e.error,
            "error_kind": e.errorKind?.rawValue,
            "findings": e.findings.isEmpty ? "[]" : String(decoding: try rowEncoder.encode(e.findings), as: UTF8.self),
            "keeps_secrets": e.keepsSecrets,
            "failed": e.isFailed,
            "websocket": try e.websocket.map { String(decoding: try rowEncoder.encode($0), as: UTF8.self) },
            "websocket_key": e.websocket?.key,
        ]
        websocketKey = e.websocket?.key
        values = columns.map { ($0.key, $0.value?.databaseValue ?? .null) }
    }

    /// The column names of `values`, in their order (the same for every row).
    static let columnNames: [String] = {
        // The keys of `init`'s list, taken from any row (an empty exchange always encodes).
        try! ExchangeRow(Exchange(session: "", started: Date(timeIntervalSince1970: 0), host: "")).values.map(\.0)
    }()

    /// `INSERT INTO exchange (columns of values) VALUES (?, …)`.
    static let insertSQL = "INSERT INTO exchange (\(columnNames.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columnNames.count).joined(separator: ", ")))"

    func encode(to container: inout PersistenceContainer) throws {
        container["id"] = id
        for (key, value) in values { container[key] = value }
    }

    mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }

    /// The `Exchange` stored in `row`; throws `StoreError.corruptRow` when a JSON column or the kind is bad.
    /// `columns` maps column names to indexes for the row layout (computed once per query).
    static func exchange(_ row: Row, columns: ColumnIndexes? = nil) throws -> Exchange {
        let c = columns ?? ColumnIndexes(row)
        let id: Int64 = row[c["id"]]
        let decoder = JSONDecoder()
        func json<T: Decodable & ExpressibleByArrayLiteral>(_ column: String, _ type: T.Type) throws -> T {
            let text: String = row[c[column]] ?? "[]"
            if text == "[]" { return [] }
            do { return try decoder.decode(T.self, from: Data(text.utf8)) } catch {
                throw StoreError.corruptRow(id: id, detail: "column \(column): \(error)")
            }
        }
        let kindText: String = row[c["kind"]]
        guard let kind = ExchangeKind(rawValue: kindText) else {
            throw StoreError.corruptRow(id: id, detail: "unknown kind \(kindText)")
        }
        let request = MessageRecord(
            httpVersion: row[c["request_http_version"]],
            headers: try json("request_headers", [HeaderField].self),
            body: (row[c["request_body"]] as Data?) ?? Data(),
            truncated: row[c["request_truncated"]],
            wireSize: row[c["request_wire_size"]],
            decodedFrom: row[c["request_decoded_from"]])
        let response = MessageRecord(
            httpVersion: row[c["response_http_version"]],
            headers: try json("response_headers", [HeaderField].self),
            body: (row[c["response_body"]] as Data?) ?? Data(),
            truncated: row[c["response_truncated"]],
            wireSize: row[c["response_wire_size"]],
            decodedFrom: row[c["response_decoded_from"]])
        return Exchange(
            id: id,
            session: row[c["session"]],
            kind: kind,
            started: Date(microsecondsSince1970: row[c["started"]]),
            timings: Timings(connect: row[c["connect_ms"]], tls: row[c["tls_ms"]], send: row[c["send_ms"]],
                             wait: row[c["wait_ms"]], receive: row[c["receive_ms"]], total: row[c["total_ms"]] ?? 0),
            clientAddress: row[c["client_address"]],
            scheme: row[c["scheme"]],
            host: row[c["host"]],
            port: row[c["port"]],
            method: row[c["method"]],
            target: row[c["target"]],
            request: request,
            status: row[c["status"]],
            reason: row[c["reason"]],
            response: response,
            error: row[c["error"]],
            errorKind: c.optional("error_kind").flatMap { (row[$0] as String?).flatMap(ErrorKind.init(rawValue:)) },
            // A finding is about the row that holds it: stored before the id was known.
            findings: try json("findings", [Finding].self).map { var f = $0; f.exchange = id; return f },
            keepsSecrets: row[c["keeps_secrets"]],
            websocket: try websocket(row, c, id: id))
    }

    /// The `websocket` column (absent in a database from before v3).
    private static func websocket(_ row: Row, _ c: ColumnIndexes, id: Int64) throws -> WebSocketSummary? {
        guard let i = c.optional("websocket"), let text: String = row[i] else { return nil }
        do { return try JSONDecoder().decode(WebSocketSummary.self, from: Data(text.utf8)) } catch {
            throw StoreError.corruptRow(id: id, detail: "column websocket: \(error)")
        }
    }
}

/// Column name → index for one statement's rows (GRDB's by-name lookup is a linear scan).
struct ColumnIndexes {
    private let map: [String: Int]
    init(_ row: Row) {
        var map: [String: Int] = [:]
        for (i, name) in row.columnNames.enumerated() where map[name] == nil { map[name] = i }
        self.map = map
    }
    func optional(_ name: String) -> Int? { map[name] }
    subscript(_ name: String) -> Int {
        guard let i = map[name] else { preconditionFailure("column \(name) missing from the exchange query") }
        return i
    }
}

// MARK: - ISO 8601

/// Parses `2026-11-29T12:00:00Z`, `2026-11-29T12:00:00.123456Z`, `2026-11-29T13:00:00+01:00`,
/// and a date alone (`2026-11-29`, midnight UTC).
public func parseISO8601(_ text: String) -> Date? {
    let plain = ISO8601DateFormatter()
    plain.formatOptions = [.withInternetDateTime]
    if let d = plain.date(from: text) { return d }
    // Fractional seconds: ISO8601DateFormatter keeps only milliseconds; add the rest by hand.
    if let dot = text.firstIndex(of: "."), let dotEnd = text[dot...].dropFirst().firstIndex(where: { !$0.isNumber }) {
        let fraction = text[text.index(after: dot)..<dotEnd]
        let whole = String(text[..<dot]) + String(text[dotEnd...])
        if !fraction.isEmpty, let d = plain.date(from: whole), let f = Double("0." + fraction) {
            return d.addingTimeInterval(f)
        }
    }
    let dateOnly = ISO8601DateFormatter()
    dateOnly.formatOptions = [.withFullDate]
    return dateOnly.date(from: text)
}

/// `2026-11-29T12:00:00.123456Z`: ISO 8601, UTC, always six fractional digits. The calendar fields
/// come from the C library's `gmtime_r` (this runs for every live line and listed row; Foundation's
/// `Calendar` and `String(format:)` cost several times more).
public func iso8601Microseconds(_ date: Date) -> String {
    let us = date.microsecondsSince1970
    var (seconds, fraction) = us.quotientAndRemainder(dividingBy: 1_000_000)
    if fraction < 0 { seconds -= 1; fraction += 1_000_000 }
    var t = time_t(seconds)
    var c = tm()
    guard gmtime_r(&t, &c) != nil else { return "0000-00-00T00:00:00.000000Z" }
    func padded(_ n: Int, _ width: Int) -> String {
        let digits = String(n)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
    return padded(Int(c.tm_year) + 1900, 4) + "-" + padded(Int(c.tm_mon) + 1, 2) + "-" + padded(Int(c.tm_mday), 2)
        + "T" + padded(Int(c.tm_hour), 2) + ":" + padded(Int(c.tm_min), 2) + ":" + padded(Int(c.tm_sec), 2)
        + "." + padded(Int(fraction), 6) + "Z"
}
