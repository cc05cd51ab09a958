import Foundation
import Testing

/// A real HTTPS receiver on loopback (tools/webhook_receiver.py): a throwaway CA made with openssl,
/// and every request verified by the third-party `standardwebhooks` package from PyPI.
final class WebhookReceiver {
    static let script = Paths.packageRoot.appendingPathComponent("tools/webhook_receiver.py").path
    static let host = "hooks.example.com"

    let workspace: Workspace
    let process: Process
    let port: Int
    let log: String
    let clockFile: String
    let caFile: String

    init(_ workspace: Workspace, secretVariable: String) throws {
        self.workspace = workspace
        let folder = workspace.path("receiver")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func openssl(_ arguments: [String]) throws {
            let run = try workspace.run(arguments, executable: "/usr/bin/openssl")
            try #require(run.status == 0, "openssl \(arguments): \(run)")
        }
        let (ca, caKey, cert, key, csr, ext) = ("\(folder)/ca.pem", "\(folder)/ca.key", "\(folder)/server.pem", "\(folder)/server.key",
                                                "\(folder)/server.csr", "\(folder)/ext.cnf")
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", caKey, "-out", ca,
                     "-days", "2", "-subj", "/CN=orgctl e2e CA"])
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                     "-subj", "/CN=\(Self.host)"])
        try "subjectAltName=DNS:\(Self.host)\nbasicConstraints=CA:FALSE\n".write(toFile: ext, atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
        caFile = ca
        log = "\(folder)/log.jsonl"
        clockFile = "\(folder)/clock"
        let portFile = "\(folder)/port"
        process = Process()
        // The python3 on PATH: the one .ci/run installs standardwebhooks for (pip install standardwebhooks).
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, "--cert", cert, "--key", key, "--secret-env", secretVariable, "--log", log, "--port-file", portFile,
                             "--clock-file", clockFile]
        process.environment = workspace.environment
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        let errors = "\(folder)/stderr"
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errors)
        try process.run()
        var found: Int?
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let value = Int(text) {
                found = value
                break
            }
            if !process.isRunning { break }
            usleep(50_000)
        }
        let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        // The standardwebhooks package is required: .ci/run installs it; a missing package fails here.
        port = try #require(found, "the receiver did not start: \(stderr)")
    }

    deinit {
        // SIGKILL: a process started from a test thread inherits its blocked signals (SIGTERM among them).
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func url(_ path: String) -> String { "https://\(Self.host):\(port)/\(path)" }

    /// The operator flags a test receiver on loopback needs.
    var flags: [String] { ["--cacert", caFile, "--resolve", "\(Self.host):\(port):127.0.0.1", "--allow-private", "127.0.0.1/32"] }

    struct Request {
        var path: String
        var id: String
        var verified: Bool
        var type: String?
        var body: String
        var error: String?
        /// The TLS connection it came on (numbered by the receiver as it accepted them).
        var connection: Int
    }

    var requests: [Request] {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return Request(path: object["path"] as? String ?? "", id: object["id"] as? String ?? "", verified: object["verified"] as? Bool ?? false,
                           type: object["type"] as? String, body: object["body"] as? String ?? "", error: object["error"] as? String,
                           connection: object["connection"] as? Int ?? 0)
        }
    }

    /// Sets the verifier's clock to the deliverer's pinned one.
    func setClock(_ time: String) throws { try time.write(toFile: clockFile, atomically: true, encoding: .utf8) }
}

@Suite("Webhook delivery", .serialized)
struct WebhookDeliveryTests {
    static let secretVariable = "E2E_HOOK_SECRET"
    /// A Standard Webhooks secret: whsec_ and 32 bytes in base64.
    static let secret = "whsec_" + Data((0..<32).map { UInt8(($0 * 53 + 7) & 0xFF) }).base64EncodedString()
    static let start = "2026-11-22T12:00:00Z"

    static let platform = """
        apiVersion: orgctl.dev/v1
        kind: Platform
        plans:
          pro:
            quotas: {seats: 1000, teams: 10, webhooks: 20, apiKeys: 10}
        roles:
          owner: {permissions: ["*"]}
          member: {permissions: []}
        permissions:
          apps.read: {category: apps}
        events: [member.added, member.removed, member.updated, organization.updated, webhook.test]

        """

