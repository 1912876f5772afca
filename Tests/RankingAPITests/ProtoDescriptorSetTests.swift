import Testing

@testable import RankingAPI

@Suite struct ProtoDescriptorSetTests {
    @Test func everyProtoFileIsDescribedWithItsServicesAndSymbols() throws {
        let files = Dictionary(uniqueKeysWithValues: ProtoDescriptorSet.files.map { ($0.name, $0) })
        let ranker = try #require(files["ranking/v1/ranker.proto"])
        #expect(ranker.package == "ranking.v1")
        #expect(ranker.services == ["ranking.v1.Ranker"])
        #expect(
            ranker.symbols.isSuperset(of: ["ranking.v1.Ranker", "ranking.v1.Ranker.Rank", "ranking.v1.RankRequest"]))
        #expect(ranker.messages.contains("ranking.v1.RankResponse"))
        #expect(files["grpc/health/v1/health.proto"]?.services == ["grpc.health.v1.Health"])
        #expect(files["grpc/reflection/v1/reflection.proto"]?.services == ["grpc.reflection.v1.ServerReflection"])
        #expect(
            files["grpc/reflection/v1alpha/reflection.proto"]?.services == ["grpc.reflection.v1alpha.ServerReflection"])
    }

    @Test func nestedTypesEnumValuesAndFieldsAreScopedAsProtobufScopesThem() throws {
        // message Outer { message Inner { int32 x = 1; } enum Kind { KIND_A = 0; } } in package p,
        // serialized by hand: FileDescriptorProto{name=1, package=2, message_type=4}.
        let inner = field(1, "Inner") + bytesField(2, field(1, "x"))
        let kind = field(1, "Kind") + bytesField(2, field(1, "KIND_A"))
        let outer = field(1, "Outer") + bytesField(3, inner) + bytesField(4, kind)
        let file = field(1, "p/o.proto") + field(2, "p") + bytesField(4, outer)
        let parsed = try ProtoDescriptorSet.parse(set: bytesField(1, file))
        #expect(parsed.count == 1)
        #expect(parsed[0].symbols == ["p.Outer", "p.Outer.Inner", "p.Outer.Inner.x", "p.Outer.Kind", "p.Outer.KIND_A"])
        #expect(parsed[0].bytes == file)
    }

    @Test func truncatedBytesAreAnErrorNotACrash() {
        let file = field(1, "p/o.proto") + field(2, "p")
        let set = bytesField(1, file)
        for length in 1..<set.count {
            #expect(throws: ProtoWireError.self) { try ProtoDescriptorSet.parse(set: Array(set.prefix(length))) }
        }
    }

    private func field(_ number: UInt8, _ text: String) -> [UInt8] { bytesField(number, Array(text.utf8)) }

    private func bytesField(_ number: UInt8, _ body: [UInt8]) -> [UInt8] {
        precondition(body.count < 128)
        return [number << 3 | 2, UInt8(body.count)] + body
    }
}
