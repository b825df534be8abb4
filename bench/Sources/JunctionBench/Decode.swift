import Foundation
import ServiceCore

/// `junction-bench decode`: the YAML of N Services × B backends (`junction-bench yaml`) parsed
/// into documents (`YAMLValue.documents`, or with `--yams 1` Yams' composition alone) and
/// then decoded into resources, each timed, best of `--repeat` runs. The agent's apply does
/// both before it plans (bench/cli-apply.sh measures the whole apply).
struct DecodeBenchmark {
  let layout: ServiceLayout
  let yams: Bool
  let rounds: Int

  init(_ options: Options) throws {
    layout = try ServiceLayout(options)
    yams = try options.int("yams", default: 0) == 1
    rounds = max(1, try options.int("repeat", default: 3))
  }

  func run() throws {
    let text = layout.fullYAML()
    var parse = Duration.seconds(1_000_000)
    var decode = parse
    var objects = 0
    for _ in 0..<rounds {
      let started = ContinuousClock.now
      let documents =
        yams ? try YAMLValue.documentsWithYams(text) : try YAMLValue.documents(text)
      let parsed = ContinuousClock.now
      let decoded = ResourceDecoder.decode(documents: documents)
      let done = ContinuousClock.now
      parse = min(parse, parsed - started)
      decode = min(decode, done - parsed)
      objects = decoded.resources.count
      guard decoded.problems.isEmpty else { throw Options.Invalid(description: "problems") }
    }
    let path = yams ? "Yams compose_all" : "YAMLValue.documents"
    print(
      "| \(layout.services) × \(layout.backendsPerService) | \(text.utf8.count) bytes | \(objects) objects | \(path) | "
        + "parse \(seconds(parse)) s | decode \(seconds(decode)) s |")
  }

  private func seconds(_ duration: Duration) -> String {
    let (whole, attoseconds) = duration.components
    return String(format: "%.3f", Double(whole) + Double(attoseconds) / 1e18)
  }
}
