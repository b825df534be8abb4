import CNIKit

/// The text `junction --help` and `junction --version` print for a person at a terminal.
public enum Usage {
  public static let junctionVersion = "0.1.0"

  public static var version: String {
    "junction \(junctionVersion), CNI spec versions "
      + CNIVersion.supported.map(\.description).joined(separator: ", ")
  }

  public static let help = """
    junction — Junction's CNI plugin (CNI spec 1.1: ADD, DEL, CHECK, GC, STATUS, VERSION).

    A container runtime runs it with CNI_COMMAND and friends in the environment and the
    network configuration on stdin; the result or a JSON error goes to stdout.

    Configuration (one plugin object of a conflist):
      {"cniVersion": "1.1.0", "name": "pods", "type": "junction", "mode": "native",
       "mtu": 1500, "logFile": "/var/log/junction-cni.log", "logLevel": "info",
       "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]]}}
    or, after the plugin that makes the pod's veth (bridge, ptp, ...) in the same conflist:
      {"type": "junction", "mode": "chained"}

    Try it by hand:
      echo '{"cniVersion":"1.1.0"}' | CNI_COMMAND=VERSION junction

    Options (only without CNI_COMMAND):
      --help       this text
      --version    the plugin version and the CNI versions it speaks

    See README.md for every field, the error codes and the quick start.
    """
}
