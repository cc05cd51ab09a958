public import Foundation
import Synchronization

/// What loading a configuration folder produced: the desired state (when there were no errors)
/// and every diagnostic, in a stable order.
public struct LoadResult: Sendable {
    public var configuration: Configuration?
    public var diagnostics: Diagnostics
    public var files: [String]
    public var documentCount: Int
}

/// Reads every `*.yaml` / `*.yml` under a folder (recursively, sorted), decodes and validates it.
///
/// Files are parsed in parallel; results are merged in file order, so output does not depend on
/// scheduling.
public struct ConfigurationLoader: Sendable {
    public var limits: LoaderLimits
    /// The moment validation treats as now (certificate and date expiry).
    public var now: Date
    /// Where folders are listed and files read (a test injects failures here).
    public var fileSystem: any ConfigurationFileSystem
    /// Called once for each file read and decoded, from the loading threads (progress on a terminal).
    public var onFileLoaded: (@Sendable () -> Void)?

    public init(limits: LoaderLimits = LoaderLimits(), now: Date = Date(),
                fileSystem: any ConfigurationFileSystem = LocalConfigurationFileSystem(), onFileLoaded: (@Sendable () -> Void)? = nil) {
        self.limits = limits
        self.now = now
        self.fileSystem = fileSystem
        self.onFileLoaded = onFileLoaded
    }

