import Testing
@testable import Snapshot

@Test func moduleLinks() {
    #expect(String(describing: SnapshotModule.self) == "SnapshotModule")
}
