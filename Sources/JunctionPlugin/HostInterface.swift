import CNIKit

/// How Junction names and labels the host side of a pod's veth.
///
/// The name is derived from the attachment, so a retried ADD or a DEL finds the same link
/// without any state on disk; the alias records the owner, so Junction never deletes a
/// link it did not create and GC can list its attachments from the kernel alone.
public enum HostInterface {
  public static let namePrefix = "jnc"
  static let aliasPrefix = "junction"

  /// "jnc" + 12 hex digits of a 64-bit FNV-1a hash of "containerID:ifname": 15 bytes,
  /// the most Linux allows.
  public static func name(for attachment: Attachment) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in "\(attachment.containerID):\(attachment.ifname)".utf8 {
      hash ^= UInt64(byte)
      hash &*= 0x100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    let padded = String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    return namePrefix + padded.prefix(12)
  }

  /// "junction/NETWORK/CONTAINERID/IFNAME". None of the three may contain '/', by the
  /// spec's rules for names, so the alias parses back unambiguously.
  public static func alias(network: String, attachment: Attachment) -> String {
    "\(aliasPrefix)/\(network)/\(attachment.containerID)/\(attachment.ifname)"
  }

  /// The network and attachment an alias names, or nil when the link is not Junction's.
  public static func parseAlias(_ alias: String) -> (network: String, attachment: Attachment)? {
    let parts = alias.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    guard parts.count == 4, parts[0] == aliasPrefix, !parts[1].isEmpty, !parts[2].isEmpty,
      !parts[3].isEmpty
    else { return nil }
    return (parts[1], Attachment(containerID: parts[2], ifname: parts[3]))
  }
}
