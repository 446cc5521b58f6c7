import Testing

@testable import SwitchboardCore

@Suite struct SupportTests {
    @Test func asciiComparisonsIgnoreCaseOnly() {
        #expect(ASCII.equals("Retry-After", "retry-after") && !ASCII.equals("Retry-After-Ms", "retry-after"))
        #expect(
            ASCII.hasPrefix("X-RateLimit-Remaining-Tokens", "x-ratelimit-")
                && !ASCII.hasPrefix("X-Rate", "x-ratelimit-"))
        #expect(ASCII.hasPrefix("application/json", "application/json"))
        #expect(ASCII.contains("Text/Event-Stream; charset=utf-8", "text/event-stream"))
        #expect(ASCII.contains("application/vnd.api+JSON", "json") && !ASCII.contains("text/plain", "json"))
        #expect(ASCII.contains("a;b", ";") && ASCII.equals("X", "x") && ASCII.hasPrefix("Ab", "a"))
    }

    @Test func randomHexHasTheLengthAndAlphabetAndDiffers() {
        let ids = (0..<100).map { _ in Randomness.hex(bytes: 16) }
        #expect(ids.allSatisfy { $0.utf8.count == 32 && $0.utf8.allSatisfy { "0123456789abcdef".utf8.contains($0) } })
        #expect(Set(ids).count == 100)
        #expect(Randomness.hex(bytes: 3).utf8.count == 6)
    }
}
