import Foundation
import Spec

/// `orgctl init DIR`: a small commented configuration that validates and applies as it is.
enum InitCommand {
    static let spec = CommandSpec(
        name: "init",
        abstract: "Write a starter configuration (a Platform and one tenant) into a folder.",
        discussion: """
            Creates DIR if needed and writes platform.yaml, tenants/example.yaml and orgctl.schema.json (the \
            JSON Schema their modelines point an editor at). The files are commented, need no secrets, and \
            validate and apply as they are (apply needs a state key, as always). init never overwrites: it refuses a folder that already holds \
            YAML files or any of the files it would write.
            Exit status: 0 written, 1 refused or not writable (nothing is written), 64 usage error.
            """,
        arguments: [ArgumentSpec("dir", help: "The folder to create the configuration in.")])

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let directory = command.argument("dir") ?? "."
        let files = starterFiles()
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw CommandFailure(message: "'\(directory)' exists and is not a folder; nothing was written",
                                     help: "name a new or empty folder: orgctl init config")
            }
            if let existing = existingYAML(in: directory) {
                throw CommandFailure(message: "'\(directory)' already holds a configuration file ('\(existing)'); nothing was written",
                                     help: "init starts a new configuration: name a new or empty folder, e.g. orgctl init config")
            }
        }
        for file in files {
            let path = (directory as NSString).appendingPathComponent(file.path)
            if manager.fileExists(atPath: path) || (try? manager.destinationOfSymbolicLink(atPath: path)) != nil {
                throw CommandFailure(message: "'\(path)' already exists; nothing was written",
                                     help: "init never overwrites: move the file away or name another folder")
            }
        }
        do {
            try manager.createDirectory(atPath: (directory as NSString).appendingPathComponent("tenants"), withIntermediateDirectories: true)
        } catch {
            throw CommandFailure(message: "cannot create the folder '\(directory)': \(error.localizedDescription)",
                                 help: "check that the parent folder exists and is writable")
        }
        for file in files {
            try writeNew((directory as NSString).appendingPathComponent(file.path), file.contents)
        }
        let console = context.console
        let shown = TerminalText.escape(directory)
        console.print("Wrote a starter configuration to \(shown):")
        for file in files { console.print("  \(TerminalText.escape((directory as NSString).appendingPathComponent(file.path)))") }
        console.info("""
            Next:
              export ORGCTL_STATE_KEY="$(openssl rand -base64 32)"   # the state key: keep it
              orgctl validate \(shown)
              orgctl plan \(shown)
              orgctl apply \(shown)        # creates the state database ./orgctl.db
            """)
        return ExitCode.success
    }

    /// The first YAML file under `directory` (hidden entries skipped, as the loader does), if any.
    static func existingYAML(in directory: String) -> String? {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return nil }
        while let entry = walker.nextObject() as? String {
            let name = (entry as NSString).lastPathComponent
            if name.hasPrefix(".") {
                walker.skipDescendants()
                continue
            }
            if name.hasSuffix(".yaml") || name.hasSuffix(".yml") { return entry }
        }
        return nil
    }

    /// Creates `path` (mode 0644), failing if anything is already there.
    static func writeNew(_ path: String, _ contents: String) throws {
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "it already exists" : String(cString: strerror(errno))
            throw CommandFailure(message: "cannot write '\(path)': \(reason)", help: "check the folder and its permissions")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: Data(contents.utf8))
        } catch {
            throw CommandFailure(message: "writing '\(path)' failed: \(error.localizedDescription)", help: "check free disk space")
        }
    }

    struct StarterFile {
        var path: String
        var contents: String
    }

    static func starterFiles() -> [StarterFile] {
        [
            StarterFile(path: "platform.yaml", contents: platform),
            StarterFile(path: "tenants/example.yaml", contents: tenant),
            StarterFile(path: "orgctl.schema.json", contents: JSONSchema.text()),
        ]
    }

    static let platform = """
        # yaml-language-server: $schema=./orgctl.schema.json
        #
        # The platform catalog: exactly one `kind: Platform` document per configuration.
        # It declares the subscription plans, the permissions roles are made of, the system
        # roles every tenant gets, and the events webhooks may subscribe to. Every tenant
        # under tenants/ is checked against it.
        #
        # Look up any key with `orgctl explain`, e.g. `orgctl explain platform.plans`.
        # (orgctl.schema.json is `orgctl schema`'s output: regenerate it after upgrading orgctl.)
        apiVersion: orgctl.dev/v1
        kind: Platform

        # Subscription tiers. `quotas` are the defaults of a tenant on the plan (a tenant may
        # override them); `unlimited` is a value of its own. Features switch on parts of the
        # tenant format: sso -> `sso:`, custom-roles -> `roles:`, ip-allowlist ->
        # `security.ipAllowlist`, audit-export -> stored for the platform to read.
        plans:
          free:
            description: Small teams getting started
            quotas: {seats: 5, teams: 2, apps: 3, messagesPerMonth: 1000, storage: 1GiB, webhooks: 2, apiKeys: 2}
            rateLimit: 100/h
          business:
            description: Companies that need single sign-on and their own roles
            quotas: {seats: 100, teams: 50, apps: unlimited, messagesPerMonth: 50000, storage: 100GiB, webhooks: 25, apiKeys: 25}
            rateLimit: 10000/h
            features: [sso, custom-roles]

        # The permission catalog. Roles and API key scopes name permissions, with `*` as a
        # wildcard (`apps.*`, `*.read`).
        permissions:
          apps.read: {category: apps, description: See apps}
          apps.create: {category: apps, description: Create apps}
          members.read: {category: members, description: See members}
          members.invite: {category: members, description: Invite members}
          billing.manage: {category: billing, description: Change the subscription}

        # System roles, offered to every tenant. A role named `owner` is required.
        roles:
          owner: {description: Full control, permissions: ["*"]}
          admin: {description: Manages apps and members, permissions: ["apps.*", "members.*"]}
          member: {description: Builds apps, permissions: [apps.read, apps.create, members.read]}
          viewer: {description: Read-only access, permissions: ["*.read"]}

        # Events that tenants' webhooks may subscribe to.
        events: [member.added, member.removed, organization.updated]

        """

    static let tenant = """
        # yaml-language-server: $schema=../orgctl.schema.json
        #
        # One organization: one `kind: Tenant` document, usually one file per tenant.
        # A section you leave out is not managed by orgctl; a section you write is
        # managed completely (entries you remove are deleted on the next apply).
        #
        # Look up any key with `orgctl explain`, e.g. `orgctl explain tenant.members`.
        apiVersion: orgctl.dev/v1
        kind: Tenant
        slug: example                 # the tenant's identity: tenant/example in plans
        name: Example Inc.
        plan: business                # one of the plans in platform.yaml
        status: active                # active, trial (with trialEnds: YYYY-MM-DD) or suspended

        # Only addresses in these domains may be members (guest roles are exempt).
        domains: [example.com]

        security:
          mfa: required
          sessionTimeout: 8h

        # E-mail address -> role. At least one member must be an owner.
        members:
          owner@example.com: owner
          dev@example.com: member

        teams:
          engineering:
            name: Engineering
            members: {owner@example.com: lead, dev@example.com: member}

        # A webhook signs its deliveries with a secret. Secrets are never written here:
        # reference an environment variable (or a file), and give orgctl a state key to
        # encrypt them at rest. To add one, uncomment these lines, then:
        #   export EXAMPLE_WEBHOOK_SECRET=...                        # the signing secret
        #   export ORGCTL_STATE_KEY="$(openssl rand -base64 32)"     # keep this key safe
        #
        # webhooks:
        #   deploys:
        #     url: https://hooks.example.com/orgctl
        #     events: ["member.*"]
        #     secret: {env: EXAMPLE_WEBHOOK_SECRET}

        """
}
