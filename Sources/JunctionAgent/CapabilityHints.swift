import AgentCore
import BPFKit

/// The agent's own effective capabilities, read when a call was refused (nil when /proc
/// cannot tell).
func ownCapabilities() -> CapabilitySet? {
  guard let status = try? AtomicFile.read("/proc/self/status") else { return nil }
  return CapabilitySet(procStatus: String(decoding: status, as: UTF8.self))
}

/// What to append to `error`'s line when the kernel refused it and the agent lacks one of
/// `needed` ("; the agent lacks CAP_PERFMON (loading the datapath needs ...)"); "" otherwise.
/// Without it a missing capability shows only as "Permission denied (errno 13)".
func capabilityHint(for error: any Error, needed: [Capability], doing what: String) -> String {
  guard let code = (error as? BPFError)?.errno, code != 0 else { return "" }
  return ownCapabilities()?.explainRefusal(errno: code, needed: needed, doing: what) ?? ""
}
