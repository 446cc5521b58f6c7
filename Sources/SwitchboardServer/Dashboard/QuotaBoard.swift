import Foundation
import SwitchboardCore
import Synchronization

/// Every `ai-rate-limiting` counter requests have used, for the dashboard: whose it is (route,
/// consumer or consumer group), which instance or rule, its window, and its rejections per
/// minute over the last hour. The counts themselves are read from the counter store when the
/// dashboard asks. At most ``capacity`` counters are listed (the least recently used go first).
public final class QuotaBoard: Sendable {
    struct Entry: Sendable {
        var owner: String
        var subject: String
        var window: QuotaWindow
        /// Kept in the cluster's shared counters (`policy: cluster`), else in this node's.
        var shared: Bool
        var lastSeen: Double
        /// Rejections per minute: slot `minute % 60`, with the minute it counts.
        var rejections: [(minute: Int, count: Int)] = Array(repeating: (-1, 0), count: 60)
    }

    static let capacity = 1000
    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// A counter was consulted for a request (`rejected`: and refused it).
    func observe(
        key: String, owner: String, subject: String, window: QuotaWindow, shared: Bool, rejected: Bool, now: Double
    ) {
        let minute = Int(now / 60)
        entries.withLock { entries in
            if entries[key] == nil, entries.count >= Self.capacity {
                // Full: the least recently used tenth goes at once, so a stream of new rule keys
                // costs one sort per hundred keys, not a scan per key.
                let oldest = entries.sorted { $0.value.lastSeen < $1.value.lastSeen }.prefix(Self.capacity / 10)
                for (old, _) in oldest { entries.removeValue(forKey: old) }
            }
            var entry =
                entries[key]
                ?? Entry(owner: owner, subject: Self.shown(subject), window: window, shared: shared, lastSeen: now)
            entry.window = window
            entry.lastSeen = now
            if rejected {
                let slot = minute % 60
                if entry.rejections[slot].minute != minute { entry.rejections[slot] = (minute, 0) }
                entry.rejections[slot].count += 1
            }
            entries[key] = entry
        }
    }

    /// How a counter's subject is shown: an instance name as it is; a rule's resolved key
    /// (which may come from a client's header) only by its first characters.
    static func shown(_ subject: String) -> String {
        guard subject.hasPrefix("rule:") else { return subject }
        let key = subject.dropFirst("rule:".count)
        return key.count <= 4 ? subject : "rule:\(key.prefix(4))… (\(key.count) characters)"
    }

    /// Each counter with its current state, as `state(key, window, shared)` reads it.
    func list(now: Double, state: (String, QuotaWindow, Bool) -> QuotaState) -> [JSONValue] {
        let minute = Int(now / 60)
        let snapshot = entries.withLock { $0 }
        return snapshot.sorted { ($0.value.owner, $0.value.subject) < ($1.value.owner, $1.value.subject) }.map {
            key, entry in
            let current = state(key, entry.window, entry.shared)
            let rejected = entry.rejections.filter { minute - $0.minute < 60 && $0.minute >= 0 }.reduce(0) {
                $0 + $1.count
            }
            return [
                "owner": .string(entry.owner), "subject": .string(entry.subject), "limit": .int(current.limit),
                "time_window": .int(entry.window.seconds), "used": .int(current.consumed),
                "reserved": .int(current.reserved), "remaining": .int(current.remaining),
                "reset_in": .double(current.resetIn), "rejections_last_hour": .int(rejected),
            ]
        }
    }
}
