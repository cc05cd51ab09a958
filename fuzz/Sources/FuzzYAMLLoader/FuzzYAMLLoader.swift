// libFuzzer target for the configuration loader: bytes -> YAMLLoader -> DocumentDecoder ->
// Validator, i.e. what `ConfigurationLoader.load(path:)` does for one file, without the disk.
//
// Built by fuzz/build.sh (swiftc, -sanitize=fuzzer,address, Spec compiled with -enable-testing);
// libFuzzer provides `main`. See fuzz/README.md.
#if FUZZ_PUBLIC_API
    import Spec
#else
    @testable import Spec
#endif
import Foundation

/// A configuration folder made once per process: `{file: certs/idp.pem}` references in the
/// input resolve inside it, so certificate reading and X.509 parsing are reached too.
let fixture: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let folder = "\(base)/orgctl-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: folder + "/certs", withIntermediateDirectories: true)
    let made = FileManager.default.createFile(atPath: folder + "/certs/idp.pem", contents: Data(examplePEM.utf8))
        && FileManager.default.createFile(atPath: folder + "/secret.txt", contents: Data("s3cret\n".utf8))
    precondition(made, "cannot create the fixture folder \(folder)")
    atexit { try? FileManager.default.removeItem(atPath: fixture) }
    return folder
}()

let yamlPath = fixture + "/fuzz.yaml"
/// FUZZ_PRINT=1 prints each input's diagnostics (to see what a reproducer does).
let printDiagnostics = ProcessInfo.processInfo.environment["FUZZ_PRINT"] == "1"
/// A fixed "now" (2026-01-01T00:00:00Z): the same input always gives the same result.
let now = Date(timeIntervalSince1970: 1_767_225_600)

#if FUZZ_PUBLIC_API

    /// Public-API variant: the input is written to a tmpfs file and loaded from there.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        let fd = open(yamlPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "cannot write \(yamlPath)")
        var written = 0
        while written < size {
            let n = write(fd, data + written, size - written)
            precondition(n > 0, "short write to \(yamlPath)")
            written += n
        }
        close(fd)
        guard let result = try? ConfigurationLoader(now: now).load(path: yamlPath) else { return 0 }
        check(result.diagnostics, hasConfiguration: result.configuration != nil)
        _ = result.configuration?.resourceCount
        return 0
    }

#else

    let references = FileReferences(root: fixture)
    let today = ConfigurationLoader.calendarDate(now)

    /// The in-memory variant (the default): the same steps as `ConfigurationLoader.load(path:)`
    /// for a folder holding one file, minus reading it from disk.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        let bytes = Array(UnsafeBufferPointer(start: data, count: size))
        var diagnostics = Diagnostics()
        let documents = YAMLLoader().load(bytes, file: yamlPath, into: &diagnostics)
        let reader = Reader(file: yamlPath)
        let decoder = DocumentDecoder(reader: reader, files: references)
        var platforms: [PlatformSpec] = []
        var tenants: [TenantSpec] = []
        for document in documents {
            switch decoder.decode(document) {
            case .platform(let platform): platforms.append(platform)
            case .tenant(let tenant): tenants.append(tenant)
            case nil: break
            }
        }
        diagnostics.append(contentsOf: reader.diagnostics)
        // ConfigurationLoader.checkPlatformCount / checkTenantSlugs are private: the same
        // outcome (an error without a Platform, the first Platform, the first tenant per slug,
        // sorted by slug) is produced here; their messages are not fuzz targets.
        if platforms.isEmpty {
            diagnostics.error("spec.no-platform", "the configuration has no 'kind: Platform' document", at: nil)
        }
        var seen = Set<String>()
        let unique = tenants.filter { seen.insert($0.slug).inserted }.sorted { $0.slug < $1.slug }
        Validator(today: today, now: now.timeIntervalSince1970)
            .validate(platform: platforms.first, tenants: unique, diagnostics: &diagnostics)
        let configuration =
            diagnostics.hasErrors ? nil : Configuration(platform: platforms.first, tenants: unique, files: [yamlPath])
        check(diagnostics, hasConfiguration: configuration != nil)
        _ = configuration?.resourceCount
        return 0
    }

