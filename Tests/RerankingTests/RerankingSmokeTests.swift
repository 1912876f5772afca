import Testing
@testable import Reranking

@Test func moduleLinks() {
    #expect(String(describing: RerankingModule.self) == "RerankingModule")
}
