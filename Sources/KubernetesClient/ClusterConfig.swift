import FoundationEssentials
import Yams

/// How the agent reaches the API server: its URL, the CA that must have signed the server's
/// certificate, and the client's credentials. TLS is always verified; there is no switch to
/// turn that off (a kubeconfig's `insecure-skip-tls-verify: true` is refused).
public struct ClusterConfig: Equatable, Sendable {
  public enum Credentials: Equatable, Sendable {
    case none
    /// A token given inline (kubeconfig `token`).
    case token(String)
    /// A token file read again whenever it changes (the service-account token, kubeconfig
    /// `tokenFile`): bound tokens expire and the kubelet rewrites the file.
    case tokenFile(String)
    /// A client certificate and key, PEM.
    case clientCertificate(certificate: [UInt8], key: [UInt8])
  }

  /// `https://host:port`, no trailing slash.
  public var server: String
  /// PEM bundle of the CA(s) trusted for the server's certificate; empty means the system's.
  public var certificateAuthority: [UInt8]
  public var credentials: Credentials
  /// The TLS server name to check, when it is not the URL's host (kubeconfig `tls-server-name`).
  public var tlsServerName: String?
  /// Where this came from, for status and messages: "in-cluster", "kubeconfig FILE (context C)".
  public var source: String

  public init(
    server: String, certificateAuthority: [UInt8] = [], credentials: Credentials = .none,
    tlsServerName: String? = nil, source: String
  ) {
    self.server = Self.trimmed(server)
    self.certificateAuthority = certificateAuthority
    self.credentials = credentials
    self.tlsServerName = tlsServerName
    self.source = source
  }

  /// `--k8s-api-server URL`: the same credentials, another address (the API server's real
  /// one, never a ClusterIP the agent itself translates).
  public func overridingServer(_ url: String) throws(ClusterConfigError) -> ClusterConfig {
    var copy = self
    copy.server = try Self.checkedServer(url, what: "--k8s-api-server")
    return copy
  }

  static func trimmed(_ url: String) -> String {
    var text = url
    while text.hasSuffix("/") { text.removeLast() }
    return text
  }

  static func checkedServer(_ url: String, what: String) throws(ClusterConfigError) -> String {
    let text = trimmed(url)
    guard text.hasPrefix("https://"), text.count > "https://".count else {
      throw ClusterConfigError(
        "\(what) \"\(url)\" must be an https:// URL (TLS is always verified)")
    }
    return text
  }
}

public struct ClusterConfigError: Error, Equatable, Sendable, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// Reads files for the loaders, so tests can give them from memory.
public typealias FileReader = @Sendable (String) throws -> [UInt8]

extension ClusterConfig {
  public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

  /// The in-cluster configuration, as client-go's `InClusterConfig` builds it:
  /// `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT` (IPv6 bracketed), the
  /// service account's `ca.crt` and its `token` file. Nil when not in a cluster (either
  /// variable unset).
  public static func inCluster(
    environment: [String: String], directory: String = serviceAccountDirectory,
    readFile: FileReader
  ) throws(ClusterConfigError) -> ClusterConfig? {
    guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
      let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
    else { return nil }
    let hostPart = host.contains(":") ? "[\(host)]" : host
    let caPath = directory + "/ca.crt"
    let tokenPath = directory + "/token"
    let ca: [UInt8]
    do {
      ca = try readFile(caPath)
      _ = try readFile(tokenPath)
    } catch {
      throw ClusterConfigError(
        "in-cluster config: cannot read the service account's \(caPath) or \(tokenPath): \(error)")
    }
    return ClusterConfig(
      server: "https://\(hostPart):\(port)", certificateAuthority: ca,
      credentials: .tokenFile(tokenPath), source: "in-cluster")
  }