#endif

/// Properties every result must have, whatever the input: a violation stops the fuzzer like a crash.
func check(_ diagnostics: Diagnostics, hasConfiguration: Bool) {
    if printDiagnostics {
        for d in diagnostics.items { print("\(d.location.map(String.init(describing:)) ?? "-"): \(d.severity.rawValue)[\(d.id)]: \(d.message)") }
        print("configuration: \(hasConfiguration ? "yes" : "no"), \(diagnostics.items.count) diagnostic(s)")
    }
    precondition(hasConfiguration == !diagnostics.hasErrors, "a configuration must come back exactly when there are no errors")
    for diagnostic in diagnostics.items {
        precondition(!diagnostic.id.isEmpty && !diagnostic.message.isEmpty, "diagnostic without id or message: \(diagnostic)")
        for location in [diagnostic.location].compactMap({ $0 }) + diagnostic.notes.compactMap(\.location) {
            precondition(location.line >= 1 && location.column >= 1, "diagnostic at \(location): \(diagnostic.message)")
        }
    }
}

/// examples/config/certs/acme-okta.pem (a self-signed example certificate, valid until 2046).
let examplePEM = """
-----BEGIN CERTIFICATE-----
MIIDPzCCAiegAwIBAgIUD3JumANOUvGXrXrUVQn6XBYzO4YwDQYJKoZIhvcNAQEL
BQAwLzEWMBQGA1UEAwwNYWNtZS5va3RhLmNvbTEVMBMGA1UECgwMT2t0YSBFeGFt
cGxlMB4XDTI2MTEyMjE5MjU0MFoXDTQ2MTExNzE5MjU0MFowLzEWMBQGA1UEAwwN
YWNtZS5va3RhLmNvbTEVMBMGA1UECgwMT2t0YSBFeGFtcGxlMIIBIjANBgkqhkiG
9w0BAQEFAAOCAQ8AMIIBCgKCAQEApb+RqXsb9i3oLjATru5xo5UbYz673XCNw5qQ
LSU6wTNx2FDb/142OUP97SY6Y6zQ6Slo0Y5+EuXM47ib0PXzcOS1LsVzqvHK7QBq
iUyc+Mq47zarnU5u9ILtQuxbt9WP0iv2TUwrN+ayBH4yK+eOg58QThduvVQ6oazh
F80m6/FfrxpHlt1W7T1A7ES+3VNTmxxuwpKW330I+n4l3qLv0JiRNRB2sbxqdUuC
4+P+T6NLo2Bxnw0ZDaZl1r3umO95p0nhxi1qQfjZC7s7QaVsaSl8NHM4hSKKTEYT
Y9rGcYpRAXjgQbRR+NIl3oHgvgGfVf4mXY2s4iG6JEK1F9UHvwIDAQABo1MwUTAd
BgNVHQ4EFgQUMGEv6OBAOKTX1EB+DLbCoor1pB4wHwYDVR0jBBgwFoAUMGEv6OBA
OKTX1EB+DLbCoor1pB4wDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOC
AQEANyR8kXn3/1+OpFf2J5odIZIvEa5QDctSwn7dcK8lRbdAzEupOZqX3qAl7Q5y
EBGq4PDNEelPsxECYNJBMYyZXy09lDgjv2NbuHcDYQ3IJa3416r065pQczSyVKVj
K/oItRbMz2cWfx0OYKNty7N1B7Yv3xs1kfdrLpWZUTyL28ZdKL4kj0HtxIesBjIq
QhIPXVhaXAidPFWBS39W1cpdccbdPMlJkawlnzrhllm6hyxS2SiGRXdaT+xeAqjA
g/AOGNIe8knEhshz5eYTgg3PT6zN6nYJxUgyveDW/ftAqohDZKUA8LC1g5D/Talb
njnCol48/iejO0Fp9DKoNO+VUQ==
-----END CERTIFICATE-----
"""
