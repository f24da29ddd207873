import Foundation

/// A profile file that cannot be used: the file, the field path (from `DecodingError.codingPath`)
/// and, for a syntax error, the line. Thrown at start by ``ProfileLoader/load(files:)``; the CLI
/// prints ``description`` and exits 2.
public struct ProfileFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file as given (`--profile FILE`) or found (`profiles/NAME.json`).
    public var file: String
    /// The field path, e.g. `codeLifetime` or `errorCodes[2].cause`; nil for a syntax error or an unreadable file.
    public var field: String?
    /// The 1-based line of a JSON syntax error; nil otherwise.
    public var line: Int?
    /// What is wrong, in plain words.
    public var reason: String

    public var description: String {
        var s = "profile file \(file)"
        if let line { s += ", line \(line)" }
        if let field { s += ", field \(field)" }
        return s + ": \(reason). Fix the file (the format of the built-in profiles, README, section Provider profiles) or leave it out."
    }
}

/// Loads the provider profiles in force: the built-in ones (``ProviderProfile/builtIn`` and
/// ``ProviderProfile/generic``), then each file in order. A file holds one JSON object in the
/// profile format (``ProviderProfile/CodingKeys``); its `name` picks the profile it overrides (only
/// the fields it gives change, and evidence then names the file for them), or a new profile with
/// that name, whose missing fields come from the generic profile. Pure but for reading the files.
public enum ProfileLoader {
    /// The profiles in force, in matching order (file-defined providers first, so a user profile
    /// for a host wins over a built-in one), the generic profile last.
    /// - Throws: ``ProfileFileError`` for the first file that cannot be read or decoded.
    public static func load(files: [String]) throws -> [ProviderProfile] {
        var providers = ProviderProfile.builtIn
        var generic = ProviderProfile.generic
        for file in files {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: file)) }
            catch { throw ProfileFileError(file: file, field: nil, line: nil, reason: "cannot read it (\(error.localizedDescription))") }
            let object: [String: Any]
            do {
                guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                    throw ProfileFileError(file: file, field: nil, line: 1, reason: "not a JSON object (a profile is one {…} object)")
                }
                object = o
            } catch let e as ProfileFileError {
                throw e
            } catch {
                throw ProfileFileError(file: file, field: nil, line: syntaxErrorLine(error, in: data), reason: "not valid JSON")
            }
            let known = Set(ProviderProfile.CodingKeys.allCases.map(\.rawValue))
            if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
                throw ProfileFileError(file: file, field: unknown, line: nil,
                                       reason: "unknown field (known: \(ProviderProfile.CodingKeys.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let name = object["name"] as? String, !name.isEmpty else {
                throw ProfileFileError(file: file, field: "name", line: nil, reason: "missing or not a string: name the profile to add or override")
            }
            let existing = providers.firstIndex { $0.name == name }
            let base = existing.map { providers[$0] } ?? generic
            var profile: ProviderProfile
            do {
                profile = try merge(object, over: base)
            } catch let error as DecodingError {
                throw ProfileFileError(file: file, field: fieldPath(error), line: nil, reason: reason(error))
            }
            let isGeneric = name == generic.name
            if existing != nil || isGeneric {
                profile.origin = base.origin
                profile.overrides = base.overrides
                for k in object.keys where k != "name" { profile.overrides[k] = file }
            } else {
                profile.origin = file
            }
            if isGeneric {
                guard profile.hosts.isEmpty else {
                    throw ProfileFileError(file: file, field: "hosts", line: nil, reason: "the generic profile serves every other host: leave hosts empty")
                }
                generic = profile
            } else if let i = existing {
                providers[i] = profile
            } else {
                guard !profile.hosts.isEmpty else {
                    throw ProfileFileError(file: file, field: "hosts", line: nil, reason: "a new profile needs the hosts it serves")
                }
                providers.insert(profile, at: 0)
            }
        }
        return providers + [generic]
    }

    /// The `*.json` files of a home's `profiles/` folder, sorted by name (none when it does not exist).
    public static func files(inFolder folder: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().map { folder + "/" + $0 }
    }

    /// `base` with the fields of `object` (a profile file's JSON object) put in its place, decoded
    /// as a profile. `origin` and `overrides` are `base`'s.
    /// - Throws: `DecodingError` for a field of the wrong type or value.
    static func merge(_ object: [String: Any], over base: ProviderProfile) throws -> ProviderProfile {
        let encoded = try JSONEncoder().encode(base)
        var merged = (try JSONSerialization.jsonObject(with: encoded) as? [String: Any]) ?? [:]
        for (k, v) in object { merged[k] = v }
        var profile = try JSONDecoder().decode(ProviderProfile.self, from: try JSONSerialization.data(withJSONObject: merged))
        profile.origin = base.origin
        profile.overrides = base.overrides
        return profile
    }

    /// `errorCodes[2].cause` from a coding path.
    static func fieldPath(_ error: DecodingError) -> String? {
        let path: [CodingKey]
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): path = c.codingPath
        case .keyNotFound(let key, let c): path = c.codingPath + [key]
        @unknown default: return nil
        }
        var s = ""
        for k in path {
            if let i = k.intValue { s += "[\(i)]" } else { s += s.isEmpty ? k.stringValue : "." + k.stringValue }
        }
        return s.isEmpty ? nil : s
    }

    static func reason(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, _): return "expected \(describe(type))"
        case .valueNotFound(let type, _): return "expected \(describe(type)), found null"
        case .keyNotFound: return "missing"
        case .dataCorrupted(let c): return c.debugDescription
        @unknown default: return "invalid"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Int.Type, is Optional<Double>.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default:
            let n = String(describing: type)
            if n.hasPrefix("Array") { return "an array" }
            if n.hasPrefix("Dictionary") { return "an object" }
            return "a value of type \(n)"
        }
    }

    /// The line of a JSON syntax error: Foundation reports the offset (`around character N`) in the
    /// error's debug description; the line is counted from it. Nil when no offset is given.
    static func syntaxErrorLine(_ error: Error, in data: Data) -> Int? {
        let info = (error as NSError).userInfo
        let text = (info[NSDebugDescriptionErrorKey] as? String) ?? ""
        let offset: Int
        if let n = info["NSJSONSerializationErrorIndex"] as? Int { offset = n }
        else if let r = text.range(of: "character ") {
            let digits = text[r.upperBound...].prefix { $0.isNumber }
            guard let n = Int(digits) else { return nil }
            offset = n
        } else { return nil }
        let prefix = data.prefix(max(0, min(offset, data.count)))
        return prefix.reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }
}
