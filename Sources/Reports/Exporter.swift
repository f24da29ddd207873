import Foundation
import TokentapCore

/// One export format: exchanges that are already redacted (and pseudonymized when asked) in, the
/// bytes of the file out (issue 23's seam, introduced by the HTML report; the HAR, Markdown and
/// curl exports still render directly in `tokentap export`).
///
/// An exporter never reads the clock, the disk or the network: everything it shows comes from the
/// exchanges it is given and from what it was built with.
public protocol Exporter {
    /// The name `tokentap export --format` knows it by (`html`).
    var format: String { get }
    /// The file's content for `exchanges` (oldest first, ids set).
    func export(_ exchanges: [Exchange]) -> Data
}
