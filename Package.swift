// swift-tools-version: 6.0
import PackageDescription

// orgctl has no Swift package dependencies: C libraries come in through system-library
// targets only (libyaml, libsqlite3, OpenSSL libcrypto, libpq, libcurl), each imported by exactly one
// Swift module.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "orgctl",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "orgctl", targets: ["orgctl"])
    ],
    targets: [
        // MARK: C libraries (system-library targets, discovered through pkg-config)
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"]), .brew(["libyaml"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]),
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"]), .brew(["libpq"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"])]),
        // The commit orgctl is built from, as a C define (see its shim.h); no library is linked.
        .systemLibrary(name: "CBuildInfo"),

        // MARK: Library modules
        .target(name: "Crypto", dependencies: ["CCrypto"], swiftSettings: strict),
        .target(name: "Spec", dependencies: ["CYAML", "Crypto"], swiftSettings: strict),
        .target(name: "Audit", dependencies: ["Crypto"], swiftSettings: strict),
        .target(name: "Postgres", dependencies: ["CPostgres"], swiftSettings: strict),
        .target(name: "StateStore", dependencies: ["Spec", "Audit", "Crypto", "CSQLite", "Postgres"], swiftSettings: strict),
        .target(name: "Reconciler", dependencies: ["Spec", "StateStore", "Audit", "Crypto"], swiftSettings: strict),
        .target(name: "HTTPClient", dependencies: ["Spec", "CCurl"], swiftSettings: strict),
        .target(name: "OrgctlCLI", dependencies: ["Spec", "StateStore", "Reconciler", "Audit", "Crypto", "CBuildInfo", "HTTPClient"], swiftSettings: strict),
        .executableTarget(name: "orgctl", dependencies: ["OrgctlCLI"], swiftSettings: strict),

        // MARK: Tests (Swift Testing), one target per module plus end-to-end
        .testTarget(name: "CryptoTests", dependencies: ["Crypto"], swiftSettings: strict),
        .testTarget(name: "SpecTests", dependencies: ["Spec"], resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "AuditTests", dependencies: ["Audit", "Crypto"], swiftSettings: strict),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres"], swiftSettings: strict),
        .testTarget(name: "ReconcilerTests", dependencies: ["Reconciler", "Spec", "StateStore", "Audit", "Crypto"], swiftSettings: strict),
        .testTarget(name: "StateStoreTests", dependencies: ["StateStore"], swiftSettings: strict),
        .testTarget(name: "OrgctlCLITests", dependencies: ["OrgctlCLI", "Spec"], swiftSettings: strict),
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient"], swiftSettings: strict),
        .testTarget(name: "EndToEndTests", dependencies: [], exclude: ["Cases"], swiftSettings: strict),
    ]
)