  /// A kubeconfig file's current context: its cluster's server and CA (path or `-data`),
  /// its user's token, token file, or client certificate and key (paths or `-data`).
  /// Relative paths are taken from the kubeconfig's directory.
  public static func kubeconfig(path: String, readFile: FileReader) throws(ClusterConfigError)
    -> ClusterConfig
  {
    let bytes: [UInt8]
    do {
      bytes = try readFile(path)
    } catch {
      throw ClusterConfigError("cannot read kubeconfig \(path): \(error)")
    }
    let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
    return try kubeconfig(
      text: String(decoding: bytes, as: UTF8.self), path: path, directory: directory,
      readFile: readFile)
  }

  public static func kubeconfig(
    text: String, path: String, directory: String, readFile: FileReader
  ) throws(ClusterConfigError) -> ClusterConfig {
    func fail(_ message: String) -> ClusterConfigError {
      ClusterConfigError("kubeconfig \(path): \(message)")
    }
    let root: Any?
    do {
      root = try Yams.load(yaml: text)
    } catch {
      throw fail("not YAML: \(error)")
    }
    guard let config = root as? [String: Any] else { throw fail("must be a map") }
    guard let current = config["current-context"] as? String, !current.isEmpty else {
      throw fail("current-context is not set")
    }
    func named(_ list: String, _ name: String, _ field: String) throws(ClusterConfigError)
      -> [String: Any]
    {
      let entries = config[list] as? [[String: Any]] ?? []
      guard let entry = entries.first(where: { $0["name"] as? String == name }) else {
        throw fail("\(list) has no entry named \"\(name)\"")
      }
      return entry[field] as? [String: Any] ?? [:]
    }
    let context = try named("contexts", current, "context")
    guard let clusterName = context["cluster"] as? String else {
      throw fail("context \"\(current)\" names no cluster")
    }
    let cluster = try named("clusters", clusterName, "cluster")
    let user: [String: Any] =
      if let userName = context["user"] as? String {
        try named("users", userName, "user")
      } else { [:] }

    func resolve(_ file: String) -> String {
      file.hasPrefix("/") ? file : directory + "/" + file
    }
    func material(_ field: String, in map: [String: Any]) throws(ClusterConfigError) -> [UInt8]? {
      if let data = map[field + "-data"] as? String {
        guard let decoded = Data(base64Encoded: data.filter { !$0.isWhitespace }) else {
          throw fail("\(field)-data is not base64")
        }
        return Array(decoded)
      }
      if let file = map[field] as? String {
        do {
          return try readFile(resolve(file))
        } catch {
          throw fail("cannot read \(field) \(resolve(file)): \(error)")
        }
      }
      return nil
    }

    guard let serverText = cluster["server"] as? String else {
      throw fail("cluster \"\(clusterName)\" has no server")
    }
    let server = try checkedServer(serverText, what: "kubeconfig \(path): server")
    if cluster["insecure-skip-tls-verify"] as? Bool == true {
      throw fail(
        "insecure-skip-tls-verify is not supported: give the cluster's certificate-authority")
    }
    let ca = try material("certificate-authority", in: cluster) ?? []
    let credentials: Credentials
    if let token = user["token"] as? String, !token.isEmpty {
      credentials = .token(token)
    } else if let tokenFile = user["tokenFile"] as? String, !tokenFile.isEmpty {
      credentials = .tokenFile(resolve(tokenFile))
    } else if let certificate = try material("client-certificate", in: user) {
      guard let key = try material("client-key", in: user) else {
        throw fail("client-certificate without client-key")
      }
      credentials = .clientCertificate(certificate: certificate, key: key)
    } else if user["exec"] != nil || user["auth-provider"] != nil {
      throw fail(
        "exec and auth-provider credentials are not supported: use a token or a client certificate")
    } else {
      credentials = .none
    }
    return ClusterConfig(
      server: server, certificateAuthority: ca, credentials: credentials,
      tlsServerName: cluster["tls-server-name"] as? String,
      source: "kubeconfig \(path) (context \(current))")
  }
}
