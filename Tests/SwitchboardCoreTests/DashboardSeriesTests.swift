import Testing

@testable import SwitchboardCore

/// The dashboard's fixed-memory series and ring.
@Suite struct DashboardSeriesTests {
    @Test func histogramQuantilesAreBinUpperBounds() {
        var h = LatencyHistogram()
        #expect(h.quantile(0.5) == nil)
        for ms in [0.5, 3, 3, 3, 3, 3, 3, 3, 3, 900] { h.record(milliseconds: ms) }
        #expect(h.total == 10)
        // 3 ms falls in [2.83, 4): its bin's upper bound is 4.
        #expect(h.quantile(0.5) == 4)
        #expect(h.quantile(0.95).map { $0 >= 900 && $0 < 900 * 1.42 } == true)
        var merged = LatencyHistogram()
        merged.add(h)
        merged.add(h)
        #expect(merged.total == 20 && merged.quantile(0.5) == 4)
        var extreme = LatencyHistogram()
        extreme.record(milliseconds: .infinity)
        extreme.record(milliseconds: -5)
        extreme.record(milliseconds: 1e12)
        #expect(extreme.total == 3)
    }

    static func sample(failed: Bool = false, errorClass: String? = nil, prompt: Int = 10) -> SeriesSample {
        SeriesSample(
            failed: failed, errorClass: errorClass, promptTokens: prompt, completionTokens: 5, ttftMs: 100,
            durationMs: 200)
    }

    /// A ring slot written for an older span is reset before use; spans without traffic read
    /// as empty buckets; the ring never grows.
    @Test func bucketRingsKeepOnlyTheirWindow() {
        var ring = BucketRing(span: 60, capacity: 3)
        ring.add(Self.sample(), at: 0)
        ring.add(Self.sample(failed: true, errorClass: "server"), at: 30)
        ring.add(Self.sample(failed: true, errorClass: "nonsense"), at: 130)
        var read = ring.buckets(from: 0, to: 179)
        #expect(read.map(\.start) == [0, 60, 120])
        #expect(read.map { Int($0.bucket.requests) } == [2, 0, 1])
        #expect(read[0].bucket.errors == 1)
        let server = SeriesBucket.errorClasses.firstIndex(of: "server") ?? -1
        let other = SeriesBucket.errorClasses.firstIndex(of: "other") ?? -1
        #expect(read[0].bucket.errorsByClass[server] == 1)
        #expect(read[2].bucket.errorsByClass[other] == 1, "an unknown class counts as other")
        // Three spans later the slot of minute 0 holds minute 3.
        ring.add(Self.sample(), at: 185)
        read = ring.buckets(from: 0, to: 240)
        #expect(read.map(\.start) == [120, 180, 240], "at most capacity buckets")
        #expect(read.map { Int($0.bucket.requests) } == [1, 1, 0])
    }

    @Test func countersSaturateInsteadOfTrapping() {
        var bucket = SeriesBucket()
        bucket.promptTokens = .max - 1
        bucket.add(Self.sample(prompt: Int.max))
        #expect(bucket.promptTokens == .max)
        bucket.add(Self.sample(prompt: -5))
        #expect(bucket.requests == 2)
    }

    @Test func ringBufferKeepsTheNewest() {
        var ring = RingBuffer<Int>(capacity: 3)
        #expect(ring.newestFirst.isEmpty)
        for i in 1...2 { ring.append(i) }
        #expect(ring.newestFirst == [2, 1])
        for i in 3...7 { ring.append(i) }
        #expect(ring.newestFirst == [7, 6, 5] && ring.count == 3)
        #expect(ring.newest(limit: 2) { _ in true } == [7, 6])
        #expect(ring.newest(limit: 5) { $0 % 2 == 1 } == [7, 5])
        var partial = RingBuffer<Int>(capacity: 4)
        for i in 1...3 { partial.append(i) }
        #expect(partial.newest(limit: 10) { _ in true } == [3, 2, 1])
    }
}
