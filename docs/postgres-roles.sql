-- Least-privilege roles for orgctl on PostgreSQL (docs/state-schema.md, "PostgreSQL roles").
--
-- Run once, as a superuser (or a role with CREATEROLE and CREATE on the database), in the
-- database that holds the state, BEFORE the first `orgctl apply`:
--
--     psql "postgresql://admin@db.example.com/platform?sslmode=verify-full" -f docs/postgres-roles.sql
--
-- It assumes the default schema name `orgctl` (`--state-schema`); replace every `orgctl.` and
-- `SCHEMA orgctl` below for another one. Set the passwords afterwards, without putting them in a
-- file or a shell history: `\password orgctl_apply` and `\password orgctl_plan` in psql (or use
-- certificate authentication and no passwords at all).
--
-- orgctl_apply    orgctl's role for apply (and for every other command): it owns the schema and
--                 orgctl's tables, so row-level security does not apply to it. Not a superuser,
--                 no CREATEDB, no CREATEROLE, no BYPASSRLS; nothing outside its schema.
-- orgctl_plan     optional: a read-only role for pull-request plans and drift checks (a plan never
--                 writes). It reads every row (BYPASSRLS: orgctl refuses to plan from a partial
--                 view of its tables) and can write nothing.
-- platform_reader the platform's read-only role: SELECT on the tables, row-level security applies
--                 (it sees one tenant's rows, the one its session names in `orgctl.tenant`, and no
--                 row of orgctl's own tables). Grant it to the platform's login roles.

\set ON_ERROR_STOP on

CREATE ROLE orgctl_apply LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE ROLE orgctl_plan LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
CREATE ROLE platform_reader NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;

-- Only these roles (and the platform's login roles, granted platform_reader) may connect.
REVOKE CONNECT, TEMPORARY ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO orgctl_apply, orgctl_plan, platform_reader;

-- The schema belongs to orgctl_apply: the first apply creates the tables in it, owned by
-- orgctl_apply. Nobody else may create objects in it.
CREATE SCHEMA orgctl AUTHORIZATION orgctl_apply;
REVOKE ALL ON SCHEMA orgctl FROM PUBLIC;
GRANT USAGE ON SCHEMA orgctl TO orgctl_plan, platform_reader;

-- Tables orgctl_apply creates (now and in later schema versions) can be read by both readers.
ALTER DEFAULT PRIVILEGES FOR ROLE orgctl_apply IN SCHEMA orgctl GRANT SELECT ON TABLES TO orgctl_plan, platform_reader;
-- The same for tables that already exist (a schema created by an earlier apply as orgctl_apply).
GRANT SELECT ON ALL TABLES IN SCHEMA orgctl TO orgctl_plan, platform_reader;
