/// Capped exponential backoff with jitter: 0.8 s doubling to 30 s (client-go's reflector
/// values), each delay drawn from [base/2, base] so that many agents restarting together do
/// not retry in lockstep. `random` gives a number in [0, 1) (injectable for tests).
public struct Backoff: Sendable {
  public var initial: Double
  public var cap: Double
  public private(set) var failures = 0
  private let random: @Sendable () -> Double

  public init(
    initial: Double = 0.8, cap: Double = 30,
    random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
  ) {
    self.initial = initial
    self.cap = cap
    self.random = random
  }

  /// The delay before the next attempt, counting one more failure.
  public mutating func next() -> Double {
    let base = min(cap, initial * Double(1 << min(failures, 20)))
    failures += 1
    return base * (0.5 + 0.5 * random())
  }

  public mutating func reset() { failures = 0 }
}

/// The list-then-watch protocol as decisions, without I/O: what to ask the server next after
/// each outcome. The informer runs the requests and reports back; tests drive it directly.
///
/// - start: LIST with `resourceVersion=0` (the server's watch cache answers, not etcd);
/// - after a list: WATCH from the list's version;
/// - every event (bookmarks too) moves the version to resume from;
/// - a watch that ends cleanly (timeout, dropped stream) resumes from the last version, with
///   no relist;
/// - 410 Gone (status or ERROR event), or a watch closed at once with no event (a front proxy
///   refusing a stale version silently): relist, as a consistent read;
/// - any other failure: wait (backoff) and retry the same step;
/// - a custom resource not installed (404): wait the capped delay and list again.
public struct Reflector: Sendable {
  public enum Step: Equatable, Sendable {
    /// `resourceVersion` "0" (any, from the cache) or nil (most recent, consistent).
    case list(resourceVersion: String?)
    case watch(resourceVersion: String)
  }

  /// What to do next: wait `delay` seconds (0: at once), then `step`.
  public struct Action: Equatable, Sendable {
    public var delay: Double
    public var step: Step
  }

  /// A watch that ends sooner than this with no event is suspicious (see above).
  public static let shortWatch = 1.0

  public private(set) var resourceVersion: String?
  public private(set) var relists = 0
  public private(set) var backoff: Backoff

  public init(backoff: Backoff = Backoff()) {
    self.backoff = backoff
  }

  public func start() -> Action { Action(delay: 0, step: .list(resourceVersion: "0")) }

  public mutating func listed(resourceVersion: String) -> Action {
    // The backoff is reset by a watch that delivers, not by a list: a server that answers
    // every watch with 410 at once must not make this loop tight.
    self.resourceVersion = resourceVersion
    return Action(delay: 0, step: .watch(resourceVersion: resourceVersion))
  }

  /// The list (asked with `requested`) failed.
  public mutating func listFailed(_ error: APIError, requested: String?) -> Action {
    if case .notInstalled = error {
      return Action(delay: backoff.cap, step: .list(resourceVersion: "0"))
    }
    // An expired version or continue token: a consistent list from the start.
    let version: String? = error.needsRelist ? nil : requested
    return Action(delay: backoff.next(), step: .list(resourceVersion: version))
  }

  /// An event arrived (any type but ERROR): resume from its version from now on.
  public mutating func observed(resourceVersion version: String?) {
    if let version, !version.isEmpty { resourceVersion = version }
  }

  /// The watch ended: cleanly (`error` nil) or with an error; `events` counts what it
  /// delivered (bookmarks included, the ERROR event not), `duration` in seconds.
  public mutating func watchEnded(events: Int, duration: Double, error: APIError?) -> Action {
    if events > 0 { backoff.reset() }
    if let error {
      if error.needsRelist {
        // The first relist at once; a server that keeps answering 410 gets the backoff.
        let first = backoff.failures == 0
        let delay = backoff.next()
        return relist(delay: first ? 0 : delay)
      }
      return Action(delay: backoff.next(), step: resume)
    }
    if events == 0 && duration < Self.shortWatch {
      return relist(delay: backoff.next())
    }
    if duration >= Self.shortWatch { backoff.reset() }
    return Action(delay: 0, step: resume)
  }

  private var resume: Step {
    if let resourceVersion { return .watch(resourceVersion: resourceVersion) }
    return .list(resourceVersion: "0")
  }

  private mutating func relist(delay: Double) -> Action {
    relists += 1
    return Action(delay: delay, step: .list(resourceVersion: nil))
  }
}
