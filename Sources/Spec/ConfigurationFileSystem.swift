import Foundation

/// What a configuration folder holds, as the loader sees it: the seam through which every folder
/// listing and file read of `ConfigurationLoader` goes, so tests can inject the failures that a
/// root test runner cannot provoke with permissions (a folder or file that cannot be read).
public protocol ConfigurationFileSystem: Sendable {
    /// The entries of `folder` (names only, no `.` or `..`), each with its own type (links not followed).
    func entries(of folder: String) throws(ConfigurationFileSystemError) -> [ConfigurationEntry]
    /// The contents of the regular file at `path`, refused when it is anything else (a link, a FIFO,
    /// a device), when it cannot be read, or when it is larger than `limit` bytes.
    func contents(of path: String, limit: Int) throws(ConfigurationFileSystemError) -> [UInt8]
}

public struct ConfigurationEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file, folder, symbolicLink
        /// A FIFO, a device, a socket: named in messages ("a named pipe").
        case special(String)
    }

    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// Why a folder or file could not be listed or read; `reason` is worded to follow "cannot be read: ".
public struct ConfigurationFileSystemError: Error, Sendable, Equatable {
    public enum Code: Sendable, Equatable { case unreadable, notRegular, tooLarge }
    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }
}

/// The real file system, through POSIX calls: `lstat` for types, `open(O_NOFOLLOW|O_NONBLOCK)` and
/// `fstat` for reads, so a link or a FIFO swapped in after the listing is still refused and never blocks.
public struct LocalConfigurationFileSystem: ConfigurationFileSystem {
    public init() {}

    public func entries(of folder: String) throws(ConfigurationFileSystemError) -> [ConfigurationEntry] {
        guard let directory = opendir(folder) else { throw Self.failure(errno) }
        defer { closedir(directory) }
        var result: [ConfigurationEntry] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                if errno != 0 { throw Self.failure(errno) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var info = stat()
            guard lstat(folder + "/" + name, &info) == 0 else {
                throw ConfigurationFileSystemError(.unreadable, "'\(name)' in it cannot be examined (\(Self.describe(errno)))")
            }
            result.append(ConfigurationEntry(name: name, kind: Self.kind(info.st_mode)))
        }
        return result
    }

    public func contents(of path: String, limit: Int) throws(ConfigurationFileSystemError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ELOOP { throw ConfigurationFileSystemError(.notRegular, "it is a symbolic link") }
            throw Self.failure(code)
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw Self.failure(errno) }
        let kind = Self.kind(info.st_mode)
        guard kind == .file else {
            if case .special(let what) = kind { throw ConfigurationFileSystemError(.notRegular, "it is \(what)") }
            throw ConfigurationFileSystemError(.notRegular, "it is not a regular file")
        }
        guard Int(info.st_size) <= limit else { throw ConfigurationFileSystemError(.tooLarge, "it is larger than \(limit) bytes") }
        // One byte more than the size, so the read that finds the end needs no larger buffer (no copy of a large file).
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size) + 1)
        var filled = 0
        while true {
            if filled == bytes.count {
                // The file grew after fstat: read on, within the limit.
                guard bytes.count <= limit else { throw ConfigurationFileSystemError(.tooLarge, "it is larger than \(limit) bytes") }
                bytes.append(contentsOf: repeatElement(0, count: max(4096, min(bytes.count, limit + 1 - bytes.count))))
            }
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Self.failure(errno)
            }
            if count == 0 { break }
            filled += count
        }
        guard filled <= limit else { throw ConfigurationFileSystemError(.tooLarge, "it is larger than \(limit) bytes") }
        bytes.removeSubrange(filled...)
        return bytes
    }

    static func kind(_ mode: mode_t) -> ConfigurationEntry.Kind {
        switch mode & S_IFMT {
        case S_IFREG: .file
        case S_IFDIR: .folder
        case S_IFLNK: .symbolicLink
        case S_IFIFO: .special("a named pipe (FIFO)")
        case S_IFCHR: .special("a character device")
        case S_IFBLK: .special("a block device")
        case S_IFSOCK: .special("a socket")
        default: .special("not a regular file")
        }
    }

    static func describe(_ code: Int32) -> String {
        switch code {
        case EACCES, EPERM: "permission denied"
        case ENOENT: "it disappeared while being read"
        case ENOTDIR: "it is not a folder"
        case EIO: "input/output error"
        default: String(cString: strerror(code)).lowercased()
        }
    }

    static func failure(_ code: Int32) -> ConfigurationFileSystemError {
        ConfigurationFileSystemError(.unreadable, describe(code))
    }
}
