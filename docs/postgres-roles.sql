-- Least-privilege roles for orgctl's PostgreSQL state (docs/state-schema.md, "PostgreSQL roles").
-- Tests/EndToEndTests/PostgresRoleTests.swift runs this file as it is and proves what it promises.
--
-- Run it once, as a superuser or the database's owner, before orgctl's first apply:
--
--   psql -v ON_ERROR_STOP=1 -v database=app -v schema=orgctl \
--        -v orgctl_role=orgctl -v platform_role=orgctl_platform -f docs/postgres-roles.sql
--
-- then give orgctl's role a way to log in (\password orgctl, or a client certificate), and grant
-- the platform role to the login roles of the platform's servers:  GRANT orgctl_platform TO app;

-- orgctl's role: it logs in and owns its schema, so it creates its tables there on the first
-- apply and is their owner. Nothing else: no CREATE on the database (it creates no schema), no
-- superuser, no BYPASSRLS (row-level security does not apply to a table's owner, so orgctl reads
-- every row without it). Runners that apply at the same time should log in as this same role:
-- a waiting apply names the lock's holder from pg_stat_activity, which shows a session's
-- application_name only to its own role (or to members of pg_read_all_stats).
CREATE ROLE :"orgctl_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
GRANT CONNECT ON DATABASE :"database" TO :"orgctl_role";
CREATE SCHEMA :"schema" AUTHORIZATION :"orgctl_role";

-- The platform's read-only role. It reads the tables orgctl creates from now on (SELECT only:
-- no INSERT, UPDATE, DELETE or TRUNCATE, and no lock row, which needs UPDATE). Row-level
-- security limits what it sees:
--   * a tenant-scoped table (tenants, roles, role_permissions, quotas, security_policies,
--     members, teams, team_members, sso_settings, sso_providers, webhooks, api_keys) shows only
--     the rows of the tenant named by the session's setting orgctl.tenant:
--         SET orgctl.tenant = 'acme';        -- or SET LOCAL inside a transaction
--     and without the setting no tenant's rows (system roles and plan quotas stay visible);
--   * orgctl's own tables (orgctl_meta, orgctl_resources, orgctl_audit, orgctl_merkle,
--     orgctl_lock) have row-level security without any policy: no row, whatever is granted;
--   * plans, permissions and events (the platform's catalogue) are read whole.
CREATE ROLE :"platform_role" NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
GRANT CONNECT ON DATABASE :"database" TO :"platform_role";
GRANT USAGE ON SCHEMA :"schema" TO :"platform_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"orgctl_role" IN SCHEMA :"schema" GRANT SELECT ON TABLES TO :"platform_role";
-- Tables that already exist (a schema an earlier apply created as orgctl's role).
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"platform_role";
-- Nobody else may create objects in orgctl's schema (a trigger or a view there would change what
-- orgctl reads; orgctl refuses them, but better they cannot be made).
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;

-- Optional: a read-only role for pull-request plans and drift checks (pass -v plan_role=orgctl_plan).
-- A plan must read every row, so it needs BYPASSRLS (which only a superuser can give; where it
-- cannot be had, run plans as orgctl's role). It can write nothing.
\if :{?plan_role}
CREATE ROLE :"plan_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS;
GRANT CONNECT ON DATABASE :"database" TO :"plan_role";
GRANT USAGE ON SCHEMA :"schema" TO :"plan_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"orgctl_role" IN SCHEMA :"schema" GRANT SELECT ON TABLES TO :"plan_role";
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"plan_role";
\endif
