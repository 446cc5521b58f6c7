import PostgresNIO
import SwitchboardCore

/// `policy: cluster` counters in the cluster's database: one row per counter and window,
/// changed only by the functions below so that each step is one round trip and atomic under the
/// row's lock. The functions run with `synchronous_commit = off`: a crash of the database may
/// forget the last fraction of a second of counting, which a quota can afford, and each step
/// does not wait for a disk flush.
extension PostgresConfigStore: SharedQuotaCounters {
    /// How long a read of the counters (`peek`) or a batch may wait. A reservation has the
    /// longer bound of every store operation: the request is decided after 1 s without it (see
    /// `ClusterQuotas`), but its answer is still wanted, to release what it reserved.
    static let quotaTimeout: Duration = .seconds(1)

    /// Migration 4: the counter table and its functions.
    static let quotaMigration: [PostgresQuery] = [
        """
        CREATE TABLE switchboard_quota_windows (
            counter TEXT NOT NULL, window_start BIGINT NOT NULL, expires_at BIGINT NOT NULL,
            consumed BIGINT NOT NULL DEFAULT 0, reserved BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (counter, window_start))
        """,
        // Admission exactly as the local counters: spent plus promised under the limit. The row
        // lock (FOR UPDATE) makes concurrent reservations on every node take turns.
        """
        CREATE FUNCTION switchboard_quota_reserve(p_counter TEXT, p_seconds BIGINT, p_limit BIGINT, p_amount BIGINT)
        RETURNS TABLE (r_admitted BOOLEAN, r_window_start BIGINT, r_consumed BIGINT, r_reserved BIGINT,
            r_reset_in FLOAT8)
        LANGUAGE plpgsql SET synchronous_commit TO off AS $$
        DECLARE
            v_now FLOAT8 := extract(epoch FROM clock_timestamp());
            v_start BIGINT := floor(v_now / p_seconds)::BIGINT * p_seconds;
            v_consumed BIGINT;
            v_reserved BIGINT;
        BEGIN
            SELECT w.consumed, w.reserved INTO v_consumed, v_reserved FROM switchboard_quota_windows w
            WHERE w.counter = p_counter AND w.window_start = v_start FOR UPDATE;
            IF NOT FOUND THEN
                INSERT INTO switchboard_quota_windows (counter, window_start, expires_at)
                VALUES (p_counter, v_start, v_start + p_seconds) ON CONFLICT DO NOTHING;
                SELECT w.consumed, w.reserved INTO v_consumed, v_reserved FROM switchboard_quota_windows w
                WHERE w.counter = p_counter AND w.window_start = v_start FOR UPDATE;
            END IF;
            r_admitted := v_consumed + v_reserved < p_limit;
            IF r_admitted THEN
                UPDATE switchboard_quota_windows w SET reserved = least(w.reserved + p_amount, 4611686018427387903)
                WHERE w.counter = p_counter AND w.window_start = v_start;
            END IF;
            r_window_start := v_start;
            r_consumed := v_consumed;
            r_reserved := v_reserved;
            r_reset_in := v_start + p_seconds - v_now;
            RETURN NEXT;
        END $$
        """,
        // The settlement function came here; migration 5 replaced it (a database at version 4
        // has it, and migration 5 drops it).
        "CREATE INDEX switchboard_quota_windows_expiry ON switchboard_quota_windows (expires_at)",
    ]

    /// Migration 5: settlements, releases and batches, applied by one function. The caller sorts
    /// by counter, so that two batches lock rows in the same order and cannot deadlock. Batches
    /// are idempotent: a batch whose answer was lost (a timeout while the database in fact
    /// committed it) is sent again under the same id and applied only once, where a retry used to
    /// count twice.
    static let batchMigration: [PostgresQuery] = [
        "CREATE TABLE switchboard_quota_batches (id TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
        "DROP FUNCTION IF EXISTS switchboard_quota_apply(TEXT[], BIGINT[], BIGINT[], BIGINT[])",
        """
        CREATE FUNCTION switchboard_quota_apply(p_batch TEXT, p_counters TEXT[], p_starts BIGINT[],
            p_reserved BIGINT[], p_consumed BIGINT[])
        RETURNS TABLE (r_counter TEXT, r_window_start BIGINT, r_consumed BIGINT, r_reserved BIGINT,
            r_reset_in FLOAT8)
        LANGUAGE plpgsql SET synchronous_commit TO off AS $$
        DECLARE
            v_now FLOAT8 := extract(epoch FROM clock_timestamp());
            v_seconds BIGINT;
            v_current BIGINT;
        BEGIN
            INSERT INTO switchboard_quota_batches (id, expires_at) VALUES (p_batch, v_now::BIGINT + 3600)
            ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                RETURN;  -- applied before: its first answer was lost
            END IF;
            FOR i IN 1 .. coalesce(array_length(p_counters, 1), 0) LOOP
                SELECT w.expires_at - w.window_start INTO v_seconds FROM switchboard_quota_windows w
                WHERE w.counter = p_counters[i] AND w.window_start = p_starts[i];
                CONTINUE WHEN v_seconds IS NULL OR v_seconds <= 0;
                v_current := floor(v_now / v_seconds)::BIGINT * v_seconds;
                IF v_current = p_starts[i] THEN
                    UPDATE switchboard_quota_windows w
                    SET reserved = greatest(0, least(w.reserved + p_reserved[i], 4611686018427387903)),
                        consumed = greatest(0, least(w.consumed + p_consumed[i], 4611686018427387903))
                    WHERE w.counter = p_counters[i] AND w.window_start = v_current
                    RETURNING w.consumed, w.reserved INTO r_consumed, r_reserved;
                ELSE
                    INSERT INTO switchboard_quota_windows AS w (counter, window_start, expires_at, consumed)
                    VALUES (p_counters[i], v_current, v_current + v_seconds, greatest(0, p_consumed[i]))
                    ON CONFLICT (counter, window_start) DO UPDATE
                    SET consumed = least(w.consumed + excluded.consumed, 4611686018427387903)
                    RETURNING w.consumed, w.reserved INTO r_consumed, r_reserved;
                END IF;
                r_counter := p_counters[i];
                r_window_start := v_current;
                r_reset_in := v_current + v_seconds - v_now;
                RETURN NEXT;
            END LOOP;
        END $$
        """,
        "CREATE INDEX switchboard_quota_batches_expiry ON switchboard_quota_batches (expires_at)",
    ]

