import Foundation
import Postgres
import Testing

/// The server the tests use: `ORGCTL_TEST_POSTGRES` (a conninfo), as printed by
/// `tools/pg-cluster.sh start DIR` (which .ci/run runs). Unset, every test fails with a message
/// saying how to start one, unless `ORGCTL_SKIP_POSTGRES=1` is set explicitly (then the suites
/// are skipped: for developers without a server; CI never sets it).
enum TestServer {
    static let environment = ProcessInfo.processInfo.environment

    /// True only when a developer asked to skip and gave no server.
    static var skipped: Bool {
        (environment["ORGCTL_TEST_POSTGRES"] ?? "").isEmpty && environment["ORGCTL_SKIP_POSTGRES"] == "1"
    }

    struct NotConfigured: Error, CustomStringConvertible {
        var name: String
        var description: String {
            "\(name) is not set: start a throwaway server with `eval \"$(tools/pg-cluster.sh start /tmp/orgctl-pg)\"` "
                + "(stop it with `tools/pg-cluster.sh stop /tmp/orgctl-pg`), or point ORGCTL_TEST_POSTGRES at a server "
                + "of your own; set ORGCTL_SKIP_POSTGRES=1 to skip the PostgreSQL tests"
        }
    }

    static func variable(_ name: String) throws -> String {
        guard let value = environment[name], !value.isEmpty else { throw NotConfigured(name: name) }
        return value
    }

    /// The superuser conninfo (Unix socket, trust).
    static func conninfo() throws -> String { try variable("ORGCTL_TEST_POSTGRES") }

    static func connect(applicationName: String? = "orgctl-tests") throws -> PostgresConnection {
        try PostgresConnection(conninfo: try conninfo(), applicationName: applicationName)
    }

    /// The TCP URI of the password role (`orgctl_pw`) and its password.
    static func passwordRole() throws -> (uri: String, password: String) {
        (try variable("ORGCTL_TEST_POSTGRES_TCP"), try variable("ORGCTL_TEST_POSTGRES_PASSWORD"))
    }

    /// The TCP URI with the password written into it (user:password@).
    static func passwordRoleURI(password: String) throws -> String {
        let (uri, _) = try passwordRole()
        return uri.replacingOccurrences(of: "orgctl_pw@", with: "orgctl_pw:\(password)@")
    }

    /// A fresh schema for one test, dropped afterwards; `body` gets a connection whose search_path
    /// is that schema.
    static func withSchema<T>(_ body: (PostgresConnection, String) throws -> T) throws -> T {
        let connection = try connect()
        let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try connection.executeScript("CREATE SCHEMA \(schema); SET search_path TO \(schema)")
        defer {
            try? connection.executeScript("DROP SCHEMA \(schema) CASCADE")
            connection.close()
        }
        return try body(connection, schema)
    }

    /// A loopback TCP port nothing listens on (bound, then released).
    static func unusedPort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
