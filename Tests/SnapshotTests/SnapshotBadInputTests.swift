import Foundation
import Snapshot
import Testing

/// Bad builder inputs: each gets a `SnapshotError` naming the file and row/line/field, and no
/// snapshot (not even a partial one) is left behind.
@Suite struct SnapshotBadInputTests {
    private static let goodHeader = "{'descr': '<f4', 'fortran_order': False, 'shape': (30, 8), }"

    /// Builds expecting `expected`, then checks the output and temporary directory are gone.
    private func expectBuildFails(_ fixture: SnapshotFixture, _ expected: SnapshotError, _ comment: Comment? = nil)
        throws
    {
        #expect(throws: expected, comment) { try fixture.build() }
        #expect(try fixture.leftovers() == [], comment)
    }

    private func expectBuildFails(
        _ fixture: SnapshotFixture, _ comment: Comment? = nil, matching: (SnapshotError) -> Bool
    ) throws {
        #expect(comment) { try fixture.build() } throws: { error in (error as? SnapshotError).map(matching) ?? false }
        #expect(try fixture.leftovers() == [], comment)
    }

    @Test(arguments: [
        ("{'descr': '<i4', 'fortran_order': False, 'shape': (30, 8), }", "dtype <i4"),
        ("{'descr': '>f4', 'fortran_order': False, 'shape': (30, 8), }", "dtype >f4"),
        ("{'descr': '<f4', 'fortran_order': True, 'shape': (30, 8), }", "Fortran"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (240,), }", "not 2-D"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (30, 4, 2), }", "not 2-D"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (31, 8), }", "data bytes"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (29, 8), }", "data bytes"),
        ("{'descr': '<f4', 'shape': (30, 8), }", "fortran_order"),
        ("[1, 2]", "not a dict"),
    ])
    func rejectsMalformedNPYHeaders(header: String, reason: String) throws {
        let fixture = try SnapshotFixture()
        try fixture.write(
            fixture.items,
            bytes: SnapshotFixture.npyBytes(
                header: header, data: SnapshotFixture.floatBytes(fixture.itemVectors)))
        try expectBuildFails(fixture, "\(header)") { error in
            guard case .npy(let file, let message) = error else { return false }
            return file == fixture.items && message.contains(reason)
        }
    }

    @Test func rejectsNPYWhoseHeaderLiesAboutItsLength() throws {
        let fixture = try SnapshotFixture()
        var bytes = SnapshotFixture.npyBytes(
            header: Self.goodHeader, data: SnapshotFixture.floatBytes(fixture.itemVectors))
        bytes[8] = 0xFF
        bytes[9] = 0xFF
        try fixture.write(fixture.items, bytes: bytes)
        try expectBuildFails(fixture) {
            if case .npy(fixture.items, let m) = $0 { m.contains("header claims") } else { false }
        }

        try fixture.write(fixture.items, bytes: [0x93, 0x4E, 0x55, 0x4D, 0x50])
        try expectBuildFails(fixture) { if case .npy(fixture.items, _) = $0 { true } else { false } }
        try fixture.write(fixture.items, bytes: Array("not numpy at all".utf8))
        try expectBuildFails(fixture) { if case .npy(fixture.items, let m) = $0 { m.contains("magic") } else { false } }
    }

    @Test func acceptsVersion2HeadersAndFloat64Data() throws {
        let fixture = try SnapshotFixture()
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (30, 8), }"
        var header = dict + String(repeating: " ", count: 128 - 12 - dict.utf8.count - 1) + "\n"
        header = String(header)
        let length = header.utf8.count
        let data = fixture.itemVectors.flatMap { $0 }.flatMap { value in
            withUnsafeBytes(of: Double(value).bitPattern.littleEndian, Array.init)
        }
        let bytes =
            [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, UInt8(length & 0xFF), UInt8(length >> 8), 0, 0]
            + Array(header.utf8) + data
        try fixture.write(fixture.items, bytes: bytes)
        try fixture.build()
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.itemVectors.vector(at: 29) == fixture.itemVectors[29])
    }

    @Test func rejectsDimensionMismatchBetweenUsersAndItems() throws {
        let fixture = try SnapshotFixture()
        try SnapshotFixture.writeNPY(fixture.items, rows: fixture.itemVectors.map { Array($0.prefix(7)) })
        try expectBuildFails(fixture, .dimensionMismatch(users: 8, items: 7))
    }

    @Test func rejectsIdCountDifferentFromRowCount() throws {
        let fixture = try SnapshotFixture()
        try fixture.write(fixture.userIds, (fixture.userIdList + ["u_extra"]).joined(separator: "\n"))
        try expectBuildFails(
            fixture, .countMismatch(file: fixture.userIds, count: 41, otherFile: fixture.users, otherCount: 40))
        let short = try SnapshotFixture()
        try short.write(short.itemsMeta, short.itemLines.dropLast().joined(separator: "\n"))
        try expectBuildFails(
            short, .countMismatch(file: short.itemsMeta, count: 29, otherFile: short.items, otherCount: 30))
    }

    @Test func rejectsDuplicateIdsNamingBothLines() throws {
        let fixture = try SnapshotFixture()
        var ids = fixture.userIdList
        ids[9] = "u_3"
        try fixture.write(fixture.userIds, ids.joined(separator: "\n"))
        try expectBuildFails(fixture, .duplicateId(file: fixture.userIds, line: 10, id: "u_3", firstLine: 4))

        let items = try SnapshotFixture()
        var lines = items.itemLines
        lines[20] = lines[2]
        // A blank line before it shifts line numbers away from row numbers.
        try items.write(
            items.itemsMeta, lines[0..<5].joined(separator: "\n") + "\n\n" + lines[5...].joined(separator: "\n"))
        try expectBuildFails(items, .duplicateId(file: items.itemsMeta, line: 22, id: "sku-2", firstLine: 3))
    }

    @Test func rejectsEmptyIds() throws {
        let fixture = try SnapshotFixture()
        var ids = fixture.userIdList
        ids[5] = ""
        try fixture.write(fixture.userIds, ids.joined(separator: "\n"))
        try expectBuildFails(fixture, .emptyId(file: fixture.userIds, line: 6))

        let items = try SnapshotFixture()
        var lines = items.itemLines
        lines[7] = #"{"id": "", "category": "x"}"#
        try items.write(items.itemsMeta, lines.joined(separator: "\n"))
        try expectBuildFails(items, .invalidField(file: items.itemsMeta, line: 8, field: "id", reason: "empty id"))
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func rejectsNonFiniteVectorValuesNamingRowAndColumn(value: Float) throws {
        let fixture = try SnapshotFixture()
        var rows = fixture.userVectors
        rows[17][5] = value
        try SnapshotFixture.writeNPY(fixture.users, rows: rows)
        try expectBuildFails(fixture, .nonFiniteValue(file: fixture.users, row: 17, column: 5))
    }

    @Test func rejectsMalformedJSONNamingTheLine() throws {
        let fixture = try SnapshotFixture()
        var lines = fixture.itemLines
        lines[11] = #"{"id": "sku-11", "category": }"#
        try fixture.write(fixture.itemsMeta, lines.joined(separator: "\n"))
        try expectBuildFails(fixture) { if case .malformedJSON(fixture.itemsMeta, 12, _) = $0 { true } else { false } }
    }

    @Test(arguments: [
        (#"{"id": "sku-x", "price": "cheap"}"#, "price"),
        (#"{"id": "sku-x", "price": -1}"#, "price"),
        (#"{"id": "sku-x", "created_at": 1.5}"#, "created_at"),
        (#"{"id": "sku-x", "in_stock": "yes"}"#, "in_stock"),
        (#"{"id": "sku-x", "tags": "new"}"#, "tags"),
        (#"{"id": "sku-x", "tags": ["new", 3]}"#, "tags.[1]"),
        (#"{"id": 12}"#, "id"),
        (#"{"category": "shoes"}"#, "id"),
        (#"{"id": "sku-x", "popularity": 1e300}"#, "popularity"),
    ])
    func rejectsFieldsOfTheWrongTypeNamingTheField(line: String, field: String) throws {
        let fixture = try SnapshotFixture()
        var lines = fixture.itemLines
        lines[4] = line
        try fixture.write(fixture.itemsMeta, lines.joined(separator: "\n"))
        try expectBuildFails(fixture, "\(line)") {
            if case .invalidField(fixture.itemsMeta, 5, let name, _) = $0 { name == field } else { false }
        }
    }

    @Test func rejectsNonUTF8NamingTheLine() throws {
        let fixture = try SnapshotFixture()
        var bytes = Array((fixture.userIdList.joined(separator: "\n") + "\n").utf8)
        let lineStart = bytes.indices.filter { bytes[$0] == UInt8(ascii: "\n") }[2] + 1
        bytes[lineStart + 1] = 0xFF
        try fixture.write(fixture.userIds, bytes: bytes)
        try expectBuildFails(fixture, .invalidUTF8(file: fixture.userIds, line: 4))

        let items = try SnapshotFixture()
        var meta = Array(items.itemLines.joined(separator: "\n").utf8)
        meta[10] = 0xC3  // a lead byte without its continuation, inside line 1's "sku-0"
        try items.write(items.itemsMeta, bytes: meta)
        try expectBuildFails(items, .invalidUTF8(file: items.itemsMeta, line: 1))
    }

    @Test func rejectsMoreThan64DistinctTags() throws {
        let fixture = try SnapshotFixture()
        var lines = fixture.itemLines
        let tags = (0..<65).map { "\"t\($0)\"" }.joined(separator: ",")
        lines[3] = #"{"id": "sku-3", "tags": [\#(tags)]}"#
        try fixture.write(fixture.itemsMeta, lines.joined(separator: "\n"))
        // Lines 1–3 already introduced "new" and "sale", so t62 is the 65th distinct tag.
        try expectBuildFails(fixture, .tooManyTags(file: fixture.itemsMeta, line: 4, tag: "t62"))
    }

    @Test func refusesToOverwriteAnExistingOutput() throws {
        let fixture = try SnapshotFixture()
        try FileManager.default.createDirectory(atPath: fixture.output, withIntermediateDirectories: false)
        #expect(throws: SnapshotError.outputExists(path: fixture.output)) { try fixture.build() }
        #expect(try fixture.leftovers() == ["snap-v1"])
    }

    @Test func removesTemporaryDirectoriesOfKilledBuildsButNotOfLiveOnes() throws {
        let fixture = try SnapshotFixture()
        // PID_MAX_LIMIT is 2^22 on Linux, so no process can have this id: a SIGKILLed builder's.
        let abandoned = fixture.root + "/.snap-v1.tmp-4194305-1f2e"
        let live = fixture.root + "/.snap-v1.tmp-\(ProcessInfo.processInfo.processIdentifier)-abcd"
        let otherOutput = fixture.root + "/.other.tmp-4194305-1f2e"
        for directory in [abandoned, live, otherOutput] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            #expect(FileManager.default.createFile(atPath: directory + "/item_vectors.vec", contents: Data([1, 2])))
        }
        try fixture.build()
        let expected = [".other.tmp-4194305-1f2e", (live as NSString).lastPathComponent, "snap-v1"]
        #expect(try fixture.leftovers().sorted() == expected)
    }

    @Test func rejectsRankingConfigThatIsNotAnObject() throws {
        let fixture = try SnapshotFixture()
        #expect(throws: SnapshotError.self) { try fixture.build { $0.rankingConfig = .array([]) } }
        #expect(try fixture.leftovers() == [])
    }

    @Test func missingInputFileNamesThePath() throws {
        let fixture = try SnapshotFixture()
        try FileManager.default.removeItem(atPath: fixture.itemsMeta)
        try expectBuildFails(fixture) { error in
            if case .io(let storage) = error { storage.description.contains(fixture.itemsMeta) } else { false }
        }
    }
}
