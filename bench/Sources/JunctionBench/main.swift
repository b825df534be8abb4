#if canImport(Glibc)
  import Glibc
#endif

// junction-bench: the load-balancing benchmarks of bench/README.md. Each subcommand prints a
// Markdown report on stdout and progress on stderr; bench/per-packet.sh and
// bench/programming.sh run them as root with a scratch bpffs and clean up after them.

let usage = """
  usage: junction-bench per-packet --bpffs DIR [--services 1,1000,10000,50000] [--repeat 1000000]
                                   [--rounds 10] [--samples 1000] [--object PATH] [--seed N]
                                   [--families ipv4|ipv4,ipv6]
         junction-bench first-packet --bpffs DIR --objects NAME=PATH,... [--baseline NAME]
                                     [--services 1000] [--rounds 10] [--samples 300]
                                     [--repeat 5000] [--monitor flows|off] [--seed N]
         junction-bench programming --bpffs DIR [--services 10000] [--backends 10] [--changes 20]
                                    [--object PATH]
         junction-bench yaml [--services 10000] [--backends 10] [--change 0|1]
         junction-bench decode [--services 10000] [--backends 10] [--yams 0|1] [--repeat 3]
         junction-bench table [--services 10000] [--backends 10]
  """

var arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else {
  standardError(usage)
  exit(2)
}
arguments.removeFirst()
do {
  let options = try Options(parsing: arguments)
  switch command {
  case "per-packet": try PerPacketBenchmark(options).run()
  case "first-packet": try FirstPacketBenchmark(options).run()
  case "programming": try ProgrammingBenchmark(options).run()
  case "yaml":
    let layout = try ServiceLayout(options)
    let change = try options.int("change", default: -1)
    print(change < 0 ? layout.fullYAML() : layout.changedSliceYAML(variant: change), terminator: "")
  case "decode": try DecodeBenchmark(options).run()
  case "table": try TableMemoryBenchmark(options).run()
  default:
    standardError(usage)
    exit(2)
  }
} catch {
  standardError("junction-bench: \(error)")
  exit(1)
}
