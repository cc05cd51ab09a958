import Foundation
import Testing

/// tools/pg-cluster.sh: shellcheck-clean, and never removes a folder it did not make.
@Suite struct ClusterScriptTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let script = root.appendingPathComponent("tools/pg-cluster.sh").path

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func passesShellcheck() throws {
        let available = FileManager.default.isExecutableFile(atPath: "/usr/bin/shellcheck")
        if !available {
            // CI installs shellcheck (.ci/run); elsewhere a missing checker is not a failure.
            #expect(ProcessInfo.processInfo.environment["CI"] == nil, "shellcheck is missing: apt-get install shellcheck")
            return
        }
        let result = try Self.run("shellcheck", [Self.script])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func stopRefusesAFolderItDidNotMake() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pg-cluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let precious = folder.appendingPathComponent("precious.txt")
        #expect(FileManager.default.createFile(atPath: precious.path, contents: Data("keep".utf8)))
        let stop = try Self.run("bash", [Self.script, "stop", folder.path])
        #expect(stop.status == 1)
        #expect(stop.output.contains("not made by this script"))
        #expect(FileManager.default.fileExists(atPath: precious.path))
        let start = try Self.run("bash", [Self.script, "start", folder.path])
        #expect(start.status == 1)
        #expect(FileManager.default.fileExists(atPath: precious.path))
        // A missing folder: nothing to stop, no error.
        #expect(try Self.run("bash", [Self.script, "stop", folder.path + "-missing"]).status == 0)
        #expect(try Self.run("bash", [Self.script, "start", "/tmp/bad name"]).status == 1)
        #expect(try Self.run("bash", [Self.script]).status == 64)
    }
}
