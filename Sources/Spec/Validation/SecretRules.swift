import Foundation

/// What a secret reference may name. A webhook's signing secret is sent to the webhook's URL and an
/// OIDC client secret to the issuer, both written by the pull request: whatever a reference can
/// read, the pull request's author can receive. So a reference may never name the runner's own
/// credentials, and the Platform can restrict references to an allow-list in which each tenant
/// reaches only its own secrets.
///
/// The rules live here once: the decoder applies the fixed ones to each reference, the loader the
/// Platform's allow-list across tenants, and the CLI the fixed ones again when it reads a value
/// (a saved plan names its secret sources too).
public enum SecretRules {
    /// Prefixes of environment variables that belong to orgctl, the CI system or a cloud SDK, never
    /// to a tenant (compared without regard to case).
    public static let reservedPrefixes = [
        "ORGCTL_",
        // CI systems and their runners
        "GITHUB_", "ACTIONS_", "RUNNER_", "GH_", "CI_", "GITLAB_", "BUILDKITE_", "CIRCLE_", "TRAVIS_", "JENKINS_",
        "BITBUCKET_", "DRONE_", "SYSTEM_", "AGENT_", "BUILD_", "TEAMCITY_", "APPVEYOR_", "CODEBUILD_",
        // cloud and tool credentials
        "AWS_", "AZURE_", "ARM_", "GOOGLE_", "GCP_", "GCLOUD_", "CLOUDSDK_", "ALIBABA_CLOUD_", "ALICLOUD_", "DIGITALOCEAN_",
        "VAULT_", "KUBE", "DOCKER_", "NPM_", "NODE_AUTH_", "SSH_", "GPG_", "GIT_", "TF_", "SONAR_", "CODECOV_",
    ]
    /// Suffixes of credential names (compared without regard to case): `GITHUB_TOKEN`, `CI_JOB_TOKEN`,
    /// `SYSTEM_ACCESSTOKEN`, `NPM_TOKEN`, `DB_PASSWORD`.
    public static let reservedSuffixes = [
        "TOKEN", "_PASSWORD", "_PASSWD", "_ACCESS_KEY", "_ACCESS_KEY_ID", "_SECRET_KEY", "_PRIVATE_KEY", "_CREDENTIALS",
    ]

    /// Why `name` may never be referenced, or nil when it may be.
    public static func reservedReason(environment name: String) -> String? {
        let upper = name.uppercased()
        if let prefix = reservedPrefixes.first(where: { upper.hasPrefix($0) }) {
            return prefix == "ORGCTL_" ? "names one of orgctl's own settings (ORGCTL_*)" : "names a variable of the CI runner or a cloud SDK (\(prefix)*)"
        }
        if let suffix = reservedSuffixes.first(where: { upper.hasSuffix($0) }) {
            return "has the name of a runner credential (*\(suffix))"
        }
        return nil
    }

    /// Why a `{file: …}` path (relative to the configuration folder, normalised) may never be
    /// referenced, or nil: hidden files and folders hold the checkout's credentials (`.git/config`
    /// keeps the token `actions/checkout` persists) and tool settings, never a tenant's secret.
    public static func reservedReason(file relative: String) -> String? {
        if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") && $0 != "." && $0 != ".." }) {
            return "is inside a hidden file or folder (such as .git, which holds the checkout's credentials)"
        }
        return nil
    }

    static let reservedHelp =
        "reference a variable named for this tenant (such as ACME_WEBHOOK_SECRET) and map it from the pipeline's secret store; "
        + "the runner's own credentials and orgctl's settings can never be sent to a URL the configuration names"

    /// `relative` with `.` and `..` components resolved lexically (nil when it climbs above the start).
    static func normalised(_ relative: String) -> String? {
        var parts: [Substring] = []
        for component in relative.split(separator: "/") where component != "." {
            if component == ".." {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            } else {
                parts.append(component)
            }
        }
        return parts.joined(separator: "/")
    }
}

/// The Platform's `secrets` section: which environment variables and which folders tenants may
/// reference. `{tenant}` stands for the referring tenant's slug (upper case, `-` as `_`, in
/// environment variable names).
public struct SecretPolicy: Sendable {
    public var location: SourceLocation
    /// Environment variable name patterns (`*` matches any run of characters); nil when not declared.
    public var environment: [Located<String>]
    /// Folders, relative to the configuration folder; a path component may be `{tenant}`.
    public var files: [Located<String>]

