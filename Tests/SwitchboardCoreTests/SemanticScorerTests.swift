import Testing

@testable import SwitchboardCore

@Suite struct SemanticScorerTests {
    @Test func anInstanceScoresItsBestExampleAndTheBestInstanceAboveItsThresholdWins() throws {
        let examples: [[[Double]]] = [
            [[1, 0, 0], [0, 1, 0]].map(SemanticScorer.normalized),  // code: two phrasings
            [[0, 0, 1]].map(SemanticScorer.normalized),  // chat
        ]
        let ranked = try #require(SemanticScorer.rank(query: [0, 3, 0], examples: examples))
        #expect(ranked.map(\.index) == [0, 1])
        #expect(ranked[0].score == 1)  // its second example matches exactly; no averaging
        #expect(SemanticScorer.choose(ranked) { _ in 0.5 } == 0)
        #expect(SemanticScorer.choose(ranked) { $0 == 0 ? 1.5 : -1 } == 1)  // per-instance thresholds
        #expect(SemanticScorer.choose(ranked) { _ in 1.01 } == nil)  // nobody: the fallback
        #expect(SemanticScorer.header(ranked, names: ["code", "chat"]) == "code:1.0000,chat:0.0000")
    }

    @Test func mismatchedDimensionsAndZeroVectorsNeverMislead() {
        #expect(SemanticScorer.rank(query: [1, 0], examples: [[[1, 0, 0]]]) == nil)
        #expect(SemanticScorer.normalized([0, 0]) == [0, 0])
        #expect(SemanticScorer.normalized([.infinity, 1]) == [0, 0])
        // Equal scores keep the configuration's order.
        let tie = SemanticScorer.rank(query: [1, 1], examples: [[[0, 1]], [[1, 0]]])
        #expect(tie?.map(\.index) == [0, 1])
    }

    @Test func scoresAreWrittenWithFourDecimals() {
        #expect(SemanticScorer.fixed4(0.91234) == "0.9123")
        #expect(SemanticScorer.fixed4(-0.05) == "-0.0500")
        #expect(SemanticScorer.fixed4(1) == "1.0000")
        #expect(SemanticScorer.fixed4(-0.00001) == "0.0000")
        #expect(SemanticScorer.fixed4(.nan) == "0.0000")
    }

    @Test func theRequestIsRoutedByItsLastUserMessage() throws {
        let chat = try JSONParser.parse(
            #"{"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"text","text":"write python"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#
        )
        #expect(SemanticScorer.routingText(chat) == "write python")
        #expect(SemanticScorer.routingText(try JSONParser.parse(#"{"input":"embed me"}"#)) == "embed me")
        #expect(
            SemanticScorer.routingText(try JSONParser.parse(#"{"messages":[{"role":"system","content":"x"}]}"#)) == nil)
    }
}
