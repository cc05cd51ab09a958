/// Every SQL text of the webhook outbox, in one place, so that another backend can be given its
/// own spelling of each. They are written to run unchanged on SQLite ≥ 3.35 and PostgreSQL where
/// that is possible (`?N` parameters become `$N`; `UPDATE … RETURNING`, `ON CONFLICT … DO UPDATE`,
/// `CASE` instead of boolean sums, sums cast to BIGINT since PostgreSQL's sum of a bigint is a
/// numeric). The one that differs is ``claim``, whose PostgreSQL form is ``claimSkippingLocked``.
/// PostgreSQL's tables are created from ``Layout`` (the definitions here are SQLite's).
///
/// Times are Unix seconds (`*_at`, `claimed_until`) or milliseconds (`started_at`, `duration_ms`) as
/// integers. docs/state-schema.md documents the tables; docs/webhooks.md the life of an event.
enum OutboxSQL {
    /// The tables of schema step 5 -> 6 (``Schema/migrations``), as `CREATE TABLE name definition`.
    ///
    /// `orgctl_outbox`'s `UNIQUE (status, next_attempt_at, id)` is always satisfied (`id` is the
    /// primary key): it is there for the index it brings, on both backends, so a delivery pass finds
    /// due events without a scan. A migration step is made of `CREATE TABLE` statements only, which a
    /// read-only command can stand in for (see `Schema.Statement`).
    static let tables: [(name: String, definition: String)] = [
        ("orgctl_outbox", """
            (
                id              TEXT PRIMARY KEY,
                webhook_id      INTEGER NOT NULL,
                webhook         TEXT NOT NULL,
                event_type      TEXT NOT NULL,
                audit_seq       INTEGER NOT NULL,
                created_at      INTEGER NOT NULL,
                payload         BLOB NOT NULL,
                status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
                attempts        INTEGER NOT NULL,
                next_attempt_at INTEGER NOT NULL,
                claimed_by      TEXT,
                claimed_until   INTEGER,
                delivered_at    INTEGER,
                last_error      TEXT,
                UNIQUE (status, next_attempt_at, id),
                UNIQUE (webhook_id, status, id)
            ) STRICT
            """),
        ("orgctl_outbox_attempts", """
            (
                event_id    TEXT NOT NULL,
                attempt     INTEGER NOT NULL,
                started_at  INTEGER NOT NULL,
                duration_ms INTEGER NOT NULL,
                status_code INTEGER,
                error       TEXT,
                response    BLOB,
                deliverer   TEXT NOT NULL,
                PRIMARY KEY (event_id, attempt)
            ) STRICT, WITHOUT ROWID
            """),
        ("orgctl_webhook_endpoints", """
            (
                webhook_id  INTEGER PRIMARY KEY,
                webhook     TEXT NOT NULL,
                disabled_at INTEGER NOT NULL,
                reason      TEXT NOT NULL
            ) STRICT
            """),
    ]

    // MARK: Enqueue (inside apply's write transaction)

    static let webhookIDs = "SELECT w.id, t.slug, w.name FROM webhooks w JOIN tenants t ON t.id = w.tenant_id"

    static let insertEvent = """
        INSERT INTO orgctl_outbox (id, webhook_id, webhook, event_type, audit_seq, created_at, payload, status, attempts, next_attempt_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?6)
        """

    // MARK: Delivery

    /// Claims up to ?4 due events for deliverer ?1 until ?2 (the lease), at time ?3; an expired
    /// lease (a deliverer that died) is claimable again. Runs in a write transaction (SQLite's
    /// `BEGIN IMMEDIATE` serialises claimers). PostgreSQL: the inner SELECT ends with
    /// `FOR UPDATE SKIP LOCKED`, so concurrent claimers skip each other's rows instead of waiting.
    static let claim = """
        UPDATE orgctl_outbox SET claimed_by = ?1, claimed_until = ?2
        WHERE id IN (SELECT id FROM orgctl_outbox
                     WHERE status = 'pending' AND next_attempt_at <= ?3 AND (claimed_until IS NULL OR claimed_until <= ?3)
                     ORDER BY next_attempt_at, id LIMIT ?4)
        RETURNING id, webhook_id, webhook, event_type, payload, attempts, created_at
        """

    /// ``claim`` for PostgreSQL: concurrent claimers skip the rows another has locked instead of
    /// waiting for them (and, under READ COMMITTED, never claim a row twice).
    static let claimSkippingLocked = """
        UPDATE orgctl_outbox SET claimed_by = ?1, claimed_until = ?2
        WHERE id IN (SELECT id FROM orgctl_outbox
                     WHERE status = 'pending' AND next_attempt_at <= ?3 AND (claimed_until IS NULL OR claimed_until <= ?3)
                     ORDER BY next_attempt_at, id LIMIT ?4 FOR UPDATE SKIP LOCKED)
        RETURNING id, webhook_id, webhook, event_type, payload, attempts, created_at
        """

    static let webhook = """
        SELECT w.url, w.secret_ciphertext, w.timeout_seconds, w.max_retries, w.enabled, t.slug, w.name, e.reason
        FROM webhooks w JOIN tenants t ON t.id = w.tenant_id LEFT JOIN orgctl_webhook_endpoints e ON e.webhook_id = w.id
        WHERE w.id = ?1
        """

