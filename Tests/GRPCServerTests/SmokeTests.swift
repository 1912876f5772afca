import Testing
@testable import GRPCServer

@Test func moduleLinks() {
    #expect(String(describing: GRPCServerModule.self) == "GRPCServerModule")
}
