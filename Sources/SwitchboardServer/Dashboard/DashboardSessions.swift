import Foundation
import SwitchboardCore
import Synchronization

/// Signed-in dashboard users. Signing in with an admin key (its role from `admin.keys`) gives
/// a random session id, sent back only as an HttpOnly, SameSite=Strict cookie, and a random
/// CSRF token the page keeps in memory and sends in `X-CSRF-Token` with every write. The key
/// itself is never stored in the browser. A session ends at sign-out, after 30 minutes without
/// a request, or 12 hours after sign-in; at most 1,000 live at once (the oldest goes first).
final class DashboardSessions: Sendable {
    struct Session: Sendable {
        var role: AdminKeyring.Role
        var csrf: String
        var created: ContinuousClock.Instant
        var lastSeen: ContinuousClock.Instant
    }

    static let cookieName = "sb_session"
    static let idleTimeout: Duration = .seconds(30 * 60)
    static let lifetime: Duration = .seconds(12 * 3600)
    static let maximumCount = 1000

    private let sessions = Mutex<[String: Session]>([:])

    /// Starts a session for `role`: its id (for the cookie) and CSRF token.
    func start(_ role: AdminKeyring.Role) -> (id: String, csrf: String) {
        let id = Randomness.hex(bytes: 32)
        let csrf = Randomness.hex(bytes: 32)
        let now = ContinuousClock.now
        sessions.withLock { sessions in
            sessions = sessions.filter { Self.isLive($0.value, now) }
            if sessions.count >= Self.maximumCount,
                let oldest = sessions.min(by: { $0.value.created < $1.value.created })?.key
            {
                sessions.removeValue(forKey: oldest)
            }
            sessions[id] = Session(role: role, csrf: csrf, created: now, lastSeen: now)
        }
        return (id, csrf)
    }

    /// The live session with `id`, its idle clock reset.
    func session(_ id: String?) -> Session? {
        guard let id else { return nil }
        let now = ContinuousClock.now
        return sessions.withLock { sessions in
            guard var session = sessions[id] else { return nil }
            guard Self.isLive(session, now) else {
                sessions.removeValue(forKey: id)
                return nil
            }
            session.lastSeen = now
            sessions[id] = session
            return session
        }
    }

    func end(_ id: String) {
        _ = sessions.withLock { $0.removeValue(forKey: id) }
    }

    static func isLive(_ session: Session, _ now: ContinuousClock.Instant) -> Bool {
        now - session.lastSeen < idleTimeout && now - session.created < lifetime
    }

    /// Whether `presented` is the session's CSRF token (constant time).
    static func csrfMatches(_ session: Session, _ presented: String?) -> Bool {
        guard let presented else { return false }
        return AdminKeyring.constantTimeEqual(Array(presented.utf8), Array(session.csrf.utf8))
    }

    /// The session id from a `Cookie` header.
    static func cookie(_ header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == cookieName {
                return String(pair[1]).trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}