    /// Extends the lease of one claimed event before it is attempted (the request's timeout and a
    /// margin); no row changes when the claim was lost.
    static let renew = """
        UPDATE orgctl_outbox SET claimed_until = ?3 WHERE id = ?1 AND claimed_by = ?2 AND status = 'pending'
        """

    static let webhookByName = """
        SELECT w.id FROM webhooks w JOIN tenants t ON t.id = w.tenant_id WHERE t.slug = ?1 AND w.name = ?2
        """

    static let insertAttempt = """
        INSERT INTO orgctl_outbox_attempts (event_id, attempt, started_at, duration_ms, status_code, error, response, deliverer)
        VALUES (?1, (SELECT coalesce(max(attempt), 0) + 1 FROM orgctl_outbox_attempts WHERE event_id = ?1), ?2, ?3, ?4, ?5, ?6, ?7)
        """

    /// The outcome of an attempt, written only while ?2 still holds the claim (at least once: a
    /// deliverer whose lease ran out and was taken over writes nothing).
    static let delivered = """
        UPDATE orgctl_outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?3, last_error = NULL,
                                 claimed_by = NULL, claimed_until = NULL
        WHERE id = ?1 AND claimed_by = ?2 AND status = 'pending'
        """

    static let retryLater = """
        UPDATE orgctl_outbox SET attempts = attempts + 1, next_attempt_at = ?3, last_error = ?4, claimed_by = NULL, claimed_until = NULL
        WHERE id = ?1 AND claimed_by = ?2 AND status = 'pending'
        """

    static let deadLetter = """
        UPDATE orgctl_outbox SET status = 'dead', attempts = attempts + ?3, last_error = ?4, next_attempt_at = ?5, claimed_by = NULL, claimed_until = NULL
        WHERE id = ?1 AND claimed_by = ?2 AND status = 'pending'
        """

    static let disableEndpoint = """
        INSERT INTO orgctl_webhook_endpoints (webhook_id, webhook, disabled_at, reason) VALUES (?1, ?2, ?3, ?4)
        ON CONFLICT (webhook_id) DO UPDATE SET disabled_at = excluded.disabled_at, reason = excluded.reason
        """

    /// A deliverer stopping (SIGTERM) hands back what it claimed and did not attempt.
    static let release = """
        UPDATE orgctl_outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ?1 AND claimed_by = ?2 AND status = 'pending'
        """

    // MARK: Operating

    static let allWebhooks = "SELECT w.id, t.slug, w.name, w.enabled FROM webhooks w JOIN tenants t ON t.id = w.tenant_id"

    static let counts = """
        SELECT webhook_id, webhook,
               CAST(sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS BIGINT),
               CAST(sum(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) AS BIGINT),
               CAST(sum(CASE WHEN status = 'dead' THEN 1 ELSE 0 END) AS BIGINT),
               CAST(sum(attempts) AS BIGINT),
               CAST(sum(CASE WHEN status = 'delivered' THEN delivered_at - created_at ELSE 0 END) AS BIGINT)
        FROM orgctl_outbox GROUP BY webhook_id, webhook
        """

    static let lastErrors = """
        SELECT o.webhook_id, a.started_at, a.error FROM orgctl_outbox_attempts a JOIN orgctl_outbox o ON o.id = a.event_id
        WHERE a.error IS NOT NULL ORDER BY a.started_at, a.event_id, a.attempt
        """

    static let endpoints = "SELECT webhook_id, webhook, disabled_at, reason FROM orgctl_webhook_endpoints"

    static let deadEvents = """
        SELECT id, webhook, event_type, audit_seq, attempts, last_error FROM orgctl_outbox WHERE status = 'dead' ORDER BY webhook, id
        """

    static let attemptCount = "SELECT count(*) FROM orgctl_outbox_attempts"

    static let retryEvent = """
        UPDATE orgctl_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2, last_error = NULL, claimed_by = NULL, claimed_until = NULL
        WHERE id = ?1 AND status = 'dead'
        """

    static let retryWebhook = """
        UPDATE orgctl_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2, last_error = NULL, claimed_by = NULL, claimed_until = NULL
        WHERE webhook_id = ?1 AND status = 'dead'
        """

    static let retryAll = """
        UPDATE orgctl_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?1, last_error = NULL, claimed_by = NULL, claimed_until = NULL
        WHERE status = 'dead'
        """

    static let enableEndpoint = "DELETE FROM orgctl_webhook_endpoints WHERE webhook_id = ?1"
    static let enableAllEndpoints = "DELETE FROM orgctl_webhook_endpoints"

    static let eventStatus = "SELECT status FROM orgctl_outbox WHERE id = ?1"

    static let pruneAttempts = """
        DELETE FROM orgctl_outbox_attempts
        WHERE event_id IN (SELECT id FROM orgctl_outbox WHERE status = 'delivered' AND delivered_at < ?1)
        """

    static let pruneEvents = "DELETE FROM orgctl_outbox WHERE status = 'delivered' AND delivered_at < ?1"
}
