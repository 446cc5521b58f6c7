/// Picks an AI instance: instances grouped by `priority` (highest first), weighted round robin
/// inside a group, and a lower group only once every instance of the higher groups has been
/// tried or is unavailable in this request (APISIX's priority balancer). A value type, kept
/// behind a lock by its owner for the life of the configuration.
public struct PriorityPicker: Sendable {
    /// Instance indices per group, highest priority first.
    public let groups: [[Int]]
    private var balancers: [WeightedRoundRobin]
    private let cycles: [Int]

    public init(priorities: [Int], weights: [Int], start: Int = 0) {
        let levels = Set(priorities).sorted(by: >)
        groups = levels.map { level in priorities.indices.filter { priorities[$0] == level } }
        balancers = groups.map { group in WeightedRoundRobin(weights: group.map { weights[$0] }, start: start) }
        cycles = groups.map { group in
            let w = group.map { weights[$0] }
            let positive = w.filter { $0 > 0 }
            guard !positive.isEmpty else { return group.count }
            let g = positive.reduce(0) { Self.gcd($0, $1) }
            return positive.reduce(0, +) / g
        }
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    /// The next instance not in `excluded` for which `available` holds, or `nil`.
    public mutating func pick(excluding excluded: Set<Int>, available: (Int) -> Bool = { _ in true }) -> Int? {
        for g in groups.indices {
            for _ in 0..<cycles[g] {
                guard let local = balancers[g].next() else { break }
                let index = groups[g][local]
                if !excluded.contains(index) && available(index) { return index }
            }
        }
        return nil
    }
}

/// Consistent hashing over instances (APISIX `chash`): 160 points per weight unit on a CRC32
/// ring; a retry walks the ring to the next instance not tried yet.
public struct HashRing: Sendable {
    private let points: [(hash: UInt32, index: Int)]
    public let count: Int

    public init(names: [String], weights: [Int]) {
        count = names.count
        let positive = weights.filter { $0 > 0 }
        let g = positive.reduce(0) { a, b in
            var x = a, y = b; while y != 0 { (x, y) = (y, x % y) }; return x
        }
        var points: [(UInt32, Int)] = []
        for (index, name) in names.enumerated() {
            let units = g > 0 ? max(weights[index], 0) / g : 1
            for v in 0..<(units * 160) {
                points.append((CRC32.checksum(Array("\(name)#\(v)".utf8)), index))
            }
        }
        self.points = points.sorted { $0.0 < $1.0 }
    }

    /// Instance indices in ring order from the key's position, each once.
    public func walk(_ key: String) -> [Int] {
        guard !points.isEmpty else { return [] }
        let hash = CRC32.checksum(Array(key.utf8))
        var low = 0
        var high = points.count
        while low < high {
            let mid = (low + high) / 2
            if points[mid].hash < hash { low = mid + 1 } else { high = mid }
        }
        var order: [Int] = []
        var seen = Set<Int>()
        var i = low
        while order.count < count && seen.count < count {
            let index = points[i % points.count].index
            if seen.insert(index).inserted { order.append(index) }
            i += 1
            if i - low > points.count { break }
        }
        return order
    }
}

/// CRC-32 (IEEE), as nginx and resty.chash use, and AWS's event stream framing.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
