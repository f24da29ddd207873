import Foundation
import Reports
import TokentapCore

extension HAR {
    /// The HAR entry of `e` as a HAR reader sees it: the JSON object `export` writes.
    static func entry(_ e: Exchange) -> [String: Any] {
        let data = HAR.export([e], creatorVersion: "test")
        let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        let entries = (root?["log"] as? [String: Any])?["entries"] as? [[String: Any]]
        return entries?.first ?? [:]
    }
}
