/// Path arithmetic that does not trap: Foundation's `NSString.deletingLastPathComponent` (swift-
/// corelibs-foundation 6.3) stops the program on a one-character relative path (`--out a`,
/// `--state b`, a configuration file named `p`), so orgctl computes a path's folder itself.
public enum FilePath {
    /// The folder part of `path`, as `NSString.deletingLastPathComponent` gives it: `a/b` → `a`,
    /// `a/b/` → `a`, `/a` → `/`, `/` → `/`, and `""` for a name without a folder (`a`).
    public static func folder(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        if slash == trimmed.startIndex { return "/" }
        var head = trimmed[..<slash]
        while head.count > 1, head.hasSuffix("/") { head = head.dropLast() }
        return String(head)
    }
}