    public init(location: SourceLocation, environment: [Located<String>], files: [Located<String>]) {
        self.location = location
        self.environment = environment
        self.files = files
    }

    public static let placeholder = "{tenant}"

    /// A tenant slug as it appears in environment variable names: `acme-eu` is `ACME_EU`.
    static func environmentForm(_ slug: String) -> String {
        String(slug.uppercased().map { $0 == "-" ? "_" : $0 })
    }

    /// Checks a pattern's shape: letters, digits, `_`, `*`, and at most one `{tenant}`, with no `*` before it.
    static func patternProblem(_ pattern: String) -> String? {
        guard !pattern.isEmpty else { return "is empty" }
        let parts = pattern.components(separatedBy: placeholder)
        guard parts.count <= 2 else { return "may use {tenant} only once" }
        if parts.count == 2, parts[0].contains("*") { return "may not have '*' before {tenant}" }
        let allowed = parts.joined().utf8.allSatisfy {
            ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || (48...57).contains($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "*")
        }
        return allowed ? nil : "may hold only letters, digits, '_', '*' and {tenant}"
    }

    /// Why a pattern would admit reserved names: its fixed beginning is a reserved prefix, or it is a reserved name.
    static func reservedReason(pattern: String) -> String? {
        let literal = String(pattern.prefix { $0 != "*" && $0 != "{" })
        if literal.count == pattern.count { return SecretRules.reservedReason(environment: pattern) }
        guard let prefix = SecretRules.reservedPrefixes.first(where: { literal.uppercased().hasPrefix($0) }) else { return nil }
        return "admits variables of the CI runner, a cloud SDK or orgctl (\(prefix)*)"
    }

    /// Checks a folder's shape: relative, no `.`/`..` or hidden components, `{tenant}` only as a whole component.
    static func folderProblem(_ folder: String) -> String? {
        guard !folder.hasPrefix("/"), !folder.hasPrefix("~") else { return "must be relative to the configuration folder" }
        let components = folder.split(separator: "/")
        guard !components.isEmpty else { return "is empty" }
        for component in components {
            if component.hasPrefix(".") { return "may not have '.', '..' or hidden components" }
            if component.contains(placeholder), component != placeholder { return "may use {tenant} only as a whole path component" }
            if component.contains("*") { return "is a folder, not a pattern: '*' is not allowed" }
        }
        guard components.filter({ $0 == placeholder }).count <= 1 else { return "may use {tenant} only once" }
        return nil
    }

    /// The tenant that a `{tenant}` pattern attributes `name` to, among `slugs` (keyed by their
    /// environment form): the longest tenant part wins, so `ACME_EU_HOOK` is `acme-eu`'s, not `acme`'s.
    func environmentOwner(of name: String, slugs: [String: String]) -> String? {
        var best: (slug: String, length: Int)?
        for pattern in environment.map(\.value) {
            let parts = pattern.components(separatedBy: Self.placeholder)
            guard parts.count == 2, name.hasPrefix(parts[0]) else { continue }
            let rest = Array(name.utf8.dropFirst(parts[0].utf8.count))
            guard !rest.isEmpty else { continue }
            for end in 1...rest.count {
                let candidate = String(decoding: rest[..<end], as: UTF8.self)
                guard let slug = slugs[candidate], Glob.matches(parts[1], String(decoding: rest[end...], as: UTF8.self)) else { continue }
                if best.map({ end > $0.length }) ?? true { best = (slug, end) }
            }
        }
        return best?.slug
    }

    /// Whether `name` matches a pattern, with `{tenant}` standing for `slug`.
    func allows(environment name: String, tenant slug: String) -> Bool {
        let form = Self.environmentForm(slug)
        return environment.contains { Glob.matches($0.value.replacingOccurrences(of: Self.placeholder, with: form), name) }
    }

