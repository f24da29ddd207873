import ArgumentParser
#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import OAuthDiagnosis
import Recording
import Redaction
import Capture
import Reports
import TokentapCore

// MARK: - sessions

/// `tokentap sessions [--json] [--home DIR]` (issue 9): every recorded session with its first and
/// last start time, row count, HTTP exchange count and failures, the latest last (marked `*`).
struct SessionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "List recorded sessions: start, exchange count, failures (the latest last).")

    @Flag(help: "Print one JSON array of { name, first_started, last_started, count, http_count, failures }.")
    var json = false

    @OptionGroup var homeOptions: HomeOptions

    func run() throws {
        let store = try openStore(try homeOptions.resolve(prepare: false))
        let sessions = try store.sessions()
        if json {
            print(Render.sessionsJSON(sessions))
        } else if sessions.isEmpty {
            warn("no recordings yet: run `tokentap proxy` or `tokentap import FILE.har`")
        } else {
            print(Render.sessionsTable(sessions, color: useColor), terminator: "")
        }
    }
}

// MARK: - delete

/// `tokentap delete --session S [--yes] [--home DIR]` (issue 9). Asks for confirmation when stdin
/// is a terminal; without a terminal it needs `--yes` (else exit 2). An unknown session exits 1.
struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a recorded session (asks for confirmation, or pass --yes).")

    @Option(help: ArgumentHelp("The session to delete (`tokentap sessions` lists them).", valueName: "NAME"))
    var session: String

    @Flag(name: [.customShort("y"), .long], help: "Do not ask for confirmation.")
    var yes = false

    @OptionGroup var homeOptions: HomeOptions

    func run() throws {
        let home = try homeOptions.resolve(prepare: false)
        let summary: SessionSummary
        do {
            let store = try openStore(home)
            guard let found = try store.sessions().first(where: { $0.name == session }) else {
                throw CLIFailure.runtime("no session '\(session)' in \(home.database.path): `tokentap sessions` lists them")
            }
            summary = found
        }
        if !yes {
            guard isatty(STDIN_FILENO) == 1 else {
                throw CLIFailure.usage("not deleting session '\(session)' (\(summary.count) rows) without confirmation: pass --yes")
            }
            FileHandle.standardError.write(Data("delete session '\(session)' (\(summary.count) rows, \(summary.failures) failures)? [y/N] ".utf8))
            let answer = (readLine() ?? "").trimmingCharacters(in: .whitespaces).lowercased()
            guard answer == "y" || answer == "yes" else {
                warn("not deleted")
                return
            }
        }
        let deleted: Int
        do {
            deleted = try ExchangeStore(path: home.database).deleteSession(session)
        } catch {
            throw CLIFailure.runtime("cannot delete from \(home.database.path): \(error)")
        }
        print("deleted session \(session) (\(deleted) rows)")
    }
}

// MARK: - tail

/// `tokentap tail [list filters] [--json] [--home DIR]` (issue 9): prints exchanges as another
/// process (a proxy, an import) records them, polling the database every 250 ms by row id. Without
/// `--session` it follows every session; `--limit N` first prints the N newest matching rows.
/// `--json` prints one compact JSON object per line (the item shape of `list --json`). Exits 0 on
/// SIGINT or SIGTERM.
struct TailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Follow exchanges as they are recorded (same filters as list).")

    @OptionGroup var filters: FilterOptions

    @Flag(help: "Print one JSON object per line (list --json's item shape).")
    var json = false

    @OptionGroup var homeOptions: HomeOptions

    /// Poll interval in microseconds.
    static let interval: useconds_t = 250_000

    func run() throws {
        signal(SIGINT) { _ in _exit(0) }
        signal(SIGTERM) { _ in _exit(0) }
        // A parent may start us with these blocked (the mask is inherited): unblock them.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        let home = try homeOptions.resolve(prepare: false)
        // Wait for the database when nothing was recorded yet.
        var store: ExchangeStore?
        var warned = false
        while store == nil {
            if FileManager.default.fileExists(atPath: home.database.path) {
                store = try? ExchangeStore.openReadOnly(path: home.database)
            }
            if store == nil {
                if !warned { warn("waiting for recordings in \(home.database.path)"); warned = true }
                usleep(Self.interval)
            }
        }
        let db = store!
        var query = try filters.query(store: db)
        query.session = filters.session
        // The text form prints the verdict under a failed exchange: that reads the bodies.
        query.includeBodies = filters.oauth || !json
        // Prints the verdict under a failed exchange (text form only).
        var printer: LivePrinter?
        if !json, let key = try? Redactor.loadOrCreateKey(at: CertificatePaths(home: home).fingerprintKey) {
            printer = LivePrinter(echo: true, insecureUpstream: false, diagnoser: Diagnoser(redactor: Redactor(key: key)))
        }
        // Start after the newest row, unless --limit asks for a backlog.
        var last: Int64 = try db.exchanges(ExchangeQuery(kinds: Set(ExchangeKind.allCases), afterID: 0, limit: 1,
                                                        includeBodies: false)).last?.id ?? 0
        if let limit = filters.limit {
            var backlog = query
            backlog.afterID = 0
            backlog.limit = limit
            let rows = try db.exchanges(backlog).filter { ($0.id ?? 0) <= last }
            emit(rows, printer)
        }
        query.limit = nil
        warn("following \(home.database.path) (Ctrl-C to stop)")
        var printedHeader = false
        while true {
            // The newest row first, so rows written during this poll wait for the next one.
            let newest = try db.exchanges(ExchangeQuery(kinds: Set(ExchangeKind.allCases), afterID: last, limit: 1,
                                                        includeBodies: false)).last?.id
            if let newest {
                query.afterID = last
                let rows = try db.exchanges(query).filter { ($0.id ?? 0) <= newest }
                if !rows.isEmpty {
                    if !json && !printedHeader && filters.limit == nil {
                        printedHeader = true
                        print(Render.listTable(rows, color: useColor, notes: printer?.notes), terminator: "")
                    } else {
                        emit(rows, printer)
                    }
                }
                last = newest  // rows the filters skipped still move the cursor
            }
            usleep(Self.interval)
        }
    }

    private func emit(_ rows: [Exchange], _ printer: LivePrinter?) {
        guard !rows.isEmpty else { return }
        if json {
            for row in rows { print(Render.tailJSONLine(row)) }
        } else {
            print(Render.listTable(rows, color: useColor, header: false, notes: printer?.notes), terminator: "")
        }
    }
}