    /// A workspace with a receiver and a configuration of tenant `acme` whose webhooks are `hooks`
    /// (name, path, extra YAML lines) and whose members are `members`.
    static func setUp(hooks: [(name: String, path: String, extra: [String])], members: Int = 1, backend: Backend = .sqlite) throws -> (Workspace, WebhookReceiver, String) {
        let workspace = try Workspace(secrets: [secretVariable: secret], name: "webhooks", backend: backend)
        let receiver = try WebhookReceiver(workspace, secretVariable: secretVariable)
        try receiver.setClock(start)
        let config = workspace.path("config")
        try FileManager.default.createDirectory(atPath: config + "/tenants", withIntermediateDirectories: true)
        try platform.write(toFile: config + "/platform.yaml", atomically: true, encoding: .utf8)
        try tenant(hooks: hooks, members: members, receiver: receiver).write(toFile: config + "/tenants/acme.yaml", atomically: true, encoding: .utf8)
        return (workspace, receiver, config)
    }

    static func tenant(hooks: [(name: String, path: String, extra: [String])], members: Int, receiver: WebhookReceiver) -> String {
        var lines = ["apiVersion: orgctl.dev/v1", "kind: Tenant", "slug: acme", "name: Acme", "plan: pro", "members:"]
        for m in 0..<members { lines.append("  user\(m)@acme.com: \(m == 0 ? "owner" : "member")") }
        lines.append("webhooks:")
        for hook in hooks {
            lines += ["  \(hook.name):", "    url: \(receiver.url(hook.path))", "    events: [member.*]", "    secret: {env: \(secretVariable)}"]
            lines += hook.extra.map { "    \($0)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func deliver(_ workspace: Workspace, _ receiver: WebhookReceiver, state: String, at time: String = start, _ extra: [String] = []) throws -> Run {
        try receiver.setClock(time)
        return try workspace.run(["webhooks", "deliver", "--once", "--state", state, "--no-color"] + receiver.flags + extra,
                                 environment: ["ORGCTL_NOW": time])
    }

    static func count(_ workspace: Workspace, _ state: String, _ condition: String = "1 = 1") throws -> Int {
        Int(try workspace.sql(state, "SELECT count(*) FROM orgctl_outbox WHERE \(condition)").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test("apply writes events in its transaction; a no-op apply writes none; deliver sends them signed, verified by standardwebhooks",
          arguments: Backend.all)
    func deliveredAndVerified(backend: Backend) throws {
        let (workspace, receiver, config) = try Self.setUp(hooks: [("main", "acme/ok", [])], members: 2, backend: backend)
        let state = workspace.state
        let applied = try workspace.apply(config, state: state)
        try #require(applied.status == 0, "\(applied)")
        // Two members added: two member.added events for the one webhook, with the audit sequence of each.
        #expect(try Self.count(workspace, state) == 2)
        let audited = try workspace.sql(state, "SELECT count(*) FROM orgctl_audit a JOIN orgctl_outbox o ON o.audit_seq = a.seq")
        #expect(audited.trimmingCharacters(in: .whitespacesAndNewlines) == "2")
        // Nothing to change: no event.
        let again = try workspace.apply(config, state: state)
        #expect(again.status == 0)
        #expect(try Self.count(workspace, state) == 2)

        let metrics = workspace.path("webhooks.prom")
        let run = try Self.deliver(workspace, receiver, state: state, at: Self.start, ["--metrics", metrics])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("2 delivered"), "\(run)")
        // The textfile passes Prometheus's own checker (Debian package prometheus; .ci/run installs it).
        let text = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(text.contains("orgctl_webhook_events{webhook=\"tenant/acme/webhook/main\",status=\"delivered\"} 2"), "\(text)")
        let promtool = try workspace.run(["check", "metrics"], executable: "/usr/bin/promtool", stdin: text)
        #expect(promtool.status == 0, "\(promtool)")
        let requests = receiver.requests
        #expect(requests.count == 2)
        for request in requests {
            #expect(request.verified, "standardwebhooks refused a delivery: \(request.error ?? "")")
            #expect(request.type == "member.added")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])
            let data = try #require(body["data"] as? [String: Any])
            #expect(data["tenant"] as? String == "acme")
            #expect(data["action"] as? String == "create")
            #expect((data["address"] as? String)?.hasPrefix("tenant/acme/member/user") == true)
            #expect(data["actor"] as? String == "e2e")
            #expect((data["auditSequence"] as? Int) != nil)
            #expect(body["timestamp"] as? String == Self.start)
        }
        // webhook-id is the outbox's event id, the receiver's idempotency key.
        let ids = Set(try workspace.sql(state, "SELECT id FROM orgctl_outbox WHERE status = 'delivered'").split(separator: "\n").map(String.init))
        #expect(Set(requests.map(\.id)) == ids)
        #expect(ids.count == 2)

        let status = try workspace.run(["webhooks", "status", "--state", state, "--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        let webhooks = try #require(object["webhooks"] as? [[String: Any]])
        #expect(webhooks.count == 1)
        #expect(webhooks.first?["delivered"] as? Int == 2)
        #expect(webhooks.first?["pending"] as? Int == 0)

        // A second pass has nothing to send.
        let idle = try Self.deliver(workspace, receiver, state: state)
        #expect(idle.stdout.contains("0 delivered"), "\(idle)")
        #expect(receiver.requests.count == 2)

        // `webhooks test` sends a signed webhook.test, verified too; the outbox is unchanged.
        let test = try workspace.run(["webhooks", "test", "acme/main", "--state", state] + receiver.flags)
        #expect(test.status == 0, "\(test)")
        #expect(test.stdout.contains("HTTP 200"))
        #expect(receiver.requests.last?.type == "webhook.test")
        #expect(receiver.requests.last?.verified == true)
        #expect(try Self.count(workspace, state) == 2)

        // Retention: delivered events older than a day go.
        let prune = try workspace.run(["webhooks", "prune", "--older-than", "24h", "--state", state], environment: ["ORGCTL_NOW": "2026-11-24T12:00:00Z"])
        #expect(prune.status == 0, "\(prune)")
        #expect(try Self.count(workspace, state) == 0)
        workspace.assertNoSecretLeaks([Self.secret, String(Self.secret.dropFirst("whsec_".count))])
    }

    @Test("an apply killed at any moment leaves its changes and their events together, or neither")
    func killedApplyLeavesChangesAndEventsTogether() throws {
        let (workspace, receiver, config) = try Self.setUp(hooks: [("main", "acme/ok", [])], members: 1)
        let base = workspace.path("base.db")
        try #require(try workspace.apply(config, state: base).status == 0)
        try workspace.sqlite(base, "PRAGMA wal_checkpoint(TRUNCATE);")
        try Self.tenant(hooks: [("main", "acme/ok", [])], members: 300, receiver: receiver)
            .write(toFile: config + "/tenants/acme.yaml", atomically: true, encoding: .utf8)
        let arguments = ["apply", config, "--auto-approve", "--source", "test", "--no-color", "--quiet", "--max-deletes", "1000"]
        let state = workspace.path("killed.db")
        let started = Date()
        try FileManager.default.copyItem(atPath: base, toPath: state)
        try #require(try workspace.run(arguments + ["--state", state]).status == 0)
        let duration = Date().timeIntervalSince(started)
        // Every member but the first was added by the apply, and each addition has exactly one event.
        #expect(try Self.count(workspace, state) == 300)
        var outcomes = (before: 0, after: 0)
        for i in 0..<12 {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: state + suffix) }
            try FileManager.default.copyItem(atPath: base, toPath: state)
            let process = try workspace.start(arguments + ["--state", state])
            usleep(UInt32(duration * Double(i) / 11 * 1_000_000))
            process.kill()
            _ = process.wait()
            let members = Int(try workspace.sqlite(state, "SELECT count(*) FROM members").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            let events = try Self.count(workspace, state)
            #expect(members == events, "kill #\(i): \(members) members and \(events) events")
            #expect(events == 1 || events == 300, "kill #\(i): \(events) events")
            if events == 1 { outcomes.before += 1 } else { outcomes.after += 1 }
        }
        #expect(outcomes.before > 0, "\(outcomes)")
    }

    @Test("retries: 500 then success, 429 waits its Retry-After; every attempt recorded")
    func retriesAndRetryAfter() throws {
        let (workspace, receiver, config) = try Self.setUp(hooks: [("flaky", "acme/fail-1", []), ("throttled", "acme/throttle", [])])
        let state = workspace.path("state.db")
        try #require(try workspace.apply(config, state: state).status == 0)
        let first = try Self.deliver(workspace, receiver, state: state)
        #expect(first.stdout.contains("0 delivered, 2 to retry"), "\(first)")
        // 5 s (+ up to 20% jitter) later the 500 is retried; the 429 asked for an hour.
        let later = try Self.deliver(workspace, receiver, state: state, at: "2026-11-22T12:00:10Z")
        #expect(later.stdout.contains("1 delivered, 0 to retry"), "\(later)")
        #expect(try Self.count(workspace, state, "webhook = 'tenant/acme/webhook/throttled' AND status = 'pending'") == 1)
        let next = try workspace.sqlite(state, "SELECT next_attempt_at FROM orgctl_outbox WHERE status = 'pending'")
        #expect(Int(next.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 1_795_348_800 + 3600)
        let hourLater = try Self.deliver(workspace, receiver, state: state, at: "2026-11-22T13:00:01Z")
        #expect(hourLater.stdout.contains("1 delivered"), "\(hourLater)")
        #expect(try Self.count(workspace, state, "status = 'delivered'") == 2)
        // Every attempt: 2 for each webhook, with its status and the first bytes of the body.
        let attempts = try workspace.sqlite(state, "SELECT status_code, error IS NULL, CAST(response AS TEXT) FROM orgctl_outbox_attempts ORDER BY started_at, status_code")
        #expect(attempts.lines.filter { !$0.isEmpty } == ["429|0|slow down", "500|0|failing on purpose", "200|1|ok", "200|1|ok"], "\(attempts)")
        #expect(receiver.requests.allSatisfy { $0.verified })
    }

    @Test("410 disables the endpoint; a redirect is a failure and is not followed; dead letters are requeued by retry", arguments: Backend.all)
    func goneRedirectDeadLetters(backend: Backend) throws {
        let (workspace, receiver, config) = try Self.setUp(hooks: [("gone", "acme/gone", []), ("moved", "acme/redirect", ["maxRetries: 0"])], members: 2,
                                                           backend: backend)
        let state = workspace.state
        try #require(try workspace.apply(config, state: state).status == 0)
        // One request at a time: with more in flight, those already sent to the endpoint when its 410 arrives still go.
        let run = try Self.deliver(workspace, receiver, state: state, at: Self.start, ["--parallel", "1"])
        #expect(run.stdout.contains("0 delivered, 0 to retry, 4 dead-lettered"), "\(run)")
        // The second event of the disabled endpoint is not sent; the redirect's target never sees a request.
        #expect(receiver.requests.filter { $0.path.hasSuffix("/gone") }.count == 1)
        #expect(receiver.requests.filter { $0.path.hasSuffix("/redirect") }.count == 2)
        #expect(!receiver.requests.contains { $0.path == "/ok" })
        let status = try workspace.run(["webhooks", "status", "--state", state, "--no-color"])
        #expect(status.stdout.contains("tenant/acme/webhook/gone  disabled"), "\(status)")
        #expect(status.stdout.contains("(a redirect, which is not followed)"), "\(status)")

        let dead = try workspace.sql(state, "SELECT id FROM orgctl_outbox WHERE webhook = 'tenant/acme/webhook/moved' ORDER BY id LIMIT 1")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let one = try workspace.run(["webhooks", "retry", "--event", dead, "--state", state])
        #expect(one.status == 0 && one.stdout.contains("requeued 1 event"), "\(one)")
        let notDead = try workspace.run(["webhooks", "retry", "--event", dead, "--state", state])
        #expect(notDead.status == 1 && notDead.stderr.contains("is pending, not dead-lettered"), "\(notDead)")
        let webhook = try workspace.run(["webhooks", "retry", "--webhook", "acme/gone", "--state", state])
        #expect(webhook.stdout.contains("requeued 2 events"), "\(webhook)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM orgctl_webhook_endpoints").hasPrefix("0"))
        let both = try workspace.run(["webhooks", "retry", "--event", dead, "--all", "--state", state])
        #expect(both.status == 64, "\(both)")
        let all = try workspace.run(["webhooks", "retry", "--all", "--state", state])
        #expect(all.stdout.contains("requeued 1 event"), "\(all)")
        #expect(try Self.count(workspace, state, "status = 'pending'") == 4)
    }

    @Test("timeouts, closed connections and huge bodies are attempts with their error; the body read is capped")
    func hangCloseHuge() throws {
        let (workspace, receiver, config) = try Self.setUp(hooks: [("slow", "acme/hang", ["timeout: 1s"]), ("closer", "acme/close", []),
                                                                   ("big", "acme/huge", [])])
        let state = workspace.path("state.db")
        try #require(try workspace.apply(config, state: state).status == 0)
        let run = try Self.deliver(workspace, receiver, state: state)
        #expect(run.stdout.contains("1 delivered, 2 to retry"), "\(run)")
        let errors = try workspace.sqlite(state, "SELECT o.webhook, a.error, length(a.response) FROM orgctl_outbox_attempts a JOIN orgctl_outbox o ON o.id = a.event_id ORDER BY o.webhook")
        let lines = errors.lines.filter { !$0.isEmpty }
        #expect(lines.count == 3, "\(errors)")
        #expect(lines.first { $0.hasPrefix("tenant/acme/webhook/big|") } == "tenant/acme/webhook/big||256")
        #expect(lines.first { $0.hasPrefix("tenant/acme/webhook/slow|") }?.contains("timeout: no response within 1s") == true, "\(errors)")
        #expect(lines.first { $0.hasPrefix("tenant/acme/webhook/closer|network:") } != nil, "\(errors)")
    }

    @Test("an address that is not public is refused at delivery unless an operator allows it; YAML cannot")
    func ssrfRefused() throws {
        let (workspace, receiver, config) = try Self.setUp(hooks: [("main", "acme/ok", [])])
        let state = workspace.path("state.db")
        try #require(try workspace.apply(config, state: state).status == 0)
        // hooks.example.com pinned to 127.0.0.1, without --allow-private: nothing is sent.
        let refused = try workspace.run(["webhooks", "deliver", "--once", "--state", state, "--cacert", receiver.caFile,
                                         "--resolve", "\(WebhookReceiver.host):\(receiver.port):127.0.0.1"])
        #expect(refused.status == 0, "\(refused)")
        #expect(receiver.requests.isEmpty)
        let error = try workspace.sqlite(state, "SELECT error FROM orgctl_outbox_attempts")
        #expect(error.contains("refused: 'hooks.example.com' resolves to 127.0.0.1, a loopback address"), "\(error)")
        // A network allowed that does not hold the address changes nothing.
        _ = try workspace.run(["webhooks", "deliver", "--once", "--state", state, "--cacert", receiver.caFile,
                               "--resolve", "\(WebhookReceiver.host):\(receiver.port):127.0.0.1", "--allow-private", "10.0.0.0/8"],
                              environment: ["ORGCTL_NOW": "2026-11-22T12:01:00Z"])
        #expect(receiver.requests.isEmpty)
        // The allowance is an operator flag only: the configuration format has no such key.
        try workspace.edit("config/tenants/acme.yaml", replacing: "    secret:", with: "    allowPrivate: [127.0.0.1/32]\n    secret:")
        let validate = try workspace.run(["validate", config])
        #expect(validate.status == 1, "\(validate)")
        #expect(validate.stderr.contains("allowPrivate") || validate.stdout.contains("allowPrivate"), "\(validate)")
    }

    @Test("two deliverers at once send each event once; a deliverer killed mid-batch loses no event; SIGTERM stops gracefully",
          arguments: Backend.all)
    func concurrentAndKilled(backend: Backend) throws {
        let (workspace, receiver, config) = try Self.setUp(hooks: [("main", "acme/ok", [])], members: 40, backend: backend)
        let state = workspace.state
        try #require(try workspace.apply(config, state: state).status == 0)
        #expect(try Self.count(workspace, state) == 40)
        let arguments = ["webhooks", "deliver", "--once", "--batch", "3", "--state", state] + receiver.flags
        let a = try workspace.start(arguments, environment: ["ORGCTL_NOW": Self.start])
        let b = try workspace.start(arguments, environment: ["ORGCTL_NOW": Self.start])
        let (runA, runB) = (a.wait(), b.wait())
        #expect(runA.status == 0 && runB.status == 0, "\(runA)\n\(runB)")
        let ids = receiver.requests.map(\.id)
        #expect(ids.count == 40, "each event once: \(ids.count) requests")
        #expect(Set(ids).count == 40)
        #expect(try Self.count(workspace, state, "status = 'delivered'") == 40)

        // 40 more events; a long-running deliverer is killed as soon as it has delivered some.
        try workspace.edit("config/tenants/acme.yaml", replacing: "members:\n", with: "members:\n" + (0..<40).map { "  extra\($0)@acme.com: member\n" }.joined())
        try #require(try workspace.apply(config, state: state).status == 0)
        let killed = try workspace.start(["webhooks", "deliver", "--batch", "10", "--state", state] + receiver.flags, environment: ["ORGCTL_NOW": Self.start])
        for _ in 0..<400 where receiver.requests.count < 45 { usleep(10_000) }
        killed.kill()
        _ = killed.wait()
        // Its claims expire (60 s lease); a later pass delivers everything that was not.
        let later = try Self.deliver(workspace, receiver, state: state, at: "2026-11-22T12:05:00Z")
        #expect(later.status == 0, "\(later)")
        #expect(try Self.count(workspace, state, "status = 'delivered'") == 80)
        #expect(Set(receiver.requests.map(\.id)).count == 80)

        // SIGTERM: the long-running mode stops, hands back what it claimed, and exits 0.
        let running = try workspace.start(["webhooks", "deliver", "--interval", "1s", "--state", state] + receiver.flags)
        usleep(500_000)
        kill(running.process.processIdentifier, SIGTERM)
        let stopped = running.wait()
        #expect(stopped.status == 0 && !stopped.signaled, "\(stopped)")
        #expect(stopped.stdout.contains("stopped:"), "\(stopped)")
        #expect(try Self.count(workspace, state, "claimed_by IS NOT NULL") == 0)
        workspace.assertNoSecretLeaks([Self.secret, String(Self.secret.dropFirst("whsec_".count))])
    }

    @Test("parallel delivery sends each event once over kept-alive connections; killed, it loses no event; SIGTERM records what was in flight",
          arguments: Backend.all)
    func parallelDelivery(backend: Backend) throws {
        let (workspace, receiver, config) = try Self.setUp(hooks: [("main", "acme/ok", [])], members: 60, backend: backend)
        let state = workspace.state
        try #require(try workspace.apply(config, state: state).status == 0)
        #expect(try Self.count(workspace, state) == 60)
        let run = try Self.deliver(workspace, receiver, state: state, at: Self.start, ["--parallel", "4", "--batch", "7"])
        #expect(run.status == 0 && run.stdout.contains("60 delivered, 0 to retry, 0 dead-lettered"), "\(run)")
        let requests = receiver.requests
        // Each event sent once, each verified by standardwebhooks, each recorded once with one attempt.
        #expect(requests.count == 60, "\(requests.count) requests")
        #expect(Set(requests.map(\.id)).count == 60)
        #expect(requests.allSatisfy { $0.verified })
        #expect(try Self.count(workspace, state, "status = 'delivered' AND attempts = 1") == 60)
        let attempts = try workspace.sql(state, "SELECT count(*), count(DISTINCT event_id) FROM orgctl_outbox_attempts")
        #expect(attempts.trimmingCharacters(in: .whitespacesAndNewlines) == "60|60", "\(attempts)")
        // Connections were reused: four workers, each keeping its connection alive.
        let connections = Set(requests.map(\.connection))
        #expect(!connections.contains(0))
        #expect(connections.count < requests.count, "\(connections.count) connections for \(requests.count) requests")
        #expect(connections.count <= 8, "\(connections.count) connections for 4 workers")

        // 60 more events; a parallel deliverer is killed (SIGKILL) once it has sent some.
        try workspace.edit("config/tenants/acme.yaml", replacing: "members:\n", with: "members:\n" + (0..<60).map { "  extra\($0)@acme.com: member\n" }.joined())
        try #require(try workspace.apply(config, state: state).status == 0)
        let killed = try workspace.start(["webhooks", "deliver", "--parallel", "4", "--batch", "10", "--state", state] + receiver.flags,
                                         environment: ["ORGCTL_NOW": Self.start])
        for _ in 0..<1000 where receiver.requests.count < 70 { usleep(10_000) }
        killed.kill()
        _ = killed.wait()
        // Its claims expire (60 s lease); a later pass sends what was not recorded: nothing is lost.
        let later = try Self.deliver(workspace, receiver, state: state, at: "2026-11-22T12:05:00Z", ["--parallel", "4"])
        #expect(later.status == 0, "\(later)")
        #expect(try Self.count(workspace, state, "status = 'delivered'") == 120)
        #expect(Set(receiver.requests.map(\.id)).count == 120)
        // An outcome is written once: one attempt row per delivered event sent after the kill, none twice.
        let twice = try workspace.sql(state, "SELECT count(*) FROM orgctl_outbox o WHERE attempts <> (SELECT count(*) FROM orgctl_outbox_attempts a WHERE a.event_id = o.id)")
        #expect(twice.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(twice)")

        // SIGTERM while requests are in flight (a receiver answering in 0.2 s): they finish and are
        // recorded, what was claimed and not sent is handed back, and it exits 0.
        try workspace.edit("config/tenants/acme.yaml", replacing: "acme/ok", with: "acme/slow")
        try workspace.edit("config/tenants/acme.yaml", replacing: "members:\n", with: "members:\n" + (0..<40).map { "  late\($0)@acme.com: member\n" }.joined())
        let earlier = Set(try workspace.sql(state, "SELECT id FROM orgctl_outbox").split(separator: "\n").map(String.init))
        try #require(try workspace.apply(config, state: state).status == 0)
        let late = Set(try workspace.sql(state, "SELECT id FROM orgctl_outbox").split(separator: "\n").map(String.init)).subtracting(earlier)
        #expect(late.count == 40)
        let before = receiver.requests.count
        let running = try workspace.start(["webhooks", "deliver", "--parallel", "4", "--batch", "10", "--interval", "1s", "--state", state] + receiver.flags,
                                          environment: ["ORGCTL_NOW": Self.start])
        for _ in 0..<1000 where receiver.requests.count < before + 6 { usleep(10_000) }
        kill(running.process.processIdentifier, SIGTERM)
        let stopped = running.wait()
        #expect(stopped.status == 0 && !stopped.signaled, "\(stopped)")
        #expect(stopped.stdout.contains("stopped:"), "\(stopped)")
        #expect(try Self.count(workspace, state, "claimed_by IS NOT NULL") == 0)
        // Every request the receiver answered was recorded as delivered; the rest are pending, untouched.
        let sent = Set(receiver.requests.dropFirst(before).map(\.id))
        let delivered = Set(try workspace.sql(state, "SELECT id FROM orgctl_outbox WHERE status = 'delivered'").split(separator: "\n").map(String.init))
            .intersection(late)
        #expect(sent == delivered, "\(sent.count) sent, \(delivered.count) recorded delivered")
        let untouched = Set(try workspace.sql(state, "SELECT id FROM orgctl_outbox WHERE status = 'pending' AND attempts = 0").split(separator: "\n").map(String.init))
        #expect(untouched == late.subtracting(delivered))
        workspace.assertNoSecretLeaks([Self.secret, String(Self.secret.dropFirst("whsec_".count))])
    }
}
