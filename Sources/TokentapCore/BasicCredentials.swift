import Foundation

/// The credentials of an HTTP Basic `Authorization` value (RFC 7617 §2): `Basic base64(user:password)`,
/// decoded as UTF-8 and split at the first `:`. The one decoder of Basic credentials that the
/// redactor, the diagnosis and the exports share (the diagnosis first repairs what it reports:
/// whitespace, base64url, missing padding). In OAuth (RFC 6749 §2.3.1) the user is the client id
/// and the password the client secret, each form-urlencoded before joining: decoding that level is
/// the caller's (``FormCoding``).
public struct BasicCredentials: Sendable, Hashable {
    /// The decoded text, `user:password`.
    public var text: String
    /// Before the first `:`.
    public var user: String
    /// After the first `:`.
    public var password: String

    /// Parses standard base64 (RFC 4648 §4, padded) of UTF-8 text that holds a `:`; `nil` otherwise.
    public init?(base64: some StringProtocol) {
        guard let data = Data(base64Encoded: String(base64)), let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":") else { return nil }
        self.text = text
        user = String(text[..<colon])
        password = String(text[text.index(after: colon)...])
    }

    /// Parses an `Authorization` header value: the scheme `Basic` (any case), then the base64 part
    /// (surrounding spaces ignored); `nil` for another scheme or a part that does not decode.
    public init?(authorization value: String) {
        let parts = value.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic" else { return nil }
        self.init(base64: parts[1].trimmingCharacters(in: .whitespaces))
    }
}
