import Foundation
import Testing

/// docs/postgres-roles.sql, run as it is: orgctl works as its least-privilege role, and the
/// platform's read-only role sees, through row-level security, exactly the rows of the tenant its
/// session names, nothing of orgctl's own tables, and writes nothing.
@Suite("PostgreSQL: least-privilege roles and row-level security", .enabled(if: !PGServer.skipped))
struct PostgresRoleTests {
    static let rolesFile = Paths.packageRoot.appendingPathComponent("docs/postgres-roles.sql").path

    /// The rows of each tenant-scoped table that belong to a tenant (or to every tenant), found
    /// by joins from the superuser's side, independently of the policies' text.
    static func visible(_ schema: String, tenant: String?) -> [(table: String, sql: String)] {
        let slug = tenant.map { "'\($0)'" } ?? "NULL"
        let ofTenant = "(SELECT id FROM \(schema).tenants WHERE slug = \(slug))"
        let teams = "(SELECT g.id FROM \(schema).teams g JOIN \(schema).tenants t ON t.id = g.tenant_id WHERE t.slug = \(slug))"
        var tables: [(String, String)] = [
            ("tenants", "slug = \(slug)"),
            ("roles", "tenant_id IS NULL OR tenant_id IN \(ofTenant)"),
            ("role_permissions", "role_id IN (SELECT r.id FROM \(schema).roles r WHERE r.tenant_id IS NULL OR r.tenant_id IN \(ofTenant))"),
            ("quotas", "scope = 'plan' OR (scope = 'tenant' AND scope_id IN \(ofTenant)) OR (scope = 'team' AND scope_id IN \(teams))"),
            ("team_members", "team_id IN \(teams)"),
        ]
        for table in ["security_policies", "members", "teams", "sso_settings", "sso_providers", "webhooks", "api_keys"] {
            tables.append((table, "tenant_id IN \(ofTenant)"))
        }
        return tables.map { ($0.0, "SELECT x::text FROM \(schema).\($0.0) x WHERE \($0.1) ORDER BY 1") }
    }

    static let orgctlTables = ["orgctl_meta", "orgctl_resources", "orgctl_audit", "orgctl_merkle", "orgctl_lock"]
    static let globalTables = ["plans", "permissions", "events"]

    @Test("orgctl as the role docs/postgres-roles.sql makes: first apply, plan, apply, drift, audit; no CREATE on the database needed")
    func orgctlRoleWorks() throws {
        let (workspace, state, roles) = try Self.prepared()
        let asOrgctl = state.arguments(user: roles.orgctl)
        let plan = try workspace.run(["plan", "config", "--no-color", "--detailed-exitcode"] + asOrgctl)
        #expect(plan.status == 0 && plan.stdout.contains("No changes."), "\(plan)")
        try workspace.edit("config/tenants/hooli.yaml", replacing: "name: Hooli XYZ", with: "name: Hooli Inc")
        let apply = try workspace.apply("config", state: PGServer.uri(state.server, user: roles.orgctl), ["--state-schema", state.schema])
        #expect(apply.status == 0 && apply.stdout.contains("Apply complete: 0 added, 1 changed, 0 destroyed."), "\(apply)")
        let drift = try workspace.run(["drift", "config", "--no-color"] + asOrgctl)
        #expect(drift.status == 0, "\(drift)")
        let log = try workspace.run(["audit", "log"] + asOrgctl)
        #expect(log.status == 0 && log.stdout.contains("tenant/hooli"), "\(log)")
        let verify = try workspace.run(["audit", "verify"] + asOrgctl)
        #expect(verify.status == 0 && verify.stdout.contains("ok"), "\(verify)")
        // The tables are orgctl's role's, and it has no more than the file grants.
        #expect(try state.value("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = '\(state.schema)'") == roles.orgctl)
        #expect(try state.value("SELECT has_database_privilege('\(roles.orgctl)', current_database(), 'CREATE')") == "f")
        #expect(try state.value("SELECT rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole FROM pg_roles WHERE rolname = '\(roles.orgctl)'") == "f")
    }

