import Testing
@testable import VectorIndex

@Test func moduleLinks() {
    #expect(String(describing: VectorIndexModule.self) == "VectorIndexModule")
}
