import Foundation
import Spec
import Testing

/// A configuration folder is read completely or not at all: whatever cannot be read is an error,
/// never a silently smaller configuration whose missing tenants apply would then delete.
@Suite struct FolderCompletenessTests {
    /// The real file system, except for the paths named: a listing or a read that fails as a
    /// permission problem would (tests run as root, whom permissions do not stop).
    struct Failing: ConfigurationFileSystem {
        var unlistable: Set<String> = []
        var unreadable: Set<String> = []
        let real = LocalConfigurationFileSystem()

        func entries(of folder: String) throws(ConfigurationFileSystemError) -> [ConfigurationEntry] {
            if unlistable.contains(folder) { throw ConfigurationFileSystemError(.unreadable, "permission denied") }
            return try real.entries(of: folder)
        }

        func contents(of path: String, limit: Int) throws(ConfigurationFileSystemError) -> [UInt8] {
            if unreadable.contains(path) { throw ConfigurationFileSystemError(.unreadable, "permission denied") }
            return try real.contents(of: path, limit: limit)
        }
    }

    static func twoTenants() -> Scratch {
        let scratch = Scratch.with()
        scratch.write("tenants/more/globex.yaml", tenant(slug: "globex", domains: "[globex.com]", members: "ann@globex.com: owner"))
        return scratch
    }

    @Test func theWholeFolderLoadsWhenEverythingIsReadable() throws {
        let scratch = Self.twoTenants()
        let result = try ConfigurationLoader(now: fixedNow, fileSystem: Failing()).load(path: scratch.root)
        expectClean(result)
        #expect(result.configuration?.tenants.map(\.slug) == ["acme", "globex"])
    }

    @Test func aFolderThatCannotBeListedIsAnError() throws {
        let scratch = Self.twoTenants()
        let result = try ConfigurationLoader(now: fixedNow, fileSystem: Failing(unlistable: [scratch.path("tenants/more")]))
            .load(path: scratch.root)
        #expect(result.configuration == nil, "a configuration without globex would delete it")
        let error = try #require(result.with(id: "spec.folder-unreadable").first)
        #expect(error.message == "configuration folder '\(scratch.path("tenants/more"))' cannot be read: permission denied")
    }

    @Test func aFileThatCannotBeReadIsAPositionedError() throws {
        let scratch = Self.twoTenants()
        let file = scratch.path("tenants/more/globex.yaml")
        let result = try ConfigurationLoader(now: fixedNow, fileSystem: Failing(unreadable: [file])).load(path: scratch.root)
        #expect(result.configuration == nil)
        expectDiagnostic(result, "spec.file-unreadable", at: Spec.SourceLocation(file: file, line: 1, column: 1),
                         message: "file '\(file)' cannot be read: permission denied")
    }

    @Test func aLinkedTenantFileIsAnErrorWhereverItPoints() throws {
        let scratch = Scratch.with()
        let outside = Scratch()
        let target = outside.write("globex.yaml", tenant(slug: "globex", domains: "[globex.com]", members: "ann@globex.com: owner"))
        scratch.symlink("tenants/globex.yaml", to: target)
        scratch.write("spare/initech.yaml", tenant(slug: "initech", domains: "[initech.com]", members: "bo@initech.com: owner"))
        scratch.symlink("tenants/initech.yml", to: "../spare/initech.yaml")
        let result = try scratch.load()
        #expect(result.configuration == nil)
        #expect(result.with(id: "spec.file-link").count == 2)
        expectDiagnostic(result, "spec.file-link", at: Spec.SourceLocation(file: scratch.path("tenants/globex.yaml"), line: 1, column: 1))
    }

    @Test func aLinkToAFolderIsAnError() throws {
        let scratch = Scratch.with()
        let outside = Scratch()
        outside.write("globex.yaml", tenant(slug: "globex", domains: "[globex.com]", members: "ann@globex.com: owner"))
        scratch.symlink("tenants/more", to: outside.root)
        let result = try scratch.load()
        #expect(result.configuration == nil)
        #expect(result.with(id: "spec.file-link").first?.message.contains("symbolic link to a folder") == true)
    }

    @Test func aNamedPipeIsAnErrorAndNeverBlocks() throws {
        let scratch = Scratch.with()
        #expect(mkfifo(scratch.path("tenants/globex.yaml"), 0o600) == 0)
        let result = try scratch.load()
        #expect(result.configuration == nil)
        #expect(result.with(id: "spec.file-unreadable").first?.message.contains("named pipe") == true)
    }

    @Test func aDeviceNamedLikeAConfigurationFileIsAnError() throws {
        let scratch = Scratch.with()
        scratch.symlink("dev", to: "/dev")
        // The device itself cannot be created without privileges everywhere; reading one through the seam can.
        let fileSystem = LocalConfigurationFileSystem()
        #expect(throws: ConfigurationFileSystemError(.notRegular, "it is a character device")) {
            try fileSystem.contents(of: "/dev/null", limit: 1 << 20)
        }
        #expect(throws: ConfigurationFileSystemError(.notRegular, "it is a symbolic link")) {
            try fileSystem.contents(of: scratch.path("dev"), limit: 1 << 20)
        }
    }

    @Test func hiddenFoldersAreNotConfiguration() throws {
        let scratch = Scratch.with()
        scratch.write(".git/hooks/x.yaml", "not: [configuration")
        expectClean(try scratch.load())
    }
}
