import Foundation

/// Reads a state key file (`--state-key-file`, `--new-key-file`): a regular file of at most
/// ``maxBytes`` bytes. The path may be a symbolic link (secret mounts are), but what it names
/// must be a file: a FIFO would block the command forever, a device (`/dev/zero`) or a huge file
/// would be read into memory whole before being refused as "not a usable key".
enum KeyFile {
    /// Far more than a key written as base64 (44 characters) or hex (64 digits), with a newline,
    /// a byte order mark or a carriage return.
    static let maxBytes = 4096

    struct Failure: Error {
        var message: String
        var help: String
    }

    /// The file's bytes; `named` says which key in messages ("state key", "new state key").
    static func read(_ path: String, named: String) throws(Failure) -> Data {
        let shown = TerminalText.escape(path)
        let readable = "check the path and its permissions (it should be readable only by you: chmod 600)"
        // O_NONBLOCK: opening a FIFO with no writer returns at once (and is refused below).
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw Failure(message: "cannot read the \(named) file '\(shown)': \(String(cString: strerror(errno)))", help: readable)
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw Failure(message: "cannot read the \(named) file '\(shown)': \(String(cString: strerror(errno)))", help: readable)
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            let kind = [S_IFDIR: "a folder", S_IFIFO: "a FIFO", S_IFCHR: "a device", S_IFBLK: "a device", S_IFSOCK: "a socket"][status.st_mode & S_IFMT] ?? "not a regular file"
            throw Failure(message: "the \(named) file '\(shown)' is \(kind), not a file holding a key",
                          help: "pass a file holding the key (for a new key: (umask 077 && openssl rand -base64 32 > FILE)), or set the key in the environment")
        }
        guard status.st_size <= maxBytes else {
            throw Failure(message: "the \(named) file '\(shown)' holds \(status.st_size) bytes; a state key file holds one key (44 base64 characters or 64 hex digits)",
                          help: "check that the path names the key file (for a new key: (umask 077 && openssl rand -base64 32 > FILE))")
        }
        var bytes = [UInt8](repeating: 0, count: maxBytes + 1)
        var count = 0
        while count < bytes.count {
            let got = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return Foundation.read(descriptor, base + count, buffer.count - count)
            }
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else {
                throw Failure(message: "cannot read the \(named) file '\(shown)': \(String(cString: strerror(errno)))", help: readable)
            }
            if got == 0 { break }
            count += got
        }
        // A file that grew after fstat is refused as well.
        guard count <= maxBytes else {
            throw Failure(message: "the \(named) file '\(shown)' holds more than \(maxBytes) bytes; a state key file holds one key (44 base64 characters or 64 hex digits)",
                          help: "check that the path names the key file (for a new key: (umask 077 && openssl rand -base64 32 > FILE))")
        }
        return Data(bytes[0..<count])
    }
}
