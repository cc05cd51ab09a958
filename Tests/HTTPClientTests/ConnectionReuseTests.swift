import Foundation
import Testing

@testable import HTTPClient

/// Kept-alive connections and the address check (docs/webhooks.md#ssrf-checked-at-the-moment-of-delivery):
/// two real HTTPS receivers (tools/webhook_receiver.py) on the same port of two loopback addresses
/// play one host name before and after a DNS change.
@Suite("HTTPClient connection reuse", .serialized)
struct ConnectionReuseTests {
    static let host = "hooks.example.com"
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    final class Receiver {
        let process: Process
        let port: Int
        let log: String

        init(folder: String, name: String, bind: String, port: Int) throws {
            log = "\(folder)/\(name).jsonl"
            let portFile = "\(folder)/\(name).port"
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", ConnectionReuseTests.root.appendingPathComponent("tools/webhook_receiver.py").path,
                                 "--cert", "\(folder)/server.pem", "--key", "\(folder)/server.key", "--secret-env", "REUSE_TEST_SECRET",
                                 "--log", log, "--port-file", portFile, "--bind", bind, "--port", String(port)]
            process.environment = ProcessInfo.processInfo.environment.merging(["REUSE_TEST_SECRET": "whsec_" + Data(repeating: 1, count: 32).base64EncodedString()]) { $1 }
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            var found: Int?
            for _ in 0..<200 {
                if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let value = Int(text) {
                    found = value
                    break
                }
                usleep(50_000)
            }
            self.port = try #require(found, "the receiver on \(bind) did not start (python3 with the standardwebhooks package is required)")
        }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        /// The connection number of each request received, in order.
        var connections: [Int] {
            guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
            return text.split(separator: "\n").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["connection"] as? Int
            }
        }
    }

    static func certificates(in folder: String) throws {
        func openssl(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0, "openssl \(arguments)")
        }
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(folder)/ca.key",
                     "-out", "\(folder)/ca.pem", "-days", "2", "-subj", "/CN=reuse test CA"])
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(folder)/server.key",
                     "-out", "\(folder)/server.csr", "-subj", "/CN=\(host)"])
        try "subjectAltName=DNS:\(host)\nbasicConstraints=CA:FALSE\n".write(toFile: "\(folder)/ext.cnf", atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "\(folder)/server.csr", "-CA", "\(folder)/ca.pem", "-CAkey", "\(folder)/ca.key", "-CAcreateserial",
                     "-out", "\(folder)/server.pem", "-days", "2", "-extfile", "\(folder)/ext.cnf"])
    }

    @Test("a kept-alive connection is reused, but not once the host resolves to another address")
    func dnsChangeClosesKeptAliveConnections() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-reuse-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.certificates(in: folder)
        let before = try Receiver(folder: folder, name: "before", bind: "127.0.0.1", port: 0)
        let after = try Receiver(folder: folder, name: "after", bind: "127.0.0.2", port: before.port)

        var options = HTTPClient.Options()
        options.allowPrivate = [try #require(AllowedNetwork("127.0.0.0/8"))]
        options.caFile = "\(folder)/ca.pem"
        options.resolve = [try #require(ResolveOverride("\(Self.host):\(before.port):127.0.0.1"))]
        let client = try #require(HTTPClient(options: options))
        let request = HTTPRequest(url: "https://\(Self.host):\(before.port)/reuse/ok", headers: [("content-type", "application/json")],
                                  body: Array("{}".utf8), timeoutSeconds: 10)
        func post() throws -> HTTPResponse {
            switch client.post(request) {
            case .success(let response): return response
            case .failure(let failure): throw failure
            }
        }
        #expect(try post().status == 200)
        #expect(try post().status == 200)
        // Two requests on one connection.
        #expect(before.connections == [1, 1])
        #expect(client.connectionsOpened == 1)

        // The name now resolves to another address: the connection to the old one is not reused.
        client.options.resolve = [try #require(ResolveOverride("\(Self.host):\(before.port):127.0.0.2"))]
        let moved = try post()
        #expect(moved.status == 200 && moved.address == "127.0.0.2")
        #expect(before.connections == [1, 1], "a request went to the address the name no longer resolves to")
        #expect(after.connections == [1])
        #expect(try post().status == 200)
        #expect(after.connections == [1, 1])
        #expect(client.connectionsOpened == 2)
    }
}