    public func reserve(_ key: String, window: QuotaWindow, estimate: Int) async throws -> (
        admitted: Bool, window: SharedQuotaWindow
    ) {
        let seconds = Int64(max(1, window.seconds))
        let limit = Int64(window.limit)
        let amount = Int64(Saturating.count(estimate))
        return try await Self.bounded {
            let rows = try await self.client.query(
                "SELECT * FROM switchboard_quota_reserve(\(key), \(seconds), \(limit), \(amount))",
                logger: self.logger)
            for try await (admitted, start, consumed, reserved, resetIn) in rows.decode(
                (Bool, Int64, Int64, Int64, Double).self)
            {
                return (
                    admitted,
                    SharedQuotaWindow(
                        key: key, windowStart: start, consumed: Int(consumed), reserved: Int(reserved),
                        resetIn: resetIn)
                )
            }
            throw StoreError("switchboard_quota_reserve returned no row")
        }
    }

    public func apply(_ deltas: [QuotaDelta], batch: String) async throws -> [SharedQuotaWindow] {
        guard !deltas.isEmpty else { return [] }
        let sorted = deltas.sorted { ($0.key, $0.windowStart) < ($1.key, $1.windowStart) }
        let keys = sorted.map(\.key)
        let starts = sorted.map(\.windowStart)
        let reserved = sorted.map { Int64(clamping: $0.reserved) }
        let consumed = sorted.map { Int64(clamping: $0.consumed) }
        return try await Self.bounded(Self.quotaTimeout) {
            try await self.windows(
                "SELECT * FROM switchboard_quota_apply(\(batch), \(keys), \(starts), \(reserved), \(consumed))")
        }
    }

    public func peek(_ counters: [(key: String, seconds: Int)]) async throws -> [SharedQuotaWindow] {
        guard !counters.isEmpty else { return [] }
        let keys = counters.map(\.key)
        let seconds = counters.map { Int64(max(1, $0.seconds)) }
        return try await Self.bounded(Self.quotaTimeout) {
            try await self.windows(
                """
                SELECT k.counter, k.start, coalesce(w.consumed, 0), coalesce(w.reserved, 0),
                    k.start + k.seconds - k.now
                FROM (
                    SELECT u.counter, u.seconds, t.now, floor(t.now / u.seconds)::BIGINT * u.seconds AS start
                    FROM unnest(\(keys)::TEXT[], \(seconds)::BIGINT[]) AS u(counter, seconds),
                        (SELECT extract(epoch FROM clock_timestamp())::FLOAT8 AS now) AS t
                ) AS k
                LEFT JOIN switchboard_quota_windows w ON w.counter = k.counter AND w.window_start = k.start
                """)
        }
    }

    public func removeExpiredWindows() async throws {
        _ = try await Self.bounded {
            try await self.client.query(
                "DELETE FROM switchboard_quota_windows WHERE expires_at < extract(epoch FROM now()) - 60",
                logger: self.logger)
            try await self.client.query(
                "DELETE FROM switchboard_quota_batches WHERE expires_at < extract(epoch FROM now())",
                logger: self.logger)
        }
    }

    public func describe(_ error: any Error) -> String { Self.describe(error) }

    /// Rows of (counter, window start, consumed, reserved, seconds left).
    private func windows(_ query: PostgresQuery) async throws -> [SharedQuotaWindow] {
        var found: [SharedQuotaWindow] = []
        let rows = try await client.query(query, logger: logger)
        for try await (key, start, consumed, reserved, resetIn) in rows.decode(
            (String, Int64, Int64, Int64, Double).self)
        {
            found.append(
                SharedQuotaWindow(
                    key: key, windowStart: start, consumed: Int(consumed), reserved: Int(reserved), resetIn: resetIn))
        }
        return found
    }
}
