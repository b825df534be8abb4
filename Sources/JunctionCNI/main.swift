import CNIKit
import JunctionPlugin

#if canImport(Glibc)
  import Glibc
#endif

// The `junction` binary: environment + stdin in, CNI result or error out (CNIKit does the
// protocol, JunctionPlugin the work). Kept free of anything that costs start-up time.

let environment = ProcessEnvironment.current()
let arguments = CommandLine.arguments.dropFirst()

if environment["CNI_COMMAND"] == nil, let flag = arguments.first {
  switch flag {
  case "--version", "-v", "version":
    print(Usage.version)
    exit(0)
  default:
    print(Usage.help)
    exit(flag == "--help" || flag == "-h" || flag == "help" ? 0 : 2)
  }
}

let stdin = StandardStreams.readStdin()
let response = CNIDispatcher.run(environment: environment, stdin: stdin) { config in
  JunctionCNIPlugin(config: config, environment: environment)
}
StandardStreams.writeStdout(response.stdout)
if environment["CNI_COMMAND"] == nil {
  StandardStreams.writeStderr(Array((Usage.help + "\n").utf8))
}
exit(response.exitCode)
