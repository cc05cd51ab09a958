import Foundation
import Spec
import StateStore

/// `orgctl export --state DB OUT`: write a configuration folder from the stored state.
enum ExportCommand {
    static let spec = CommandSpec(
        name: "export",
        abstract: "Write a configuration folder (platform.yaml, one file per tenant) from the state database.",
        discussion: """
            Reads the state database (read-only) and writes OUT/platform.yaml, OUT/tenants/<slug>.yaml and \
            OUT/certs/<tenant>-<provider>.pem, so that 'orgctl plan OUT' against the same database shows no changes. \
            Secrets cannot be exported: each becomes {env: NAME} with a comment; set every NAME listed on standard \
            error to the secret's value before planning. Existing files are never overwritten unless --force is given. \
            Works on a platform database that orgctl did not create, as the first step of adopting it.
            Exit status: 0 written, 1 error (nothing was written), 64 usage error.
            """,
        arguments: [ArgumentSpec("out", help: "The folder to write (created if needed).")],
        options: [
            .flag("force", help: "Overwrite files that already exist in OUT."),
        ] + StateAccess.readOptions)

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let out = command.argument("out") ?? "."
        let console = context.console
        let path = StateAccess.display(command, context)
        guard StateAccess.location(command, context).exists else {
            throw CommandFailure(message: "the state database '\(path)' does not exist; there is nothing to export",
                                 help: "pass the database with --state (or ORGCTL_STATE)")
        }
        let store = try StateAccess.open(command, context, access: .readOnly, key: try StateAccess.key(command, context))
        let stored = try StateAccess.read(store)
        guard !stored.resources.isEmpty else {
            throw CommandFailure(message: "the state database '\(path)' holds no resources; there is nothing to export",
                                 help: "check the path given by --state")
        }
        let exporter = ConfigurationExporter(resources: stored.resources.map(\.resource))
        let force = command.flag("force")
        let folder = try ExportFolder(out)
        // Checked before anything is written: a symbolic link anywhere export writes or passes through
        // (a folder or a file, dangling or not) is refused, --force or not, and so is a file that exists
        // without --force.
        let links = exporter.files.flatMap { folder.links(on: $0.path) }.uniqued()
        if !links.isEmpty {
            throw CommandFailure(message: "export refuses to write through symbolic links in '\(out)': \(Self.list(links)); nothing was written",
                                 help: "export into a new or empty folder, or remove the links")
        }
        if !force {
            let existing = exporter.files.map(\.path).filter { folder.exists($0) }
            if !existing.isEmpty {
                throw CommandFailure(message: "export would overwrite \(Self.list(existing)) in '\(out)'; nothing was written",
                                     help: "export into a new or empty folder, or pass --force to overwrite")
            }
        }
        for file in exporter.files {
            try folder.write(file.path, Data(file.text.utf8), replacing: force)
        }
        let tenants = exporter.files.count { $0.path.hasPrefix("tenants/") }
        let shown = TerminalText.escape(out)
        console.print("Exported \(stored.resources.count) resources (\(tenants) tenant\(tenants == 1 ? "" : "s")) to \(shown).")
        if !exporter.secrets.isEmpty {
            console.info("Set these environment variables to the secrets' values before 'orgctl plan \(shown)':")
            let variables = PlanRenderer.aligned(exporter.secrets.map { TerminalText.escape($0.variable) })
            for (secret, variable) in zip(exporter.secrets, variables) {
                console.info("  \(variable)  (\(TerminalText.escape(secret.address)) \(TerminalText.escape(secret.attribute)))")
            }
        }
        if store?.isUnadopted ?? false {
            console.info("This database was not written by orgctl. Review \(shown), then adopt it with: orgctl apply \(shown) --state \(TerminalText.escape(path)) --adopt")
        }
        return ExitCode.success
    }

    static func list(_ paths: [String]) -> String {
        paths.prefix(5).map { "'\($0)'" }.joined(separator: ", ") + (paths.count > 5 ? ", … (\(paths.count) in all)" : "")
    }
}

/// The folder `export` writes, opened once: every file is created relative to it, one path
/// component at a time with `O_NOFOLLOW` (`openat`/`mkdirat`), so neither a link planted before
/// the export nor one swapped in while it runs can send a write outside the folder.
final class ExportFolder {
    let path: String
    private let descriptor: Int32

    /// Creates OUT (and its parents) if needed and opens it; OUT itself must not be a symbolic link.
    init(_ path: String) throws {
        self.path = path
        var status = stat()
        if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFLNK {
            throw CommandFailure(message: "'\(path)' is a symbolic link; export writes only into a real folder, and nothing was written",
                                 help: "pass the folder the link points to, or a new folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure(message: "cannot create the folder '\(path)': \(error.localizedDescription)",
                                 help: "check the folder and its permissions")
        }
        descriptor = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CommandFailure(message: "cannot open the folder '\(path)': \(String(cString: strerror(errno)))",
                                 help: "check the folder and its permissions")
        }
    }

    deinit { close(descriptor) }

    /// The paths (relative to OUT) that are symbolic links on the way to `relative`, the file included.
    func links(on relative: String) -> [String] {
        var found: [String] = []
        var prefix = ""
        for component in relative.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + component
            var status = stat()
            guard fstatat(descriptor, prefix, &status, AT_SYMLINK_NOFOLLOW) == 0 else { break }
            if status.st_mode & S_IFMT == S_IFLNK { found.append(prefix) }
        }
        return found
    }

    /// Whether something exists at `relative` (a link counts, dangling or not).
    func exists(_ relative: String) -> Bool {
        var status = stat()
        return fstatat(descriptor, relative, &status, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// Writes `data` to `relative`, creating its folders. A new file is created exclusively; with
    /// `replacing`, an existing regular file is replaced by renaming a new file over it (never
    /// written through, so a hard link to a file elsewhere is not changed).
    func write(_ relative: String, _ data: Data, replacing: Bool) throws {
        var components = relative.split(separator: "/").map(String.init)
        let name = components.removeLast()
        var folder = dup(descriptor)
        defer { close(folder) }
        for component in components {
            if mkdirat(folder, component, 0o755) != 0, errno != EEXIST { throw failure(relative, "cannot create its folder") }
            let next = openat(folder, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { throw failure(relative, errno == ELOOP || errno == ENOTDIR ? "'\(component)' is not a real folder" : nil) }
            close(folder)
            folder = next
        }
        let temporary = replacing ? ".\(name).orgctl-export.tmp" : name
        if replacing {
            var status = stat()
            if fstatat(folder, name, &status, AT_SYMLINK_NOFOLLOW) == 0, status.st_mode & S_IFMT != S_IFREG {
                throw failure(relative, "it is not a regular file")
            }
            unlinkat(folder, temporary, 0)
        }
        let fd = openat(folder, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure(relative, errno == EEXIST ? "it already exists" : nil) }
        defer { close(fd) }
        if let reason = FileOutput.writeAll(fd, data) {
            unlinkat(folder, temporary, 0)
            throw failure(relative, reason)
        }
        if replacing, renameat(folder, temporary, folder, name) != 0 {
            let error = failure(relative, nil)
            unlinkat(folder, temporary, 0)
            throw error
        }
    }

    private func failure(_ relative: String, _ reason: String?) -> CommandFailure {
        CommandFailure(message: "cannot write '\((path as NSString).appendingPathComponent(relative))': \(reason ?? String(cString: strerror(errno)))",
                       help: "check the folder and its permissions; export refuses symbolic links inside OUT")
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen: Set<Element> = []
        return filter { seen.insert($0).inserted }
    }
}
