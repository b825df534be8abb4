import CLibbpf
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The libbpf this binary runs against, and process-wide libbpf settings.
public enum LibBPF {
  /// "1.1" on Debian 12, which has tc hooks (bpf_tc_*) but not TCX links; the datapath is
  /// written for that.
  public static var version: String { "\(libbpf_major_version()).\(libbpf_minor_version())" }

  /// CPUs the kernel may ever bring up (/sys/devices/system/cpu/possible): per-CPU maps
  /// hold one value slot for each, online or not.
  public static func possibleCPUs() throws(BPFError) -> Int {
    Int(try checkLibbpf(libbpf_num_possible_cpus(), "libbpf_num_possible_cpus"))
  }

  public enum LogLevel: Sendable {
    case warning, info, debug
  }

  public typealias LogHandler = @Sendable (LogLevel, String) -> Void

  private static let handler = Mutex<LogHandler?>(nil)

  /// Routes libbpf's messages (load failures with the verifier log, "Kernel error message"
  /// lines from tc netlink calls) to `handler`, one line per call without the newline; nil
  /// silences libbpf. Until this is called libbpf prints warnings and info to stderr, which
  /// a CNI plugin may not want (its stderr is the runtime's). Process-wide.
  public static func setLogHandler(_ newHandler: LogHandler?) {
    handler.withLock { $0 = newHandler }
    guard newHandler != nil else {
      _ = libbpf_set_print(nil)
      return
    }
    _ = libbpf_set_print { level, format, arguments in
      guard let format, let arguments, let current = LibBPF.handler.withLock({ $0 }) else {
        return 0
      }
      var buffer = [CChar](repeating: 0, count: 4096)
      _ = vsnprintf(&buffer, buffer.count, format, arguments)
      var message = String(
        decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      while message.hasSuffix("\n") { message.removeLast() }
      let mapped: LogLevel =
        switch level {
        case LIBBPF_WARN: .warning
        case LIBBPF_INFO: .info
        default: .debug
        }
      current(mapped, message)
      return 0
    }
  }
}
