/// The line a command line shows on a terminal while a long request (a big apply) runs:
/// what is sent and for how long it has been waited for, so a user sees it is not stuck.
public enum WaitingLine {
  /// "applying services.yaml (10.2 MB)… 3s".
  public static func text(verb: String, source: String, bytes: Int, seconds: Int) -> String {
    "\(verb) \(source) (\(size(bytes)))… \(seconds)s"
  }

  /// Decimal units, as file sizes are usually shown: "512 bytes", "12 kB", "10.2 MB".
  static func size(_ bytes: Int) -> String {
    if bytes < 1000 { return "\(bytes) bytes" }
    if bytes < 1_000_000 { return "\(bytes / 1000) kB" }
    let tenths = (bytes + 50_000) / 100_000
    return "\(tenths / 10).\(tenths % 10) MB"
  }

  /// Rewrites the terminal's current line with `text` ("\r", the text, erase to the end).
  public static func redraw(_ text: String) -> String { "\r" + text + "\u{1B}[K" }

  /// Erases the line `redraw` wrote, leaving the cursor at its start.
  public static let clear = "\r\u{1B}[K"
}