    /// A problem that stops loading before any file is read (missing folder, unreadable folder).
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var help: String
        public var description: String { message }
    }

    public func load(path: String) throws(Failure) -> LoadResult {
        var diagnostics = Diagnostics()
        let (root, files) = try discover(path, into: &diagnostics)
        let references = FileReferences(root: root)
        let results = Mutex<[FileResult?]>(Array(repeating: nil, count: files.count))
        // Values under keys that no document can have are not built; bytes and nodes count against one budget per run.
        let loader = YAMLLoader(limits: limits, shape: SpecFormat.documentShape, budget: InputBudget())
        let fileSystem = self.fileSystem
        let onFileLoaded = self.onFileLoaded
        DispatchQueue.concurrentPerform(iterations: files.count) { index in
            let result = Self.loadFile(files[index], loader: loader, references: references, fileSystem: fileSystem)
            results.withLock { $0[index] = result }
            onFileLoaded?()
        }
        var platforms: [PlatformSpec] = []
        var tenants: [TenantSpec] = []
        var documentCount = 0
        for case let result? in results.withLock({ $0 }) {
            diagnostics.append(contentsOf: result.diagnostics)
            platforms += result.platforms
            tenants += result.tenants
            documentCount += result.documentCount
        }
        if files.isEmpty {
            diagnostics.error("spec.no-files", "no *.yaml or *.yml files under '\(path)'", at: nil,
                              help: "point orgctl at the folder that holds your configuration")
        }
        let platform = checkPlatformCount(platforms, files: files, &diagnostics)
        tenants = checkTenantSlugs(tenants, &diagnostics)
        Validator.checkRenames(tenants.map { ($0.slug, $0.location, $0.previously) }, what: "tenant", in: "the configuration", &diagnostics)
        let today = Self.calendarDate(now)
        Validator(today: today, now: now.timeIntervalSince1970)
            .validate(platform: platform, tenants: tenants, diagnostics: &diagnostics)
        platform?.secrets?.check(tenants, files: references, into: &diagnostics)
        let configuration =
            diagnostics.hasErrors ? nil : Configuration(platform: platform, tenants: tenants, files: files)
        return LoadResult(configuration: configuration, diagnostics: diagnostics, files: files, documentCount: documentCount)
    }

    public static func calendarDate(_ date: Date) -> CalendarDate {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        let text = String(format: "%04d-%02d-%02d", c.year ?? 1970, c.month ?? 1, c.day ?? 1)
        return CalendarDate(parsing: text) ?? CalendarDate(parsing: "1970-01-01")!
    }

    private struct FileResult: Sendable {
        var diagnostics = Diagnostics()
        var platforms: [PlatformSpec] = []
        var tenants: [TenantSpec] = []
        var documentCount = 0
    }

    private static func loadFile(_ file: String, loader: YAMLLoader, references: FileReferences,
                                 fileSystem: any ConfigurationFileSystem) -> FileResult {
        var result = FileResult()
        // Only regular files are read (a FIFO named *.yaml would block forever), never through a link,
        // and an oversized file is refused from its size, before it is read into memory.
        let bytes: [UInt8]
        do {
            bytes = try fileSystem.contents(of: file, limit: loader.limits.maxFileBytes)
        } catch {
            let at = SourceLocation(file: file, line: 1, column: 1)
            switch error.code {
            case .tooLarge:
                result.diagnostics.error("spec.file-too-large", "file is larger than \(loader.limits.maxFileBytes >> 20) MiB",
                                         at: at, help: "split the configuration into several files")
            case .notRegular:
                result.diagnostics.error("spec.file-unreadable", "file '\(file)' is not a regular file: \(error.reason)", at: at,
                                         help: "configuration files must be regular files, not links, pipes, devices or sockets")
            case .unreadable:
                result.diagnostics.error("spec.file-unreadable", "file '\(file)' cannot be read: \(error.reason)", at: at,
                                         help: "make every file of the configuration readable (orgctl reads a configuration completely or not at all)")
            }
            return result
        }
        let documents = loader.load(bytes, file: file, into: &result.diagnostics)
        result.documentCount = documents.count
        let reader = Reader(file: file)
        let decoder = DocumentDecoder(reader: reader, files: references)
        for document in documents {
            switch decoder.decode(document) {
            case .platform(let platform): result.platforms.append(platform)
            case .tenant(let tenant): result.tenants.append(tenant)
            case nil: break
            }
        }
        result.diagnostics.append(contentsOf: reader.diagnostics)
        return result
    }

    /// The configuration's YAML files, sorted, and every reason the folder cannot be read completely.
    ///
    /// A folder that cannot be listed, a YAML file that is a symbolic link or not a regular file, and
    /// a link to a folder are errors, never skipped: a silently smaller configuration would have its
    /// missing tenants deleted by apply. Hidden entries (`.git`, `.github`) are not configuration.
    private func discover(_ path: String, into d: inout Diagnostics) throws(Failure) -> (root: String, files: [String]) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw Failure(message: "configuration path '\(path)' does not exist",
                          help: "pass the folder that holds your *.yaml files")
        }
        var isDirectory = info.st_mode & S_IFMT == S_IFDIR
        if info.st_mode & S_IFMT == S_IFLNK {
            // The path the user named may be a link (a checkout under a linked folder); what it names is read.
            var target = stat()
            guard stat(path, &target) == 0 else {
                throw Failure(message: "configuration path '\(path)' is a link to nothing", help: "pass the folder that holds your *.yaml files")
            }
            isDirectory = target.st_mode & S_IFMT == S_IFDIR
        }
        guard isDirectory else {
            let root = FilePath.folder(of: path)
            return (root.isEmpty ? "." : root, [path])
        }
        let root = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        var files: [String] = []
        var folders = [root]
        while let folder = folders.popLast() {
            let entries: [ConfigurationEntry]
            do {
                entries = try fileSystem.entries(of: folder)
            } catch {
                d.error("spec.folder-unreadable", "configuration folder '\(folder)' cannot be read: \(error.reason)", at: nil,
                        help: "make every folder of the configuration readable (orgctl reads a configuration completely or not at all)")
                continue
            }
            for entry in entries where !entry.name.hasPrefix(".") {
                let shown = folder == "." ? entry.name : folder + "/" + entry.name
                let isYAML = entry.name.hasSuffix(".yaml") || entry.name.hasSuffix(".yml")
                switch entry.kind {
                case .folder:
                    folders.append(shown)
                case .file:
                    if isYAML { files.append(shown) }
                case .symbolicLink:
                    var target = stat()
                    let pointsAtFolder = stat(shown, &target) == 0 && target.st_mode & S_IFMT == S_IFDIR
                    if isYAML {
                        d.error("spec.file-link", "configuration file '\(shown)' is a symbolic link", at: SourceLocation(file: shown, line: 1, column: 1),
                                help: "replace the link with the file itself: configuration files must be regular files inside the folder")
                    } else if pointsAtFolder {
                        d.error("spec.file-link", "'\(shown)' is a symbolic link to a folder, and links are not followed", at: nil,
                                help: "move the folder into the configuration instead of linking to it")
                    }
                case .special(let what):
                    if isYAML {
                        d.error("spec.file-unreadable", "configuration file '\(shown)' is \(what), not a regular file",
                                at: SourceLocation(file: shown, line: 1, column: 1),
                                help: "configuration files must be regular files, not pipes, devices or sockets")
                    }
                }
            }
        }
        files.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return (root, files)
    }

    private func checkPlatformCount(_ platforms: [PlatformSpec], files: [String], _ d: inout Diagnostics) -> PlatformSpec? {
        guard let first = platforms.first else {
            if !files.isEmpty {
                d.error("spec.no-platform", "the configuration has no 'kind: Platform' document", at: nil,
                        help: "add a platform.yaml with the plans, permissions and roles tenants refer to")
            }
            return nil
        }
        for extra in platforms.dropFirst() {
            d.error("spec.duplicate-platform", "the configuration has more than one Platform document", at: extra.location,
                    help: "keep exactly one Platform document", notes: [.init("first Platform document here", at: first.location)])
        }
        return first
    }

    private func checkTenantSlugs(_ tenants: [TenantSpec], _ d: inout Diagnostics) -> [TenantSpec] {
        var seen: [String: SourceLocation] = [:]
        var unique: [TenantSpec] = []
        unique.reserveCapacity(tenants.count)
        for tenant in tenants {
            if let first = seen[tenant.slug] {
                d.error("spec.duplicate-tenant", "tenant '\(tenant.slug)' is declared more than once", at: tenant.location,
                        help: "each tenant slug must be unique across all files", notes: [.init("first declared here", at: first)])
                continue
            }
            seen[tenant.slug] = tenant.location
            unique.append(tenant)
        }
        return unique.sorted { $0.slug < $1.slug }
    }
}

extension Configuration {
    /// How many resources (addressable things) the configuration declares.
    public var resourceCount: Int {
        var count = 0
        if let platform {
            count += platform.plans.count + platform.permissions.count + platform.roles.count + platform.events.count
        }
        for tenant in tenants {
            count += 1 + (tenant.roles?.count ?? 0) + (tenant.members?.count ?? 0) + (tenant.webhooks?.count ?? 0)
                + (tenant.apiKeys?.count ?? 0) + (tenant.sso?.providers?.count ?? 0)
            for team in tenant.teams ?? [] { count += 1 + (team.members?.count ?? 0) }
        }
        return count
    }
}
