import Foundation
import OAuthDiagnosis
import TokentapCore

/// One export format: exchanges that are already redacted (and pseudonymized when asked) in, the
/// bytes of the file out. Every format `tokentap export --format` and `doctor --html` write is one
/// of ``ExportFormat``'s cases.
///
/// An exporter never reads the clock, the disk or the network: everything it shows comes from the
/// exchanges it is given and from what it was built with.
public protocol Exporter {
    /// The name `tokentap export --format` knows it by (`har`, `markdown`, `curl`, `html`).
    var format: String { get }
    /// The file's content for `exchanges` (oldest first, ids set).
    func export(_ exchanges: [Exchange]) -> Data
}

/// The export formats: the one list `tokentap export --format` reads (its values, its help, and
/// the exporter each one names).
public enum ExportFormat: String, CaseIterable, Sendable {
    case har, markdown, curl, html

    /// The exporter of this format. `diagnoser` gives the verdicts (HAR's `_tokentap.verdict`, the
    /// reports' "What went wrong"); `version` is tokentap's, written into the file.
    public func exporter(diagnoser: Diagnoser, version: String) -> any Exporter {
        switch self {
        case .har: HARExport(diagnoser: diagnoser, version: version)
        case .markdown: MarkdownReport(diagnoser: diagnoser, version: version)
        case .curl: CurlExport(version: version)
        case .html: HTMLReport(diagnoser: diagnoser, version: version)
        }
    }

    /// A shell script (`tokentap export -o FILE` makes it executable).
    public var isExecutable: Bool { self == .curl }
}

/// `export --format har`: HAR 1.2 (``HAR/export(_:creatorVersion:verdicts:)``), each failed OAuth
/// exchange carrying the doctor's verdict in `_tokentap.verdict`.
public struct HARExport: Exporter {
    public let format = "har"
    public let diagnoser: Diagnoser
    public let version: String

    public init(diagnoser: Diagnoser, version: String) {
        self.diagnoser = diagnoser
        self.version = version
    }

    public func export(_ exchanges: [Exchange]) -> Data {
        HAR.export(exchanges, creatorVersion: version, verdicts: diagnoser.verdicts(exchanges))
    }
}
