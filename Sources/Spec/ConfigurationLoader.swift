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

    public init(limits: LoaderLimits = LoaderLimits(), now: Date = Date()) {
        self.limits = limits
        self.now = now
    }

    /// A problem that stops loading before any file is read (missing folder, unreadable folder).
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var help: String
        public var description: String { message }
    }

    public func load(path: String) throws(Failure) -> LoadResult {
        let (root, files) = try discover(path)
        let references = FileReferences(root: root)
        let results = Mutex<[FileResult?]>(Array(repeating: nil, count: files.count))
        let loader = YAMLLoader(limits: limits)
        DispatchQueue.concurrentPerform(iterations: files.count) { index in
            let result = Self.loadFile(files[index], loader: loader, references: references)
            results.withLock { $0[index] = result }
        }
        var diagnostics = Diagnostics()
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
        let configuration =
            diagnostics.hasErrors ? nil : Configuration(platform: platform, tenants: tenants, files: files)
        return LoadResult(configuration: configuration, diagnostics: diagnostics, files: files, documentCount: documentCount)
    }

    static func calendarDate(_ date: Date) -> CalendarDate {
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

    private static func loadFile(_ file: String, loader: YAMLLoader, references: FileReferences) -> FileResult {
        var result = FileResult()
        // Only regular files are read: a FIFO named *.yaml would block forever. An oversized file is
        // refused from its size, before it is read into memory.
        guard let size = FileReferences.regularFileSize(file) else {
            result.diagnostics.error("spec.file-unreadable", "file '\(file)' is not a regular file",
                                     at: SourceLocation(file: file, line: 1, column: 1),
                                     help: "configuration files must be regular files, not pipes, devices or sockets")
            return result
        }
        if size > loader.limits.maxFileBytes {
            result.diagnostics.error("spec.file-too-large", "file is larger than \(loader.limits.maxFileBytes >> 20) MiB",
                                     at: SourceLocation(file: file, line: 1, column: 1), help: "split the configuration into several files")
            return result
        }
        // FileHandle rather than FileManager.contents(atPath:), which leaks a page per empty file on Linux.
        guard let handle = FileHandle(forReadingAtPath: file), let data = try? handle.readToEnd() ?? Data() else {
            result.diagnostics.error("spec.file-unreadable", "file '\(file)' cannot be read", at: nil,
                                     help: "check the file's permissions")
            return result
        }
        let documents = loader.load([UInt8](data), file: file, into: &result.diagnostics)
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

    private func discover(_ path: String) throws(Failure) -> (root: String, files: [String]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Failure(message: "configuration path '\(path)' does not exist",
                          help: "pass the folder that holds your *.yaml files")
        }
        guard isDirectory.boolValue else {
            let root = (path as NSString).deletingLastPathComponent
            return (root.isEmpty ? "." : root, [path])
        }
        let root = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        let realRoot = FileReferences.realPath(root) ?? root
        guard let enumerator = FileManager.default.enumerator(
            at: URL(fileURLWithPath: root), includingPropertiesForKeys: [.isRegularFileKey, .isSymbolicLinkKey],
            options: [.skipsHiddenFiles])
        else {
            throw Failure(message: "configuration folder '\(path)' cannot be read", help: "check the folder's permissions")
        }
        var files: [String] = []
        let base = URL(fileURLWithPath: root).standardizedFileURL.path
        for case let url as URL in enumerator {
            let ext = url.pathExtension
            guard ext == "yaml" || ext == "yml" else { continue }
            let full = url.standardizedFileURL.path
            guard full.hasPrefix(base) else { continue }
            var relative = String(full.dropFirst(base.count))
            if relative.hasPrefix("/") { relative.removeFirst() }
            let shown = root == "." ? relative : root + "/" + relative
            // A YAML file that is a link to somewhere outside the folder is not part of it.
            if let real = FileReferences.realPath(shown), !real.hasPrefix(realRoot + "/") { continue }
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: shown, isDirectory: &isDir), isDir.boolValue { continue }
            files.append(shown)
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
