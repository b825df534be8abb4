import FlowPipeline

/// GET /api/map?QUERY: the page's filters (GET /v1/flows's parameters, the names of
/// `junctionctl observe`'s flags) and `rows`, how many flows the table shows (default 100).
/// The filters are checked here, so a wrong one is the page's 400 and never reaches the
/// agent; the agent is asked for every matching flow it keeps, without following.
public struct MapRequest: Equatable, Sendable {
  public var query: FlowQuery
  public var rows: Int

  public static let defaultRows = 100
  public static let maximumRows = 1000

  public init(query: FlowQuery = FlowQuery(), rows: Int = MapRequest.defaultRows) {
    self.query = query
    self.rows = rows
  }

  /// `query`: the raw query string after "?", possibly empty.
  public struct Problem: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
  }

  public static func parse(_ query: String) throws(Problem) -> MapRequest {
    var rows = defaultRows
    var rest: [Substring] = []
    for item in query.split(separator: "&") where !item.isEmpty {
      guard item.hasPrefix("rows=") else {
        rest.append(item)
        continue
      }
      guard let number = Int(item.dropFirst(5)), (0...maximumRows).contains(number) else {
        throw Problem("rows \"\(item.dropFirst(5))\" is not a number from 0 to \(maximumRows)")
      }
      rows = number
    }
    // The table and the map are refreshed by polling (see UICommand): a following
    // query would never end.
    var flowQuery: FlowQuery
    do {
      flowQuery = try FlowQuery.parse(rest.joined(separator: "&"))
    } catch {
      throw Problem(error.description)
    }
    guard !flowQuery.follow else { throw Problem("follow is not for the map: it polls") }
    flowQuery.follow = false
    return MapRequest(query: flowQuery, rows: rows)
  }

  /// The agent's path for these flows: GET /v1/flows with the same filters.
  public var agentPath: String {
    let text = query.queryString
    return text.isEmpty ? "/v1/flows" : "/v1/flows?" + text
  }
}
