#if FUZZING
  /// libFuzzer's entry point (built with -sanitize=fuzzer -DFUZZING).
  @_cdecl("LLVMFuzzerTestOneInput")
  public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    Harnesses.run(FuzzTarget.name, Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
  }

  /// libFuzzer's driver (compiler-rt, LLVM 11+), called from the executable's main.
  @_silgen_name("LLVMFuzzerRunDriver")
  func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
  ) -> CInt

  /// SwiftPM links an executable's main under `<module>_main`: this one hands the process
  /// to libFuzzer, as libFuzzer's own main would.
  @_cdecl("JunctionFuzz_main")
  public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
  ) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
  }

  enum FuzzTarget {
    static let name: String = {
      guard let value = getenv("JUNCTION_FUZZ_TARGET") else { return "cni-config" }
      return String(cString: value)
    }()
  }
#else
  /// Without libFuzzer: replays files (the committed corpus, a crash to reproduce) through
  /// every harness, or one named with --target. `junction-fuzz [--target NAME] FILE...`
  @main
  struct Replay {
    static func main() {
      var arguments = Array(CommandLine.arguments.dropFirst())
      var targets = Harnesses.names
      if arguments.first == "--target", arguments.count > 1 {
        targets = [arguments[1]]
        arguments.removeFirst(2)
      }
      var count = 0
      for path in arguments {
        guard let file = fopen(path, "rb") else {
          print("junction-fuzz: cannot open \(path)")
          exit(2)
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
          let read = fread(&buffer, 1, buffer.count, file)
          if read <= 0 { break }
          bytes += buffer[0..<read]
        }
        fclose(file)
        for target in targets { Harnesses.run(target, bytes) }
        count += 1
      }
      print("junction-fuzz: \(count) inputs through \(targets.joined(separator: ", ")): no crash")
    }
  }
#endif

#if canImport(Glibc)
  import Glibc
#endif
