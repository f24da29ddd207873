import FuzzCommon
import Foundation
import Reports
import Redaction

/// `tokentap import`: a HAR file (JSON) parsed, then each entry redacted and the whole session
/// diagnosed, as the import command does. A `FormatError` is the expected answer to bad input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHAR(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let entries = try? HAR.parse(Fuzz.data(start, count), session: "fuzz") else { return 0 }
    let session = entries.map { Fuzz.redactor.redact($0.exchange) }
    _ = Fuzz.diagnoser.diagnoseSession(entries.map(\.exchange))
    _ = Fuzz.diagnoser.verdicts(session)
    return 0
}
