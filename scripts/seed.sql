-- Local stand-in for the BlindspotX auth database, loaded by
-- `scripts/stack.sh up` as role blindspotx into database blindspotx.
-- Idempotent: every `up` runs it again; each run adds one finished drift
-- scan (finished_at = now()) so the drift-freshness probe is healthy.

CREATE TABLE IF NOT EXISTS users (
    id           uuid PRIMARY KEY,
    email        text NOT NULL UNIQUE,
    display_name text NOT NULL,
    entra_oid    text UNIQUE,
    is_active    boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);

CREATE TABLE IF NOT EXISTS roles (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS permissions (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS user_roles (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    integer NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX IF NOT EXISTS user_roles_role_id_idx ON user_roles (role_id);

CREATE TABLE IF NOT EXISTS role_permissions (
    role_id       integer NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission_id integer NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, permission_id)
);
CREATE INDEX IF NOT EXISTS role_permissions_permission_id_idx ON role_permissions (permission_id);

CREATE TABLE IF NOT EXISTS drift_scans (
    id          serial PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    status      text NOT NULL
);
CREATE INDEX IF NOT EXISTS drift_scans_finished_at_idx ON drift_scans (finished_at);

-- The service's token blocklist, as BlindspotX creates it (SQLModel class
-- BlocklistedToken, table blocklistedtoken; LOG-CONTRACT.md section 4). On
-- every authenticated request the service rejects a token whose jti has a
-- row, and every token of a user with a token_type = 'all' row. The
-- security responder revokes by adding such a row (docs/response.md).
CREATE TABLE IF NOT EXISTS blocklistedtoken (
    id         uuid NOT NULL PRIMARY KEY,
    jti        varchar NOT NULL,
    token_type varchar NOT NULL,
    user_id    uuid,
    expires_at timestamp without time zone NOT NULL,
    reason     varchar,
    created_at timestamp without time zone NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_blocklistedtoken_jti ON blocklistedtoken (jti);
CREATE INDEX IF NOT EXISTS ix_blocklistedtoken_user_id ON blocklistedtoken (user_id);

-- The security responder's own role gets exactly INSERT and SELECT on that
-- one table (add revocations and read them back; never lift or change one,
-- never read anything else). The role itself (LOGIN, its password) is made
-- by scripts/stack.sh as the cluster's superuser, since this file runs as
-- the database owner, who may grant on its table but not create roles.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'blindspotx_responder') THEN
        REVOKE ALL ON blocklistedtoken FROM blindspotx_responder;
        GRANT INSERT, SELECT ON blocklistedtoken TO blindspotx_responder;
    ELSE
        RAISE WARNING 'role blindspotx_responder does not exist: the security responder '
            'cannot write the blocklist locally (scripts/stack.sh creates it)';
    END IF;
END
$$;

-- Sample data (fixed ids, so re-runs change nothing).
INSERT INTO roles (name, description) VALUES
    ('admin', 'full access'),
    ('auditor', 'read-only access to audit data'),
    ('user', 'default role')
ON CONFLICT (name) DO NOTHING;

INSERT INTO permissions (name, description) VALUES
    ('users:read', 'list and view users'),
    ('users:write', 'create, change and disable users'),
    ('roles:manage', 'grant and revoke roles'),
    ('audit:read', 'read the audit log'),
    ('drift:scan', 'start a configuration-drift scan')
ON CONFLICT (name) DO NOTHING;

INSERT INTO users (id, email, display_name, entra_oid) VALUES
    ('00000000-0000-4000-8000-000000000001', 'admin@blindspotx.example', 'Local Admin',
     '11111111-1111-4111-8111-111111111111'),
    ('00000000-0000-4000-8000-000000000002', 'auditor@blindspotx.example', 'Local Auditor',
     '22222222-2222-4222-8222-222222222222'),
    ('00000000-0000-4000-8000-000000000003', 'user@blindspotx.example', 'Local User',
     '33333333-3333-4333-8333-333333333333')
ON CONFLICT (id) DO NOTHING;

INSERT INTO user_roles (user_id, role_id)
SELECT u.id, r.id
FROM (VALUES
        ('00000000-0000-4000-8000-000000000001'::uuid, 'admin'),
        ('00000000-0000-4000-8000-000000000002'::uuid, 'auditor'),
        ('00000000-0000-4000-8000-000000000003'::uuid, 'user')
     ) AS v (user_id, role_name)
JOIN users u ON u.id = v.user_id
JOIN roles r ON r.name = v.role_name
ON CONFLICT DO NOTHING;

INSERT INTO role_permissions (role_id, permission_id)
SELECT r.id, p.id
FROM (VALUES
        ('admin', 'users:read'), ('admin', 'users:write'), ('admin', 'roles:manage'),
        ('admin', 'audit:read'), ('admin', 'drift:scan'),
        ('auditor', 'users:read'), ('auditor', 'audit:read'),
        ('user', 'users:read')
     ) AS v (role_name, permission_name)
JOIN roles r ON r.name = v.role_name
JOIN permissions p ON p.name = v.permission_name
ON CONFLICT DO NOTHING;

-- A fresh, finished drift scan at every `up`.
INSERT INTO drift_scans (started_at, finished_at, status)
VALUES (now() - interval '30 seconds', now(), 'completed');
