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

  // Kept out of cross-module optimization (optimize.no.crossmodule): Swift 6.3.1's default
  // CMO serializes a small public function like this one into ServiceDatapath.swiftmodule,
  // and when the optimizer of a client module (junction-agent) inlines it, deserializing
  // the body fails to find the BitwiseCopyable conformance of the imported C struct
  // ("Conformance of 'junction_node_config' to 'BitwiseCopyable' not found in referenced
  // module 'DatapathABI'") and the compiler aborts with signal 6 (a release build only;
  // debug builds do not serialize bodies). @inline(never) does not help: the body is still
  // serialized and deserialized. Only these two functions lose CMO; the rest of the package
  // keeps it. install/test.sh builds release the installer's way, so a new function of this
  // shape fails CI instead of the installer.
  @_semantics("optimize.no.crossmodule")
  public func read() throws(BPFError) -> junction_node_config {
    try map.lookup(Self.key, as: junction_node_config.self) ?? junction_node_config()
  }

  @_semantics("optimize.no.crossmodule")  // see read()
  public func update(_ change: (inout junction_node_config) -> Void) throws(BPFError) {
    var config = try read()
    change(&config)
    try map.update(Self.key, config)
  }
}
