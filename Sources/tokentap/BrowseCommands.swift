import ArgumentParser
import Foundation
import Recording
import Reports
import TokentapCore

/// Opens the recordings read-only; a missing database is a runtime failure saying what to do.
func openStore(_ home: Home) throws -> ExchangeStore {
    do {
        return try ExchangeStore.openReadOnly(path: home.database)
    } catch {
        throw CLIFailure.runtime("\(error)")
    }
}

/// Colour only on a terminal, and never with NO_COLOR set (no-color.org).
var useColor: Bool {
    isatty(STDOUT_FILENO) == 1 && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
}

/// The filters `list` (and later `tail` and `export`) share.
struct FilterOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Session to show (default: the latest).", valueName: "NAME"))
    var session: String?

    @Option(help: ArgumentHelp("Only this host (or *.domain).", valueName: "HOST"))
    var host: String?

    @Option(help: ArgumentHelp("Only this method.", valueName: "METHOD"))
    var method: String?

    @Option(help: ArgumentHelp("Only this status (401) or class (4xx).", valueName: "STATUS"))
    var status: String?

    @Flag(help: "Only failures: status >= 400, upstream errors, or an error finding.")
    var failed = false

    @Flag(help: "Only OAuth traffic: authorize, redirects, token requests, Bearer calls.")
    var oauth = false

    @Option(help: ArgumentHelp("Only exchanges since a duration ago (10m, 2h, 1d) or an ISO 8601 time.", valueName: "WHEN"))
    var since: String?

    @Option(help: ArgumentHelp("At most N (the newest).", valueName: "N"))
    var limit: Int?

    @Flag(help: "Include tunnels, TLS errors and rejected requests.")
    var all = false

    /// The query, with the latest session when none is named. Bad values: usage failure.
    func query(store: ExchangeStore, now: Date = Date()) throws -> ExchangeQuery {
        var q = ExchangeQuery()
        q.session = try session ?? store.latestSession()
        q.kinds = all ? Set(ExchangeKind.allCases) : [.http]
        q.host = host?.lowercased()
        q.method = method
        if let status {
            guard let filter = StatusFilter(parsing: status) else {
                throw CLIFailure.usage("invalid value '\(status)' for --status: expected a code (401) or a class (4xx)")
            }
            q.status = filter
        }
        q.failedOnly = failed
        q.oauthOnly = oauth
        if let since {
            guard let date = ExchangeQuery.parseSince(since, now: now) else {
                throw CLIFailure.usage("invalid value '\(since)' for --since: expected 10m, 2h, 1d or an ISO 8601 time")
            }
            q.since = date
        }
        if let limit {
            guard limit > 0 else { throw CLIFailure.usage("invalid value '\(limit)' for --limit: expected a number > 0") }
            q.limit = limit
        }
        return q
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List recorded exchanges (the latest session by default; newest last).")

    @OptionGroup var filters: FilterOptions

    @Flag(help: "Print one JSON array (design.md's shape).")
    var json = false

    @OptionGroup var homeOptions: HomeOptions

    func run() throws {
        let store = try openStore(try homeOptions.resolve(prepare: false))
        var query = try filters.query(store: store)
        query.includeBodies = filters.oauth  // the OAuth filter looks into bodies
        let rows = try query.session == nil ? [] : store.exchanges(query)
        if json {
            print(Render.listJSON(rows))
        } else if rows.isEmpty {
            warn(query.session == nil ? "no recordings yet: run `tokentap proxy` and send traffic through it"
                                      : "no exchanges match in session \(query.session!)")
        } else {
            print(Render.listTable(rows, color: useColor), terminator: "")
        }
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one recorded exchange: request, response, timings, findings.")

    @Argument(help: "The exchange id (`tokentap list` shows them).")
    var id: Int64

    @Flag(help: "Print one JSON document (design.md's shape).")
    var json = false

    @Flag(help: "Print bodies as stored, not pretty-printed.")
    var raw = false

    @OptionGroup var homeOptions: HomeOptions

    func run() throws {
        let store = try openStore(try homeOptions.resolve(prepare: false))
        guard let exchange = try store.exchange(id: id) else {
            throw CLIFailure.runtime("no exchange #\(id) in \(store.path.path): `tokentap list` shows the ids")
        }
        if json {
            print(Render.showJSON(exchange))
        } else {
            print(Render.show(exchange, raw: raw, color: useColor), terminator: "")
        }
    }
}
