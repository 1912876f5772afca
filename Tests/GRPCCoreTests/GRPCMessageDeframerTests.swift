import NIOCore
import TestSupport
import Testing

@testable import GRPCCore

/// Frames `messages` the way a client would send them.
private func framed(_ messages: [[UInt8]]) -> [UInt8] {
    var buffer = ByteBuffer()
    for message in messages {
        GRPCMessageFramer.write(ByteBuffer(bytes: message), into: &buffer)
    }
    return Array(buffer.readableBytesView)
}

/// Feeds `bytes` to a deframer in the given chunk sizes and collects every message.
private func deframe(_ bytes: [UInt8], chunks: [Int], maxMessageSize: Int = 1 << 20) throws -> [[UInt8]] {
    var deframer = GRPCMessageDeframer(maxMessageSize: maxMessageSize)
    var messages: [[UInt8]] = []
    var offset = 0
    var chunkIndex = 0
    while offset < bytes.count {
        let size = min(chunks[chunkIndex % chunks.count], bytes.count - offset)
        chunkIndex += 1
        bytes[offset..<offset + size].withUnsafeBytes { deframer.append($0) }
        offset += size
        while let message = try deframer.next() {
            messages.append(Array(message.readableBytesView))
        }
    }
    #expect(!deframer.hasPartialMessage)
    return messages
}

@Suite struct GRPCMessageDeframerTests {
    let sample: [[UInt8]] = [[], Array("hello".utf8), Array(repeating: 7, count: 70_000), [0, 1, 2]]

    @Test func deliversMessagesFedOneByteAtATime() throws {
        #expect(try deframe(framed(sample), chunks: [1]) == sample)
    }

    @Test func deliversMessagesWithPrefixSplitAcrossChunks() throws {
        for split in 1...9 {
            #expect(try deframe(framed(sample), chunks: [split]) == sample)
        }
    }

    @Test func deliversMessagesAtRandomSplits() throws {
        var generator = SeededGenerator(seed: 7)
        let bytes = framed(sample)
        for _ in 0..<50 {
            let chunks = (0..<16).map { _ in Int.random(in: 1...20_000, using: &generator) }
            #expect(try deframe(bytes, chunks: chunks) == sample)
        }
    }

    @Test func deliversManyMessagesFromOneChunk() throws {
        let many = (0..<1000).map { [UInt8(truncatingIfNeeded: $0)] }
        let bytes = framed(many)
        #expect(try deframe(bytes, chunks: [bytes.count]) == many)
    }

    @Test func zeroLengthMessageIsAMessage() throws {
        #expect(try deframe(framed([[]]), chunks: [5]) == [[]])
    }

    @Test func rejectsOversizedMessageFromItsPrefixAlone() {
        var deframer = GRPCMessageDeframer(maxMessageSize: 100)
        ([0, 0, 0, 0, 101] as [UInt8]).withUnsafeBytes { deframer.append($0) }
        #expect(throws: GRPCStatus.self) { try deframer.next() }
        do {
            _ = try deframer.next()
        } catch {
            #expect(error.code == .resourceExhausted)
            #expect(error.message.contains("101") && error.message.contains("100"))
        }
    }

    @Test func acceptsMessageOfExactlyTheLimit() throws {
        #expect(try deframe(framed([Array(repeating: 1, count: 100)]), chunks: [3], maxMessageSize: 100).count == 1)
    }

    @Test func rejectsCompressedFlagAsUnimplemented() {
        var deframer = GRPCMessageDeframer(maxMessageSize: 100)
        ([1, 0, 0, 0, 1, 42] as [UInt8]).withUnsafeBytes { deframer.append($0) }
        do {
            _ = try deframer.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .unimplemented)
        }
    }

    @Test func rejectsUnknownFlagAsInvalidArgument() {
        var deframer = GRPCMessageDeframer(maxMessageSize: 100)
        ([2, 0, 0, 0, 0] as [UInt8]).withUnsafeBytes { deframer.append($0) }
        do {
            _ = try deframer.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidArgument)
        }
    }

    @Test func reportsPartialMessageAtEndOfStream() throws {
        var deframer = GRPCMessageDeframer(maxMessageSize: 100)
        ([0, 0, 0, 0, 10, 1, 2] as [UInt8]).withUnsafeBytes { deframer.append($0) }
        #expect(try deframer.next() == nil)
        #expect(deframer.hasPartialMessage)
        #expect(deframer.partialMessageDescription.contains("2 of 10"))
    }
}
