import GRPCCore
import Testing

@testable import GRPCServer

@Suite struct GRPCRouterTests {
    @Test func findsRegisteredPathsByBytes() {
        var router = GRPCRouter()
        router.register(service: "a.B", method: "C", .unary { _, _ in .failure(.ok) })
        router.register(service: "a.B", method: "D", .unary { _, _ in .failure(.ok) })
        #expect(Array("/a.B/C".utf8).withUnsafeBytes { router.handler(forPath: $0) } != nil)
        #expect(Array("/a.B/E".utf8).withUnsafeBytes { router.handler(forPath: $0) } == nil)
        #expect(router.serviceNames == ["a.B"])
    }
}
