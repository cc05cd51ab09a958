import Foundation
import Testing

/// The PostgreSQL server the tests may use: `ORGCTL_TEST_POSTGRES`, a connection URI of a database
/// where tests create and drop schemas of their own (`.ci/run` starts a throwaway cluster and
/// sets it). Queries go through `psql`, a client independent of orgctl's.
enum TestPostgres {
    /// The server's URI; nil after recording a failure that says how to start one, or when
    /// `ORGCTL_SKIP_POSTGRES=1` (developers only: CI never sets it) skips the test.
    static func uri(sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let uri = environment["ORGCTL_TEST_POSTGRES"], !uri.isEmpty { return uri }
        if environment["ORGCTL_SKIP_POSTGRES"] == "1" { return nil }
        Issue.record("""
            ORGCTL_TEST_POSTGRES is not set: start a throwaway PostgreSQL server with \
            `eval "$(tools/pg-cluster.sh start /tmp/orgctl-pg)"` (README, "Running the tests"), or set it to a connection \
            URI of a database of your own where tests may create schemas; ORGCTL_SKIP_POSTGRES=1 skips these tests
            """, sourceLocation: sourceLocation)
        return nil
    }

    static var psql: String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/psql" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/psql"
    }

    /// The rows `sql` returns, each a list of columns (NULL as `""`); throws when psql fails.
    static func rows(_ uri: String, _ sql: String) throws -> [[String]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: psql)
        process.arguments = ["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", uri, "-c", sql]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PsqlFailure(message: "psql \(sql): exit \(process.terminationStatus): \(String(decoding: message, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    struct PsqlFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
