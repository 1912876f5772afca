import FuzzHarness

#if canImport(Glibc)
    import Glibc
#endif

// Built with `-sanitize=fuzzer -parse-as-library`. SwiftPM links an executable's entry point as
// `<module>_main`, so that is defined here and hands over to libFuzzer's driver, which calls the
// two functions below. One binary serves every target so CI links it once; the target
// is chosen by the environment, before the first input:
//
//   RANKD_FUZZ_TARGET=<name>          the target to run (FuzzTarget raw values)
//   RANKD_FUZZ_WRITE_SEEDS=<dir>      write every target's seeds to <dir>/<target>/seed-<name> and exit

nonisolated(unsafe) var selectedTarget: FuzzTarget?

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("rankd_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzerTestOneInput)
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    if let directory = getenv("RANKD_FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) {
        for target in FuzzTarget.allCases {
            let targetDirectory = directory + "/" + target.rawValue
            mkdir(targetDirectory, 0o755)
            for seed in target.seeds() {
                let path = targetDirectory + "/seed-" + seed.name
                guard let file = fopen(path, "wb") else { fatalError("cannot write \(path)") }
                _ = seed.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
                fclose(file)
            }
        }
        exit(0)
    }
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
    guard let name = getenv("RANKD_FUZZ_TARGET").map({ String(cString: $0) }) else {
        printError("rankd-fuzz: set RANKD_FUZZ_TARGET to one of: \(names)")
        exit(2)
    }
    guard let target = FuzzTarget(rawValue: name) else {
        printError("rankd-fuzz: unknown target \(name); targets: \(names)")
        exit(2)
    }
    selectedTarget = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let target = selectedTarget else { return 0 }
    target.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

private func printError(_ message: String) {
    let line = Array((message + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
