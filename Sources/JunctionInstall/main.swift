import ArgumentParser
import CNIConfigEditing
import Glibc

// `junction-install`: chains Junction into the CNI config a node already has, and takes it
// out again. The edits are CNIConfigEditing's; this file only reads arguments and prints.

struct JunctionInstall: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "junction-install",
    abstract: "Chain Junction into an existing CNI config, or remove it again.",
    discussion: """
      chain appends {"type": "junction", "mode": "chained"} as the last plugin of a \
      .conflist; a lone .conf (or .json) becomes a .conflist of the same stem holding the \
      original plugin and Junction. unchain undoes exactly that, byte for byte. Both are \
      idempotent, write atomically (temp file, fsync, rename) and keep the file's mode and \
      owner. A file that cannot be parsed is refused with the reason and byte offset, and \
      nothing changes. No other file in the directory is touched.

      Examples:
        junction-install chain /etc/cni/net.d/10-flannel.conflist
        junction-install chain --first-in /etc/cni/net.d --wait 300
        junction-install unchain /etc/cni/net.d/10-calico.conflist
        junction-install pick /etc/cni/net.d
      """,
    subcommands: [Chain.self, Unchain.self, Pick.self]
  )
}

/// Which file: one named, or the one the runtime would load from a directory.
struct Target: ParsableArguments {
  @Argument(help: ArgumentHelp("The config file (.conflist, .conf or .json).", valueName: "file"))
  var file: String?

  @Option(
    help: ArgumentHelp(
      "Instead of FILE: the config the runtime loads from this directory (the first "
        + ".conf/.conflist/.json in byte order).", valueName: "dir"))
  var firstIn: String?

  @Option(
    help: ArgumentHelp(
      "With --first-in: wait up to this many seconds for a config to appear (the other CNI "
        + "may not have written it yet).", valueName: "seconds"))
  var wait: Int = 0

  func validate() throws {
    guard (file == nil) != (firstIn == nil) else {
      throw ValidationError("give either FILE or --first-in DIR")
    }
    if wait < 0 { throw ValidationError("--wait must not be negative") }
  }

  func resolve() throws -> String {
    if let file { return file }
    let directory = firstIn!
    var waited = 0
    while true {
      if let name = try CNIConfigFiles.runtimeChoice(in: directory) {
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
      }
      if waited >= wait {
        throw ConfigFileError(path: directory, "no CNI config (.conf, .conflist, .json) found")
      }
      if waited == 0 { print("junction-install: waiting for a CNI config in \(directory)") }
      sleep(1)
      waited += 1
    }
  }
}

extension JunctionInstall {
  struct Chain: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Append Junction (chained mode) to a CNI config's plugin list.")

    @OptionGroup var target: Target

    @Option(help: ArgumentHelp("The agent's socket, when not the default.", valueName: "path"))
    var agentSocket: String?
    @Option(help: ArgumentHelp("The plugin's log file (absolute path).", valueName: "path"))
    var logFile: String?
    @Option(help: ArgumentHelp("error, warning, info or debug.", valueName: "level"))
    var logLevel: String?
    @Flag(help: "Print nothing when the file is already chained (for a loop that re-chains).")
    var quiet = false

    func run() throws {
      let entry = JunctionEntry(agentSocket: agentSocket, logFile: logFile, logLevel: logLevel)
      try report(quiet: quiet) {
        try entry.validate()
        return try CNIConfigFiles.chain(try target.resolve(), entry: entry)
      }
    }
  }

  struct Unchain: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Remove Junction from a CNI config (restore a converted .conf).")

    @OptionGroup var target: Target

    func run() throws {
      try report { try CNIConfigFiles.unchain(try target.resolve()) }
    }
  }

  struct Pick: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print the config file the runtime loads from a directory.")

    @Argument(help: ArgumentHelp("The CNI config directory.", valueName: "dir"))
    var directory: String

    func run() throws {
      try report {
        guard let name = try CNIConfigFiles.runtimeChoice(in: directory) else {
          throw ConfigFileError(path: directory, "no CNI config (.conf, .conflist, .json) found")
        }
        return EditReport(changed: false, message: directory + "/" + name)
      }
    }
  }
}

/// Prints the outcome; any failure is one line on stderr and exit status 1.
func report(quiet: Bool = false, _ body: () throws -> EditReport) throws {
  do {
    let outcome = try body()
    if outcome.changed || !quiet { print(outcome) }
  } catch let error as ExitCode {
    throw error
  } catch {
    let line = "junction-install: \(error)\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    throw ExitCode.failure
  }
}

JunctionInstall.main()
