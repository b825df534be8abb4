import BPFKit
import DatapathABI

/// The one entry of jnc_node_cfg (`junction_node_config`): settings the datapath reads on
/// every node-device and socket hook. Parts of the agent own different fields (the port
/// ranges, the socket LB's netns cookie), so each changes only its own fields through
/// `update`, which reads the entry, lets the caller change it, and writes it back.
public struct NodeConfigMap {
  public let map: BPFMap
  private static let key: UInt32 = 0

  public init(map: BPFMap) { self.map = map }

  public init(_ object: BPFObject) throws(BPFError) {
    self.init(map: try object.map(named: JUNCTION_MAP_NODE_CONFIG))
  }

  public func read() throws(BPFError) -> junction_node_config {
    try map.lookup(Self.key, as: junction_node_config.self) ?? junction_node_config()
  }

  public func update(_ change: (inout junction_node_config) -> Void) throws(BPFError) {
    var config = try read()
    change(&config)
    try map.update(Self.key, config)
  }
}
