-- Outside changes made directly in the platform tables after the prior apply.
UPDATE tenants SET name = 'Globex (edited by hand)' WHERE slug = 'globex';
UPDATE members SET role = 'admin' WHERE email = 'dave@acme.com';
UPDATE webhooks SET url = 'https://attacker.example/hook', max_retries = 9 WHERE name = 'slack';
UPDATE quotas SET value = 999 WHERE scope = 'tenant' AND name = 'seats';
UPDATE team_members SET role = 'member' WHERE role = 'lead' AND team_id = (SELECT id FROM teams WHERE slug = 'sre');
DELETE FROM api_keys WHERE name = 'ci-deployer';
INSERT INTO members (tenant_id, email, role) SELECT id, 'mallory@acme.com', 'owner' FROM tenants WHERE slug = 'acme';
