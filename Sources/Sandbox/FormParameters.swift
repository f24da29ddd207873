import Foundation

/// Parameters decoded from a query string or an `application/x-www-form-urlencoded` body
/// (WHATWG URL "application/x-www-form-urlencoded parsing": `+` is a space, `%XX` is a byte,
/// the bytes are UTF-8), in order, repeats kept.
struct FormParameters: Sendable, Equatable {
    var pairs: [(name: String, value: String)]

    init(pairs: [(name: String, value: String)] = []) { self.pairs = pairs }

    /// Decodes `a=1&b=x+y&c=%2F`. Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` has
    /// an empty value.
    /// - Throws: `SandboxRequestError.malformedEncoding` for a bad `%` escape or bytes that are not UTF-8.
    init(decoding text: Substring) throws {
        var pairs: [(String, String)] = []
        for piece in text.split(separator: "&", omittingEmptySubsequences: true) {
            let (rawName, rawValue): (Substring, Substring)
            if let eq = piece.firstIndex(of: "=") {
                (rawName, rawValue) = (piece[..<eq], piece[piece.index(after: eq)...])
            } else {
                (rawName, rawValue) = (piece, "")
            }
            pairs.append((try Self.decode(rawName), try Self.decode(rawValue)))
        }
        self.pairs = pairs
    }

    static func decode(_ text: Substring) throws -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        guard let decoded = spaced.removingPercentEncoding else {
            throw SandboxRequestError.malformedEncoding(String(text.prefix(80)))
        }
        return decoded
    }

    /// Encodes one value for a query string: everything but RFC 3986 unreserved characters is
    /// percent-encoded (so `+`, `&`, `=` and spaces survive a form decoder).
    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    static func == (lhs: FormParameters, rhs: FormParameters) -> Bool {
        lhs.pairs.map(\.name) == rhs.pairs.map(\.name) && lhs.pairs.map(\.value) == rhs.pairs.map(\.value)
    }
}

/// A request's parameters gathered from one or more sources (query string, form body), with
/// RFC 6749 §3.1/§3.2's rule that a parameter must not be sent more than once enforced loosely:
/// repeats with the same value (byte for byte) are tolerated, different values are refused.
struct MergedParameters: Sendable {
    private(set) var values: [String: String] = [:]

    /// - Throws: `SandboxRequestError.conflictingParameter` when a name carries two different values.
    init(_ sources: [FormParameters]) throws {
        for source in sources {
            for (name, value) in source.pairs {
                if let existing = values[name] {
                    guard Array(existing.utf8) == Array(value.utf8) else {
                        throw SandboxRequestError.conflictingParameter(name)
                    }
                } else {
                    values[name] = value
                }
            }
        }
    }

    subscript(name: String) -> String? { values[name] }

    /// The value when present and not empty.
    func nonEmpty(_ name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }
}

/// A request the sandbox cannot read.
enum SandboxRequestError: Error, Equatable {
    case malformedEncoding(String)
    case conflictingParameter(String)
}

/// Credentials from an `Authorization: Basic` header (RFC 7617), decoded as RFC 6749 §2.3.1 says:
/// base64 of form-urlencoded client ID, `:`, form-urlencoded secret.
struct BasicCredentials: Sendable, Equatable {
    var clientID: String
    var clientSecret: String

    /// Parses the header value. Returns nil when the scheme is not `Basic` (case-insensitive).
    /// - Throws: `BasicCredentialsError.malformed` when it is `Basic` but the rest is not base64 of
    ///   UTF-8 `id:secret` with valid form encoding.
    static func parse(_ header: String) throws -> BasicCredentials? {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        let scheme = trimmed.prefix { $0 != " " }
        guard scheme.lowercased() == "basic" else { return nil }
        let payload = trimmed.dropFirst(scheme.count).trimmingCharacters(in: .whitespaces)
        guard !payload.isEmpty, let data = Data(base64Encoded: payload),
              let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":") else {
            throw BasicCredentialsError.malformed
        }
        do {
            let id = try FormParameters.decode(text[..<colon])
            let secret = try FormParameters.decode(text[text.index(after: colon)...])
            return BasicCredentials(clientID: id, clientSecret: secret)
        } catch {
            throw BasicCredentialsError.malformed
        }
    }
}

enum BasicCredentialsError: Error { case malformed }
