import AgentCore
import AgentMetrics
import XCTest

final class AgentMetricsTests: XCTestCase {
  private let noBackend = DatapathNames.RawDrop(reason: 5, direction: 0, packets: 3, bytes: 180)

  func testCounterDeltasGiveTheGrowthSinceTheLastReadingAndRestartAfterAReset() {
    var deltas = CounterDeltas()
    let a = ["x"]
    XCTAssertEqual(deltas.increments([CounterReading(labels: a, value: 7)]).map(\.by), [7])
    XCTAssertEqual(deltas.increments([CounterReading(labels: a, value: 7)]).map(\.by), [0])
    XCTAssertEqual(deltas.increments([CounterReading(labels: a, value: 10)]).map(\.by), [3])
    // The map was recreated: its counts start again from 0.
    XCTAssertEqual(deltas.increments([CounterReading(labels: a, value: 2)]).map(\.by), [2])
    // Another series has its own history.
    XCTAssertEqual(
      deltas.increments([
        CounterReading(labels: ["y"], value: 4), CounterReading(labels: a, value: 5),
      ]).map(\.by), [4, 3])
  }

  func testDropsAreNamedAsTheAPINamesThemAndAKeyMetTwiceCountsOnce() {
    let drops = MetricsModel.drops([noBackend, noBackend])
    XCTAssertEqual(
      drops.packets,
      [CounterReading(labels: ["Service backend not found", "from-endpoint"], value: 3)])
    XCTAssertEqual(
      drops.bytes,
      [CounterReading(labels: ["Service backend not found", "from-endpoint"], value: 180)])
  }

  func testForwardedCountersAreEgressFromPodsAndIngressToPods() {
    var counters = ForwardedCounters()
    counters.fromEndpointPackets = 1
    counters.fromEndpointBytes = 2
    counters.toEndpointPackets = 3
    counters.toEndpointBytes = 4
    let forwarded = MetricsModel.forwarded(counters)
    XCTAssertEqual(
      forwarded.packets,
      [
        CounterReading(labels: ["egress"], value: 1), CounterReading(labels: ["ingress"], value: 3),
      ])
    XCTAssertEqual(forwarded.bytes.map(\.value), [2, 4])
  }

  func testMapPressureIsEntriesOverSizeAndZeroWithoutAMap() {
    XCTAssertEqual(MapUsage(entries: 128, max: 512).pressure, 0.25)
    XCTAssertEqual(MapUsage(entries: 0, max: 0).pressure, 0)
  }

  func testOnlySNATReplyEntriesHoldAPort() {
    XCTAssertTrue(MetricsModel.isSNATPort(direction: 1, flags: 2 | 16))
    XCTAssertFalse(MetricsModel.isSNATPort(direction: 0, flags: 2))
    XCTAssertFalse(MetricsModel.isSNATPort(direction: 1, flags: 4))
  }

  func testRouteLabelsAreTemplatesNeverEndpointIDs() {
    XCTAssertEqual(
      MetricsModel.routeLabel(APIRoute.resolve(method: "PUT", path: "/v1/endpoints/abc")),
      "/v1/endpoints/{id}")
    XCTAssertEqual(
      MetricsModel.routeLabel(APIRoute.resolve(method: "GET", path: "/v1/healthz")), "/v1/healthz")
    XCTAssertEqual(
      MetricsModel.routeLabel(APIRoute.resolve(method: "GET", path: "/v1/nothing/here")),
      "not-found")
    XCTAssertEqual(
      MetricsModel.routeLabel(APIRoute.resolve(method: "POST", path: "/v1/resources/delete")),
      "/v1/resources/delete")
  }

  func testAddressesAreHostPortOrPortForEveryAddress() throws {
    XCTAssertEqual(
      try MetricsAddress.parse(":9962").get(), MetricsAddress(host: "0.0.0.0", port: 9962))
    XCTAssertEqual(
      try MetricsAddress.parse("127.0.0.1:19962").get(),
      MetricsAddress(host: "127.0.0.1", port: 19962))
    XCTAssertEqual(
      try MetricsAddress.parse("[::1]:9962").get(), MetricsAddress(host: "::1", port: 9962))
    for bad in ["9962", "host:", ":0", ":65536", "a:b"] {
      XCTAssertThrowsError(try MetricsAddress.parse(bad).get(), bad)
    }
  }

  /// The rendered text: described families, the sampled values, counters that only grow.
  func testRenderSetsTheSampledValuesAndCountersFollowTheKernelsCounts() {
    let metrics = AgentMetrics()
    var agent = AgentSample()
    agent.services = 2
    agent.frontends = 3
    agent.backends = 4
    agent.endpoints = 5
    agent.flowEventsProcessed = 9
    agent.relists = ["services": 1]
    agent.conntrackSwept = ["ipv4": 7, "ipv6": 0]
    var datapath = DatapathSample()
    datapath.drops = [noBackend]
    datapath.conntrack = MapUsage(entries: 64, max: 256)
    datapath.snat = MapUsage(entries: 1, max: 4)
    datapath.flowEventsLost = 2
    metrics.observeAPIRequest(
      route: .health, method: "GET", code: 200, seconds: 0.002)
    metrics.observeNetworkProgramming(seconds: 0.3)
    metrics.countWatchEvents(resource: "services", 2)

    let first = String(decoding: metrics.render(agent: agent, datapath: datapath), as: UTF8.self)
    for line in [
      "# TYPE junction_drop_count_total counter",
      #"junction_drop_count_total{reason="Service backend not found",direction="from-endpoint"} 3"#,
      #"junction_drop_bytes_total{reason="Service backend not found",direction="from-endpoint"} 180"#,
      "junction_services 2.0", "junction_service_frontends 3.0", "junction_service_backends 4.0",
      "junction_endpoints 5.0", "junction_snat_ports_in_use 1.0",
      #"junction_bpf_map_pressure{map_name="jnc_ct4"} 0.25"#,
      #"junction_bpf_map_pressure{map_name="snat"} 0.25"#,
      "junction_flow_events_processed_total 9",
      #"junction_conntrack_swept_total{family="ipv4"} 7"#,
      #"junction_flow_events_lost_total{source="datapath_ring"} 2"#,
      #"junction_k8s_relists_total{resource="services"} 1"#,
      #"junction_k8s_watch_events_total{resource="services"} 2"#,
      #"junction_agent_api_process_time_seconds_count{method="GET",path="/v1/healthz",return_code="200"} 1"#,
      #"kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="0.5"} 1"#,
      "# HELP kubeproxy_network_programming_duration_seconds",
    ] {
      XCTAssertTrue(first.contains(line), "\(line) in:\n\(first)")
    }

    datapath.drops[0].packets = 5
    let second = String(decoding: metrics.render(agent: agent, datapath: datapath), as: UTF8.self)
    XCTAssertTrue(
      second.contains(
        #"junction_drop_count_total{reason="Service backend not found",direction="from-endpoint"} 5"#
      ), second)
  }
}
