import Testing

@testable import SwitchboardCore

@Suite struct WeightedRoundRobinTests {
    func picks(_ weights: [Int], _ count: Int, start: Int = 0) -> [Int] {
        var rr = WeightedRoundRobin(weights: weights, start: start)
        var counts = [Int](repeating: 0, count: weights.count)
        for _ in 0..<count { counts[rr.next()!] += 1 }
        return counts
    }

    @Test(arguments: 0..<2)
    func eightToTwoOverTenRequests(start: Int) {
        #expect(picks([8, 2], 10, start: start) == [8, 2])
        #expect(picks([4, 1], 10, start: start) == [8, 2])
    }

    @Test func zeroWeightsRotateAndZeroAmongPositiveIsNeverPicked() {
        #expect(picks([0, 0, 0], 9) == [3, 3, 3])
        #expect(picks([0, 3, 1], 8) == [0, 6, 2])
    }

    @Test func exactProportionsOverAnyFullCycle() {
        var rr = WeightedRoundRobin(weights: [5, 3, 2], start: 1)
        var sequence: [Int] = []
        for _ in 0..<30 { sequence.append(rr.next()!) }
        for offset in 0..<20 {
            let window = sequence[offset..<(offset + 10)]
            #expect(window.filter { $0 == 0 }.count == 5)
            #expect(window.filter { $0 == 2 }.count == 2)
        }
    }

    @Test func emptyHasNoPick() {
        var rr = WeightedRoundRobin(weights: [])
        #expect(rr.next() == nil)
    }
}

@Suite struct IDGeneratorTests {
    @Test func twentyDigitsIncreasing() {
        var ids = IDGenerator()
        let first = ids.next()
        let second = ids.next()
        #expect(first == "00000000000000000001")
        #expect(second == "00000000000000000002")
        #expect(first.count == 20 && first < second)
        #expect(ids.next(atLeast: 25) == "00000000000000000025")
        #expect(ids.next() == "00000000000000000026")
    }
}
