import Foundation
import Redaction
import TokentapCore

/// The part of a session the rules look back at, parsed once and kept between exchanges, so that
/// judging a new exchange costs one parse of that exchange (plus scans of what is kept) instead of
/// one parse per earlier exchange. Used by the live capture pipeline, ``Diagnoser/diagnoseSession(_:)``
/// and ``Diagnoser/diagnose(_:history:)``.
///
/// What is kept: the flow's steps, i.e. authorize, redirect, callback and token exchanges, TLS errors
/// and test-clock advances, up to ``limit`` (the newest). API calls and traffic with no OAuth role are
/// judged but not kept: no rule looks back at them (rules look back at authorizations, codes and the
/// token responses that issued the tokens an API call carries). When the limit is passed by a quarter,
/// the oldest entries are dropped down to it, so keeping costs amortised O(1).
///
/// Values are whatever the caller appends: live history is redacted (compared by fingerprint, see
/// ``Diagnoser/init(redactor:profiles:)``); a `--keep-secrets` recording holds raw values.
public struct FlowHistory: Sendable {
    /// A kept entry, to give it its database id once stored (``assignID(_:to:)``).
    public struct Entry: Sendable, Hashable {
        fileprivate let sequence: Int
    }

    /// What ``FlowHistory/diagnose(_:)`` says of an exchange.
    public struct Judgement: Sendable {
        /// Sorted as ``Diagnoser/sorted(_:)`` sorts.
        public var findings: [Finding]
        /// Whether the exchange is a step of the flow that ``FlowHistory/append(_:)`` would keep.
        public var isFlowStep: Bool
    }

    public let diagnoser: Diagnoser
    /// Most flow steps kept (the newest).
    public let limit: Int

    private var index: FlowIndex
    /// Sequence number of each kept observation (parallel to `index.observations`), increasing.
    private var sequences: [Int] = []
    private var nextSequence = 0
    /// Count at which the oldest entries are dropped (a quarter over `limit`, saturating).
    private let trimAt: Int

    /// - Parameter limit: flow steps kept (default 1,000: many more than one debugging session has;
    ///   `Int.max` for no limit).
    public init(diagnoser: Diagnoser, limit: Int = 1_000) {
        self.diagnoser = diagnoser
        self.limit = max(1, limit)
        let (sum, overflow) = self.limit.addingReportingOverflow(self.limit / 4)
        trimAt = overflow ? .max : sum
        self.index = FlowIndex(redactor: diagnoser.redactor)
    }

    /// How many exchanges are kept.
    public var count: Int { index.observations.count }

    /// Judges `current` against what is kept (oldest first), without keeping it.
    /// Same contract as ``Diagnoser/diagnose(_:history:)``.
    public mutating func diagnose(_ current: Exchange) -> Judgement {
        let shift = index.clockShift
        let observation = index.observe(current, profiles: diagnoser.profiles)
        index.observations.append(observation)
        let findings = Self.judgeLast(index)
        index.forgetRawValues()
        index.observations.removeLast()
        index.restoreClockShift(shift)
        return Judgement(findings: findings, isFlowStep: Self.isFlowStep(observation))
    }

    /// Keeps `exchange` (as it is: redacted for live history) for judging later ones when it is a
    /// step of the flow; returns its entry, or nil when it is not kept.
    @discardableResult
    public mutating func append(_ exchange: Exchange) -> Entry? {
        let observation = index.observe(exchange, profiles: diagnoser.profiles)
        index.forgetRawValues()
        guard Self.isFlowStep(observation) else { return nil }
        index.observations.append(observation)
        let sequence = nextSequence
        nextSequence += 1
        sequences.append(sequence)
        if count > trimAt {
            index.observations.removeFirst(count - limit)
            sequences.removeFirst(sequences.count - limit)
        }
        return Entry(sequence: sequence)
    }

    /// Gives a kept entry its database id (shown as `#id` in evidence). A no-op when the entry has been
    /// dropped by the limit meanwhile.
    public mutating func assignID(_ id: Int64, to entry: Entry) {
        // Sequences increase along the array: binary search.
        var low = 0, high = sequences.count
        while low < high {
            let mid = (low + high) / 2
            if sequences[mid] < entry.sequence { low = mid + 1 } else { high = mid }
        }
        guard low < sequences.count, sequences[low] == entry.sequence else { return }
        index.observations[low].id = id
        index.observations[low].exchange.id = id
    }

    private static func isFlowStep(_ o: Observation) -> Bool {
        switch o.role {
        case .authorize, .redirect, .callback, .token, .tlsError: return true
        case .api: return false
        case .other: return o.exchange.kind == .http && o.exchange.path == FlowIndex.testClockAdvancePath
        }
    }

    /// Runs the rules on the last observation of `index`. A separate function so the rule context's
    /// copy of the index is gone before the caller removes the observation (no copy-on-write).
    private static func judgeLast(_ index: FlowIndex) -> [Finding] {
        let findings = DiagnosisRules.judge(index, position: index.observations.count - 1)
        var seen = Set<String>()
        let unique = findings.filter { f in seen.insert(f.rule + "|" + f.title + "|" + f.evidence.joined()).inserted }
        return Diagnoser.sorted(unique)
    }
}
