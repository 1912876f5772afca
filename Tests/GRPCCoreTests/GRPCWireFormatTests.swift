import Testing

@testable import GRPCCore

@Suite struct GRPCTimeoutTests {
    @Test(arguments: [
        ("1H", Int64(3_600_000_000_000)), ("2M", 120_000_000_000), ("3S", 3_000_000_000), ("100m", 100_000_000),
        ("250u", 250_000), ("999n", 999), ("0m", 0), ("99999999S", 99_999_999_000_000_000),
    ])
    func parsesEveryUnit(value: String, nanos: Int64) {
        #expect(GRPCTimeout.parseNanoseconds(Array(value.utf8)) == nanos)
    }

    @Test(arguments: ["", "S", "10", "10s", "123456789S", "-1S", "1.5S", " 1S", "1 S", "abcm"])
    func rejectsMalformedValues(value: String) {
        #expect(GRPCTimeout.parseNanoseconds(Array(value.utf8)) == nil)
    }

    @Test func saturatesInsteadOfOverflowing() {
        #expect(GRPCTimeout.parseNanoseconds(Array("99999999H".utf8)) == Int64.max)
    }

    @Test func formatRoundTripsWithoutShorteningTheDeadline() {
        for nanos: Int64 in [1, 999, 1_000, 1_500, 100_000_000, 99_999_999_999, 3_600_000_000_123] {
            let parsed = GRPCTimeout.parseNanoseconds(Array(GRPCTimeout.format(nanoseconds: nanos).utf8))
            #expect(parsed != nil && parsed! >= nanos)
        }
    }
}

@Suite struct GRPCPercentEncodingTests {
    @Test func leavesPrintableAsciiAlone() {
        let text = "field k: must be 1...1000, got 0"
        #expect(GRPCPercentEncoding.encode(text) == Array(text.utf8))
    }

    @Test func escapesPercentNewlineAndNonAscii() {
        #expect(String(decoding: GRPCPercentEncoding.encode("100%\nü"), as: UTF8.self) == "100%25%0A%C3%BC")
    }

    @Test func decodeInvertsEncode() {
        for text in ["", "plain", "50% off", "naïve — ✓", "line\r\nbreak", "%zz stays"] {
            #expect(GRPCPercentEncoding.decode(GRPCPercentEncoding.encode(text)) == text)
        }
    }

    @Test func decodeKeepsMalformedEscapesLiterally() {
        #expect(GRPCPercentEncoding.decode(Array("%4".utf8)) == "%4")
        #expect(GRPCPercentEncoding.decode(Array("%G1x".utf8)) == "%G1x")
    }
}

@Suite struct GRPCStatusTests {
    @Test func codesHaveTheirWireValues() {
        #expect(GRPCStatus.Code.ok.rawValue == 0)
        #expect(GRPCStatus.Code.invalidArgument.rawValue == 3)
        #expect(GRPCStatus.Code.resourceExhausted.rawValue == 8)
        #expect(GRPCStatus.Code.unimplemented.rawValue == 12)
        #expect(GRPCStatus.Code.unauthenticated.rawValue == 16)
        #expect(GRPCStatus.Code.allCases.count == 17)
    }

    @Test func descriptionNamesCodeAndMessage() {
        #expect(GRPCStatus(.notFound, "snapshot v9").description == "NOT_FOUND: snapshot v9")
        #expect(GRPCStatus.ok.description == "OK")
    }

    @Test func okTrailersAreTheSharedConstantBlock() {
        #expect(HeaderBlock.trailers(for: .ok) === HeaderBlock.okTrailers)
        #expect(HeaderBlock.trailers(for: GRPCStatus(.internal, "x")).count == 2)
        #expect(HeaderBlock.trailersOnly(for: GRPCStatus(.unimplemented, "x")).count == 5)
    }
}
