import Foundation

/// Resolves `{file: path}` references: relative to the YAML file that names them, and never
/// outside the configuration folder (`..` and symbolic links included).
struct FileReferences: Sendable {
    /// The configuration folder as the user named it.
    let root: String
    /// The configuration folder with symbolic links resolved.
    let realRoot: String

    init(root: String) {
        self.root = root
        self.realRoot = Self.realPath(root) ?? root
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The path of `written` as seen from the working directory, or nil (reported) when it escapes.
    func resolve(_ written: String, from yamlFile: String, at node: Node, reader: Reader) -> String? {
        if written.hasPrefix("/") || written.hasPrefix("~") {
            reader.error("spec.path", "file path '\(written)' must be relative to the YAML file", at: node,
                         help: "write a path relative to this file, inside the configuration folder")
            return nil
        }
        let directory = FilePath.folder(of: yamlFile)
        let joined = directory.isEmpty ? written : directory + "/" + written
        // Lexical check first: `..` may not climb out of the configuration folder.
        let relativeToRoot: String
        if root == "." {
            relativeToRoot = joined
        } else if joined.hasPrefix(root + "/") {
            relativeToRoot = String(joined.dropFirst(root.count + 1))
        } else {
            relativeToRoot = joined
        }
        var depth = 0
        for component in relativeToRoot.split(separator: "/") {
            if component == ".." { depth -= 1 } else if component != "." { depth += 1 }
            if depth < 0 { break }
        }
        if depth < 0 {
            reader.error("spec.path-escape", "file path '\(written)' leads outside the configuration folder", at: node,
                         help: "keep referenced files inside '\(root)'")
            return nil
        }
        // Then the real path: a symbolic link may not point outside either.
        if let real = Self.realPath(joined), real != realRoot, !real.hasPrefix(realRoot.hasSuffix("/") ? realRoot : realRoot + "/") {
            reader.error("spec.path-escape", "file '\(written)' is a link to a place outside the configuration folder", at: node,
                         help: "copy the file into '\(root)' instead of linking to it")
            return nil
        }
        return joined
    }

    /// `path` (as `resolve` returns it) relative to the configuration folder, `.` and `..` resolved;
    /// nil when it is not inside.
    func relativeToRoot(_ path: String) -> String? {
        if root == "." { return SecretRules.normalised(path) }
        guard path.hasPrefix(root + "/") else { return nil }
        return SecretRules.normalised(String(path.dropFirst(root.count + 1)))
    }

    /// The real path of `path` (links resolved) relative to the real configuration folder, when it exists.
    func realRelativeToRoot(_ path: String) -> String? {
        guard let real = Self.realPath(path) else { return nil }
        let prefix = realRoot.hasSuffix("/") ? realRoot : realRoot + "/"
        return real.hasPrefix(prefix) ? String(real.dropFirst(prefix.count)) : nil
    }

    /// Reads a small referenced file (at most 1 MiB), as configuration files are read: a regular
    /// file only (never a FIFO or device, which could block or never end), opened without following
    /// a link at its last component. `resolve` has already kept links inside the folder; the file is
    /// opened at its real path, so a link swapped in after that is refused, not followed.
    func read(_ path: String, at node: Node, reader: Reader) -> [UInt8]? {
        guard let real = Self.realPath(path) else {
            reader.error("spec.file-not-found", "file '\(path)' does not exist", at: node,
                         help: "check the path; it is relative to the YAML file that names it")
            return nil
        }
        do {
            return try LocalConfigurationFileSystem().contents(of: real, limit: 1 << 20)
        } catch {
            if error.code == .tooLarge {
                reader.error("spec.file-too-large", "file '\(path)' is larger than 1 MiB", at: node,
                             help: "reference the certificate file itself, not a bundle")
            } else {
                reader.error("spec.file-unreadable", "file '\(path)' cannot be read", at: node,
                             help: "check that it is a regular file and readable")
            }
            return nil
        }
    }
}
