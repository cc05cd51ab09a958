import Foundation
import Spec
import Testing

/// A secret reference can never name the runner's own credentials, and with the Platform's
/// allow-list a tenant reaches only its own secrets (the secret is sent to a URL the PR names).
@Suite struct SecretRuleTests {
    static let reserved = [
        "ORGCTL_STATE_KEY", "ORGCTL_ANYTHING", "orgctl_state_key", "GITHUB_TOKEN", "GH_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_RUNTIME_TOKEN", "RUNNER_TEMP", "CI_JOB_TOKEN", "CI_REGISTRY_PASSWORD", "GITLAB_TOKEN", "BUILDKITE_AGENT_ACCESS_TOKEN",
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_CLIENT_SECRET", "GOOGLE_APPLICATION_CREDENTIALS", "VAULT_TOKEN",
        "SYSTEM_ACCESSTOKEN", "NPM_TOKEN", "CODECOV_TOKEN", "ACME_DEPLOY_TOKEN", "DB_PASSWORD", "SSH_AUTH_SOCK",
    ]

    @Test(arguments: reserved) func runnerAndOrgctlVariablesAreRefused(_ name: String) throws {
        let scratch = Scratch.with(tenant: tenantWithWebhook("secret: {env: \(marker)\(name)}"))
        let result = try scratch.load()
        expectDiagnostic(result, "spec.secret-reserved", at: scratch.markedLocation, message: "secret {env: \(name)}")
        #expect(result.configuration == nil)
    }

    @Test(arguments: ["ACME_SLACK_WEBHOOK_SECRET", "GLOBEX_OIDC_CLIENT_SECRET", "HOOK_SIGNING_SECRET"])
    func tenantVariablesAreAllowedWithoutAnAllowList(_ name: String) throws {
        expectClean(try Scratch.with(tenant: tenantWithWebhook("secret: {env: \(name)}")).load())
    }

    @Test(arguments: [".git/config", "./.git/config", "x/../.git/config", ".env", "s/.hidden"])
    func hiddenFilesAreRefused(_ path: String) throws {
        let scratch = Scratch.with(tenant: tenantWithWebhook("secret: {file: \(marker)../\(path)}"))
        scratch.write(".git/config", "[http]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\n")
        let result = try scratch.load()
        expectDiagnostic(result, "spec.secret-reserved", at: scratch.markedLocation)
    }

    @Test func aLinkIntoAHiddenFolderIsRefused() throws {
        let scratch = Scratch.with(tenant: tenantWithWebhook("secret: {file: \(marker)hook.txt}"))
        scratch.write(".git/config", "token")
        scratch.symlink("tenants/hook.txt", to: "../.git/config")
        expectDiagnostic(try scratch.load(), "spec.secret-reserved", at: scratch.markedLocation)
    }

    static let policy = basePlatform + """
        secrets:
          environment: ["{tenant}_*", SHARED_SMTP_SECRET]
          files: ["secrets/{tenant}"]

        """

    static func two(acme: String, globex: String = "secret: {env: GLOBEX_HOOK}") -> Scratch {
        let scratch = Scratch.with(platform: policy, tenant: tenantWithWebhook(acme))
        scratch.write("tenants/globex.yaml", tenant(slug: "globex", domains: "[globex.com]", members: "ann@globex.com: owner",
                                                    "webhooks:\n  hook:\n    url: https://hooks.example.com/g\n    events: [member.added]\n    \(globex)\n"))
        scratch.write("tenants/acme-eu.yaml", tenant(slug: "acme-eu", domains: "[acme.eu]", members: "bo@acme.eu: owner",
                                                     "webhooks:\n  hook:\n    url: https://hooks.example.com/e\n    events: [member.added]\n    secret: {env: ACME_EU_HOOK}\n"))
        return scratch
    }

    @Test(arguments: ["secret: {env: ACME_HOOK}", "secret: {env: SHARED_SMTP_SECRET}", "secret: {file: ../secrets/acme/hook.txt}"])
    func ownAndSharedSecretsAreAllowed(_ reference: String) throws {
        let scratch = Self.two(acme: reference)
        scratch.write("secrets/acme/hook.txt", "s3cret")
        expectClean(try scratch.load())
    }

    @Test(arguments: [
        ("secret: 1️⃣{env: GLOBEX_HOOK}", "is a secret of tenant 'globex', not of 'acme'"),
        ("secret: 1️⃣{env: ACME_EU_HOOK}", "is a secret of tenant 'acme-eu', not of 'acme'"),
        ("secret: 1️⃣{file: ../secrets/globex/hook.txt}", "is a secret of tenant 'globex', not of 'acme'"),
        ("secret: 1️⃣{env: OTHER_HOOK}", "is not allowed by the Platform's secrets.environment"),
        ("secret: 1️⃣{file: hook.txt}", "is not in a folder the Platform's secrets.files allows"),
        ("secret: 1️⃣{file: ../secrets/acme-other/hook.txt}", "is not in a folder the Platform's secrets.files allows"),
    ])
    func anotherTenantsOrAnUnlistedSecretIsRefused(_ reference: String, _ message: String) throws {
        let scratch = Self.two(acme: reference)
        let result = try scratch.load()
        expectDiagnostic(result, "spec.secret-not-allowed", at: scratch.markedLocation, message: message)
        #expect(result.with(id: "spec.secret-not-allowed").count == 1, "globex and acme-eu use their own")
    }

    @Test func aLinkIntoAnotherTenantsFolderIsRefused() throws {
        let scratch = Self.two(acme: "secret: \(marker){file: ../secrets/acme/hook.txt}")
        scratch.write("secrets/globex/hook.txt", "globex-secret")
        scratch.mkdir("secrets/acme")
        scratch.symlink("secrets/acme/hook.txt", to: "../globex/hook.txt")
        expectDiagnostic(try scratch.load(), "spec.secret-not-allowed", at: scratch.markedLocation, message: "is a secret of tenant 'globex'")
    }

    @Test(arguments: [
        ("environment: [1️⃣\"ORGCTL_*\"]", "admits variables of the CI runner, a cloud SDK or orgctl (ORGCTL_*)"),
        ("environment: [1️⃣GITHUB_TOKEN]", "names a variable of the CI runner"),
        ("environment: [1️⃣\"*_{tenant}\"]", "may not have '*' before {tenant}"),
        ("environment: [1️⃣\"A-B\"]", "may hold only letters"),
        ("files: [1️⃣../outside]", "may not have '.', '..' or hidden components"),
        ("files: [1️⃣\"secrets/x{tenant}\"]", "may use {tenant} only as a whole path component"),
    ])
    func theAllowListIsChecked(_ entry: String, _ message: String) throws {
        let scratch = Scratch.with(platform: basePlatform + "secrets:\n  \(entry)\n", tenant: tenant())
        expectDiagnostic(try scratch.load(), "spec.secret-policy", at: scratch.markedLocation, message: message)
    }
}
