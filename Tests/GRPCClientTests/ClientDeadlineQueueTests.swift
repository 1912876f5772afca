import NIOCore
import Testing

@testable import GRPCClient

/// One timer per connection: the queue must hand out deadlines earliest first and drop completed calls at its
/// front without searching for them.
@Suite struct ClientDeadlineQueueTests {
    private func stream(_ key: UInt64) -> ClientStream {
        ClientStream(key: key, sink: .callback { _ in }, allocator: ByteBufferAllocator())
    }

    @Test func popsDeadlinesEarliestFirstWhateverTheInsertionOrder() {
        var queue = ClientDeadlineQueue()
        let offsets: [Int64] = [50, 10, 40, 30, 20, 60, 0, 70, 35, 15]
        for (index, offset) in offsets.enumerated() {
            queue.insert(.uptimeNanoseconds(UInt64(1_000 + offset)), stream(UInt64(index)))
        }
        var popped: [UInt64] = []
        while let first = queue.first {
            popped.append(first.deadline.uptimeNanoseconds)
            queue.removeFirst()
        }
        #expect(popped == offsets.sorted().map { UInt64(1_000 + $0) })
    }

    @Test func completedCallsLeaveOnlyFromTheFront() {
        var queue = ClientDeadlineQueue()
        let streams = (0..<4).map { stream(UInt64($0)) }
        for (index, stream) in streams.enumerated() { queue.insert(.uptimeNanoseconds(UInt64(100 + index)), stream) }
        streams[0].completed = true
        streams[2].completed = true
        queue.dropCompletedFront()
        // The first was completed and left; the third is completed but not at the front, so it stays for now.
        #expect(queue.count == 3)
        #expect(queue.first?.stream === streams[1])
        queue.removeFirst()
        queue.dropCompletedFront()
        #expect(queue.first?.stream === streams[3])
        queue.removeAll()
        #expect(queue.count == 0 && queue.first == nil)
    }
}
