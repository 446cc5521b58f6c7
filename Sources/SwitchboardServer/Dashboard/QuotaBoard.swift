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
        var lastSeen: Double
        /// Rejections per minute: slot `minute % 60`, with the minute it counts.
        var rejections: [(minute: Int, count: Int)] = Array(repeating: (-1, 0), count: 60)
    }

    static let capacity = 1000
    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// A counter was consulted for a request (`rejected`: and refused it).
    func observe(key: String, owner: String, subject: String, window: QuotaWindow, rejected: Bool, now: Double) {
        let minute = Int(now / 60)
        entries.withLock { entries in
            if entries[key] == nil, entries.count >= Self.capacity,
                let oldest = entries.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key
            {
                entries.removeValue(forKey: oldest)
            }
            var entry = entries[key] ?? Entry(owner: owner, subject: subject, window: window, lastSeen: now)
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

    /// Each counter with its current state, as `state(key, window)` reads it.
    func list(now: Double, state: (String, QuotaWindow) -> QuotaState) -> [JSONValue] {
        let minute = Int(now / 60)
        let snapshot = entries.withLock { $0 }
        return snapshot.sorted { ($0.value.owner, $0.value.subject) < ($1.value.owner, $1.value.subject) }.map {
            key, entry in
            let current = state(key, entry.window)
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