    /// The tenant a `{tenant}` folder attributes `relative` to (the path component in its place).
    func fileOwner(of relative: String) -> String? {
        let components = relative.split(separator: "/").map(String.init)
        for folder in files.map(\.value) {
            let parts = folder.split(separator: "/").map(String.init)
            guard let index = parts.firstIndex(of: Self.placeholder), components.count > parts.count else { continue }
            if zip(parts, components).allSatisfy({ $0 == Self.placeholder || $0 == $1 }) { return components[index] }
        }
        return nil
    }

    /// Whether `relative` is inside an allowed folder, with `{tenant}` standing for `slug`.
    func allows(file relative: String, tenant slug: String) -> Bool {
        let components = relative.split(separator: "/").map(String.init)
        return files.contains { folder in
            let parts = folder.value.split(separator: "/").map { $0 == Self.placeholder ? slug : String($0) }
            return components.count > parts.count && zip(parts, components).allSatisfy { $0 == $1 }
        }
    }
}

extension SecretPolicy {
    /// Every tenant's references against the allow-list: a reference outside it, or one that a
    /// `{tenant}` entry attributes to another tenant of the configuration, is an error.
    func check(_ tenants: [TenantSpec], files references: FileReferences, into d: inout Diagnostics) {
        let slugs = Dictionary(tenants.map { (Self.environmentForm($0.slug), $0.slug) }, uniquingKeysWith: { a, _ in a })
        let declared = Set(tenants.map(\.slug))
        for tenant in tenants {
            var secrets: [(String, SecretReference)] = []
            for webhook in tenant.webhooks ?? [] { if let secret = webhook.secret { secrets.append(("webhook '\(webhook.name)' secret", secret)) } }
            for provider in tenant.sso?.providers ?? [] {
                if let secret = provider.clientSecret { secrets.append(("provider '\(provider.name)' clientSecret", secret)) }
            }
            for (what, secret) in secrets {
                switch secret.source {
                case .environment(let name):
                    if let owner = environmentOwner(of: name, slugs: slugs), owner != tenant.slug {
                        d.error("spec.secret-not-allowed", "\(what) {env: \(name)} is a secret of tenant '\(owner)', not of '\(tenant.slug)'",
                                at: secret.location, help: "reference a variable of this tenant (the Platform's secrets.environment lists the patterns)",
                                notes: environment.first.map { [.init("the allow-list is declared here", at: $0.location)] } ?? [])
                    } else if !allows(environment: name, tenant: tenant.slug) {
                        d.error("spec.secret-not-allowed", "\(what) {env: \(name)} is not allowed by the Platform's secrets.environment",
                                at: secret.location, help: allowedHelp(tenant.slug, files: false), notes: [.init("the allow-list is declared here", at: location)])
                    }
                case .file(let written, let path):
                    let candidates = [references.relativeToRoot(path), references.realRelativeToRoot(path)].compactMap { $0 }
                    if let owner = candidates.lazy.compactMap(fileOwner(of:)).first(where: { $0 != tenant.slug && declared.contains($0) }) {
                        d.error("spec.secret-not-allowed", "\(what) {file: \(written)} is a secret of tenant '\(owner)', not of '\(tenant.slug)'",
                                at: secret.location, help: "reference a file in this tenant's own secret folder")
                    } else if candidates.isEmpty || !candidates.allSatisfy({ allows(file: $0, tenant: tenant.slug) }) {
                        d.error("spec.secret-not-allowed", "\(what) {file: \(written)} is not in a folder the Platform's secrets.files allows",
                                at: secret.location, help: allowedHelp(tenant.slug, files: true), notes: [.init("the allow-list is declared here", at: location)])
                    }
                }
            }
        }
    }

    private func allowedHelp(_ slug: String, files: Bool) -> String {
        let form = Self.environmentForm(slug)
        let listed = files
            ? self.files.map { $0.value.replacingOccurrences(of: Self.placeholder, with: slug) + "/" }
            : environment.map { $0.value.replacingOccurrences(of: Self.placeholder, with: form) }
        guard !listed.isEmpty else {
            return files ? "the Platform allows no {file: …} secrets: use {env: …}, or add a folder to secrets.files"
                : "the Platform allows no {env: …} secrets: use {file: …}, or add a pattern to secrets.environment"
        }
        return "use one of: " + listed.prefix(5).joined(separator: ", ")
    }
}
