import Testing
@testable import MappedStorage

@Test func moduleLinks() {
    #expect(String(describing: MappedStorageModule.self) == "MappedStorageModule")
}
