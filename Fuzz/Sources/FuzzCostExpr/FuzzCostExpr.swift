import FuzzSupport
import SwitchboardCore

/// `cost_expr` of ai-rate-limiting: ``CostExpression`` parsed and evaluated over arbitrary token
/// counts.
///
/// Input: the expression text (e.g. `prompt_tokens + completion_tokens * 4`), optionally
/// followed by a NUL byte and up to 24 bytes that give three usage numbers (each 8 bytes; by
/// their low bit an integer, or a Double's bit pattern). Checks that parsing and evaluating never
/// trap; that ``CostExpression/cost(_:)`` of a provider's usage object (integers and finite
/// numbers, as JSON carries them) is always within `0...Saturating.ceiling`, also when the
/// variables are infinite or NaN; and that evaluation is deterministic.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCostExpr(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = inputBytes(start, count)
    let split = input.firstIndex(of: 0) ?? input.endIndex
    // The expression reaches the gateway as a JSON string: valid UTF-8.
    let text = String(decoding: input[..<split], as: UTF8.self)
    var numbers = Array(input[split...].dropFirst())
    numbers += [UInt8](repeating: 0, count: max(0, 24 - numbers.count))
    let raw = (0..<3).map { i in
        numbers[i * 8..<i * 8 + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    guard let expression = try? CostExpression(text) else { return 0 }

    let values = raw.map { bits -> JSONValue in
        if bits & 1 == 0 { return .int(Int(truncatingIfNeeded: bits)) }
        let double = Double(bitPattern: bits)
        return double.isFinite ? .double(double) : .int(Int(truncatingIfNeeded: bits >> 1))
    }
    let usage: JSONValue = [
        "prompt_tokens": values[0], "completion_tokens": values[1], "total_tokens": values[2],
        "input_tokens": values[0], "output_tokens": values[1], "cache_read_input_tokens": values[2],
        "prompt_tokens_details": ["cached_tokens": values[2]],
    ]
    let cost = expression.cost(usage)
    check((0...Saturating.ceiling).contains(cost), "cost \(cost) out of range for \(text) over \(usage)")
    check(expression.cost(usage) == cost, "cost is not deterministic: \(text)")
    if let parsed = TokenUsage(usage) {
        check(expression.cost(parsed.raw) == cost, "cost of TokenUsage.raw differs: \(text)")
    }

    // Whatever a variable holds (infinities and NaN included), the cost stays a count.
    let doubles = raw.map { Double(bitPattern: $0) } + [.infinity, -.infinity, .nan]
    for (i, value) in doubles.enumerated() {
        let result = expression.evaluate { name in name.utf8.count % 2 == 0 ? value : doubles[(i + 1) % doubles.count] }
        check((0...Saturating.ceiling).contains(Saturating.int(result)), "Saturating.int(\(result)) out of range")
    }
    return 0
}

@main
enum Entry {
    static func main() { runLibFuzzer(fuzzCostExpr) }
}