    @Test("the platform role with orgctl.tenant = 'acme' sees exactly acme's rows in every tenant-scoped table, and none without it")
    func platformSeesOneTenant() throws {
        let (_, state, roles) = try Self.prepared()
        for tenant in ["acme", "globex"] {
            for (table, expected) in Self.visible(state.schema, tenant: tenant) {
                let want = try state.value(expected)
                let seen = try state.value("SET orgctl.tenant = '\(tenant)'; SELECT x::text FROM \(state.schema).\(table) x ORDER BY 1", user: roles.platform)
                #expect(seen == want, "\(table) as the platform role for \(tenant)")
                if table != "roles" && table != "role_permissions" && table != "quotas" {
                    #expect(!seen.isEmpty, "\(tenant) has rows in \(table): the check would be empty")
                }
            }
        }
        // Without the setting, and with a tenant that does not exist: no tenant's rows (system roles and plan quotas only).
        for setting in ["", "SET orgctl.tenant = 'nosuch';", "SET orgctl.tenant = '';"] {
            for (table, expected) in Self.visible(state.schema, tenant: nil) {
                let want = try state.value(expected)
                let seen = try state.value("\(setting) SELECT x::text FROM \(state.schema).\(table) x ORDER BY 1", user: roles.platform)
                #expect(seen == want, "\(table) as the platform role with '\(setting)'")
            }
            #expect(try state.value("\(setting) SELECT count(*) FROM \(state.schema).members", user: roles.platform) == "0")
        }
        // The catalogue is read whole; orgctl's own tables show no row.
        for table in Self.globalTables {
            #expect(try state.value("SELECT count(*) FROM \(state.schema).\(table)", user: roles.platform)
                == state.value("SELECT count(*) FROM \(state.schema).\(table)"))
        }
        for table in Self.orgctlTables {
            #expect(try state.value("SET orgctl.tenant = 'acme'; SELECT count(*) FROM \(state.schema).\(table)", user: roles.platform) == "0", "\(table)")
            #expect(try state.value("SELECT count(*) FROM \(state.schema).\(table)") != "0", "\(table) has rows for the superuser")
        }
    }

    @Test("the platform role writes nothing: INSERT, UPDATE, DELETE, TRUNCATE and the lock row are refused")
    func platformCannotWrite() throws {
        let (_, state, roles) = try Self.prepared()
        let before = try state.dump()
        let tables = Self.visible(state.schema, tenant: nil).map(\.table) + Self.globalTables + Self.orgctlTables
        for table in tables {
            let qualified = "\(state.schema).\(table)"
            let column = try state.value("SELECT attname FROM pg_attribute WHERE attrelid = '\(qualified)'::regclass AND attnum = 1")
            for statement in [
                "INSERT INTO \(qualified) SELECT * FROM \(qualified) LIMIT 1",
                "UPDATE \(qualified) SET \(column) = \(column)",
                "DELETE FROM \(qualified)",
                "TRUNCATE \(qualified)",
                "SELECT 1 FROM \(qualified) FOR UPDATE",
            ] {
                let run = try state.psql("SET orgctl.tenant = 'acme'; \(statement);", user: roles.platform, expectSuccess: false)
                #expect(run.status != 0 && run.stderr.contains("permission denied"), "\(statement): \(run)")
            }
        }
        #expect(try state.dump() == before)
    }

    /// A schema made by docs/postgres-roles.sql, the examples applied by orgctl's role, and a login
    /// role of the platform (a member of the platform role, as the file's comments say).
    static func prepared() throws -> (Workspace, PGState, (orgctl: String, platform: String)) {
        let workspace = try Workspace(name: "pg-roles")
        try workspace.copyExamples()
        let state = try PGState(workspace)
        let orgctl = state.newRole("pge2e_orgctl"), platform = state.newRole("pge2e_platform"), login = state.newRole("pge2e_app")
        let database = try state.value("SELECT current_database()")
        let file = try workspace.run(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "database=\(database)", "-v", "schema=\(state.schema)",
                                      "-v", "orgctl_role=\(orgctl)", "-v", "platform_role=\(platform)", "-d", state.server, "-f", Self.rolesFile],
                                     executable: PGServer.psql)
        try #require(file.status == 0 && file.stderr.isEmpty, "docs/postgres-roles.sql failed: \(file)")
        try state.psql("CREATE ROLE \(login) LOGIN IN ROLE \(platform)")
        let applied = try workspace.apply("config", state: PGServer.uri(state.server, user: orgctl), ["--state-schema", state.schema])
        try #require(applied.status == 0, "the first apply as orgctl's role: \(applied)")
        return (workspace, state, (orgctl, login))
    }
}
