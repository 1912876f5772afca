/// A manually managed, growable buffer of trivial values: the only raw memory in the module.
///
/// Owned by `Reranker`, which frees it in `deinit`; never copied out of it. `prepare(count:)`
/// grows (discarding contents) only when a request needs more than any earlier one, so a steady
/// state reuses the same memory and does not allocate. Element types must be trivial
/// (integers, floats, plain enums and structs of them).
struct ScratchBuffer<Element> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var capacity: Int
    private let filler: Element

    init(filler: Element, capacity: Int = 0) {
        self.filler = filler
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
        base.initialize(repeating: filler, count: self.capacity)
    }

    /// Ensures room for `count` elements and sets the first `count` to `value`.
    mutating func prepare(count: Int, value: Element) {
        reserve(count)
        base.update(repeating: value, count: count)
    }

    /// Ensures room for `count` elements; contents are unspecified (but initialised) after growth.
    mutating func reserve(_ count: Int) {
        guard count > capacity else { return }
        let newCapacity = max(count, capacity * 2)
        base.deinitialize(count: capacity)
        base.deallocate()
        base = .allocate(capacity: newCapacity)
        base.initialize(repeating: filler, count: newCapacity)
        capacity = newCapacity
    }

    func free() {
        base.deinitialize(count: capacity)
        base.deallocate()
    }

    @inline(__always)
    subscript(index: Int) -> Element {
        get { base[index] }
        nonmutating set { base[index] = newValue }
    }
}

/// In-place ascending heap sort (`Array.sort` allocates a merge buffer). O(count · log count).
func heapSort<T: Comparable>(_ a: UnsafeMutablePointer<T>, count n: Int) {
    guard n > 1 else { return }
    @inline(__always) func swap(_ i: Int, _ j: Int) {
        let t = a[i]
        a[i] = a[j]
        a[j] = t
    }
    func siftDown(_ start: Int, _ end: Int) {
        var root = start
        while true {
            var child = 2 * root + 1
            if child >= end { return }
            if child + 1 < end, a[child] < a[child + 1] { child += 1 }
            if a[root] >= a[child] { return }
            swap(root, child)
            root = child
        }
    }
    var start = n / 2 - 1
    while start >= 0 {
        siftDown(start, n)
        start -= 1
    }
    var end = n - 1
    while end > 0 {
        swap(0, end)
        siftDown(0, end)
        end -= 1
    }
}

/// Sorts the small rule lists in place without allocating.
func sortInPlace(_ values: inout [Int32]) {
    values.withUnsafeMutableBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return }
        heapSort(base, count: buffer.count)
    }
}

/// Binary search in a sorted array. Branch-free halving (the comparison selects the half with a
/// conditional move): the rule lists are probed once per candidate with unpredictable outcomes.
@inline(__always)
func sortedContains(_ values: [Int32], _ value: Int32) -> Bool {
    values.withUnsafeBufferPointer { v in
        var n = v.count
        guard n > 0 else { return false }
        var base = 0
        while n > 1 {
            let half = n >> 1
            base = v[base &+ half] <= value ? base &+ half : base
            n &-= half
        }
        return v[base] == value
    }
}
