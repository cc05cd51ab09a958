import Foundation
import HTTPClient
import Reconciler
import Spec
import StateStore

/// `orgctl webhooks deliver|status|retry|test|prune`: delivery of the events apply writes to the
/// outbox (docs/webhooks.md).
enum WebhooksCommand {
    /// Operator flags for receivers that are not public: a configuration can never set them.
    static let networkOptions: [OptionSpec] = [
        .option("allow-private", valueName: "cidr", help: "Also deliver to addresses in this network although they are not public (repeatable).",
                repeatable: true),
        .option("resolve", valueName: "host:port:address", help: "Use ADDRESS for HOST and PORT instead of a DNS lookup, as curl's --resolve (repeatable); the address is still checked.",
                repeatable: true),
        .option("cacert", valueName: "file", help: "Trust the CA certificates in this PEM file instead of the system's."),
    ]

    static let spec = CommandSpec(
        name: "webhooks",
        abstract: "Deliver the webhook events that apply writes, and operate their outbox.",
        subcommands: [
            CommandSpec(
                name: "deliver",
                abstract: "Send due webhook events, signed (Standard Webhooks), with retries.",
                discussion: """
                    Claims due events from the outbox (several deliverers may run at once: each event is leased to one), \
                    posts each to its webhook's URL signed with the webhook's secret, and records every attempt. 2xx \
                    delivers; 410 disables the endpoint; anything else, 3xx included (redirects are never followed), is \
                    retried with exponential backoff and jitter (429 and 503 wait at least their Retry-After) until the \
                    webhook's maxRetries, then dead-lettered. Every address the URL's host resolves to must be public \
                    unless --allow-private names its network; the connection goes only to the checked addresses. \
                    Without --once it runs until SIGTERM or SIGINT, then finishes the request in flight and hands back \
                    what it claimed.
                    Exit status: 0 success (also when some deliveries failed: see 'webhooks status'), 1 error, 64 usage error.
                    """,
                options: [
                    .flag("once", help: "Make one pass over the events due now, then exit (for cron and CI jobs)."),
                    .option("batch", valueName: "n", help: "Events claimed at a time.", default: "20", type: .integer(min: 1, max: 1000)),
                    .option("parallel", valueName: "n", help: "Requests in flight at once, each worker keeping its connections alive (1: one at a time).",
                            default: "\(Deliverer.defaultParallel)", type: .integer(min: 1, max: Deliverer.maxParallel)),
                    .option("interval", valueName: "duration", help: "Without --once: how long to wait when nothing is due.", default: "5s",
                            type: .duration(maxSeconds: 3600)),
                    .option("metrics", valueName: "file", help: "Write Prometheus metrics (textfile collector format) to this file after each pass."),
                ] + networkOptions + StateAccess.options),
            CommandSpec(
                name: "status",
                abstract: "Show each webhook's pending, delivered and dead-lettered events, last error, and whether it is disabled.",
                discussion: "Exit status: 0 success, 1 error (no database), 64 usage error.",
                options: [
                    .option("format", valueName: "format", help: "Output format.", default: "text", allowedValues: ["text", "json"]),
                    .option("metrics", valueName: "file", help: "Also write Prometheus metrics (textfile collector format) to this file."),
                ] + StateAccess.readOptions),
            CommandSpec(
                name: "retry",
                abstract: "Requeue dead-lettered events: one event, one webhook's, or all.",
                discussion: """
                    The events are due at once, with a fresh retry budget. --webhook and --all also re-enable the \
                    endpoints a 410 answer disabled; an event of a disabled endpoint is dead-lettered again until then.
                    Exit status: 0 success, 1 error (no such event or webhook), 64 usage error.
                    """,
                options: [
                    .option("event", valueName: "id", help: "The event id (the webhook-id header, msg_…)."),
                    .option("webhook", valueName: "tenant/name", help: "Every dead letter of this webhook."),
                    .flag("all", help: "Every dead letter."),
                ] + StateAccess.readOptions,
                constraints: [.exclusive(["event", "webhook", "all"])]),
            CommandSpec(
                name: "test",
                abstract: "Send a signed webhook.test event to one webhook and report the response.",
                discussion: "Nothing is written to the outbox. Exit status: 0 when the endpoint answered 2xx, 1 otherwise, 64 usage error.",
                arguments: [ArgumentSpec("webhook", help: "The webhook, as TENANT/NAME (e.g. acme/slack).")],
                options: networkOptions + StateAccess.options),
            CommandSpec(
                name: "prune",
                abstract: "Delete delivered events (and their attempts) older than a retention.",
                discussion: "Pending and dead-lettered events are kept. Exit status: 0 success, 1 error, 64 usage error.",
                options: [
                    .option("older-than", valueName: "duration", help: "Delete events delivered longer ago than this (required).",
                            type: .duration(maxSeconds: 10 * 365 * 86_400))
                ] + StateAccess.readOptions),
        ])

    // MARK: Shared

    static func openStore(_ command: ParsedCommand, _ context: CommandContext, key: StateKey?,
                          access: StateAccessMode = .readWrite) throws -> any StateStore {
        // Read-only reads an older schema as migrated (an empty outbox) without writing to it.
        // Never created here: a mistyped --state must say it does not exist, not make an empty state and report 0 events.
        guard let store = try StateAccess.open(command, context, access: access, key: key, createsMissing: false) else {
            throw CommandFailure(message: "the state database '\(StateAccess.display(command, context))' does not exist",
                                 help: "pass --state (or set ORGCTL_STATE) to the database that 'orgctl apply' wrote")
        }
        return store
    }

    static func failure(_ error: StateError) -> CommandFailure { CommandFailure(message: error.message, help: error.help) }

    static func client(_ command: ParsedCommand) throws -> HTTPClient {
        guard let client = HTTPClient(options: try clientOptions(command)) else {
            throw CommandFailure(message: "libcurl could not be initialised", help: "check the libcurl installation (Debian: libcurl4)")
        }
        return client
    }

    /// The operator's network flags (`--allow-private`, `--resolve`, `--cacert`).
    static func clientOptions(_ command: ParsedCommand) throws -> HTTPClient.Options {
        var options = HTTPClient.Options()
        for text in command.values("allow-private") {
            guard let network = AllowedNetwork(text) else {
                throw CommandFailure(message: "--allow-private '\(TerminalText.escape(text))' is not a network in CIDR notation", help: "write it as 127.0.0.1/32 or 10.0.0.0/8 or fd00::/8",
                                     exitCode: ExitCode.usage)
            }
            options.allowPrivate.append(network)
        }
        for text in command.values("resolve") {
            guard let entry = ResolveOverride(text) else {
                throw CommandFailure(message: "--resolve '\(TerminalText.escape(text))' is not HOST:PORT:ADDRESS", help: "write it as hooks.example.com:443:203.0.113.7",
                                     exitCode: ExitCode.usage)
            }
            options.resolve.append(entry)
        }
        if let file = command.value("cacert") {
            guard FileManager.default.isReadableFile(atPath: file) else {
                throw CommandFailure(message: "cannot read the CA file '\(TerminalText.escape(file))'", help: "check the path given by --cacert")
            }
            options.caFile = file
        }
        return options
    }

    /// The clock: ORGCTL_NOW when set (tests), else the system clock, read each time.
    static func clock(_ context: CommandContext) -> @Sendable () -> Date {
        if context.environment["ORGCTL_NOW"].flatMap({ ISO8601DateFormatter().date(from: $0) }) != nil {
            let pinned = context.now
            return { pinned }
        }
        return { Date() }
    }

    /// `TENANT/NAME`.
    static func webhookName(_ text: String) throws -> (tenant: String, name: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw CommandFailure(message: "'\(TerminalText.escape(text))' does not name a webhook as TENANT/NAME", help: "write it as acme/slack",
                                 exitCode: ExitCode.usage)
        }
        return (String(parts[0]), String(parts[1]))
    }

    /// An attempt's result as recorded: the first bytes of the body, and the error text.
    static let recordedBodyBytes = 256

    // MARK: deliver

    static func deliver(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        try FileOutput.checkFolder(of: command.value("metrics"), option: "metrics")
        // Made here first: libcurl's global set-up happens on this thread, before the workers'.
        _ = try client(command)
        let store = try openStore(command, context, key: try StateAccess.requiredKey(command, context))
        let clock = clock(context)
        let pool = DeliveryPool(workers: command.integer("parallel") ?? Deliverer.defaultParallel, options: try clientOptions(command),
                                clock: clock, stops: Deliverer.stopsEndpoint)
        defer { pool.close() }
        let deliverer = Deliverer(store: store, pool: pool, console: context.console, clock: clock,
                                  batch: command.integer("batch") ?? 20)
        let metrics = command.value("metrics")
        func writeMetrics() throws {
            guard let metrics else { return }
            let text = try metricsText(store.outbox, now: deliverer.clock())
            try FileOutput.replaceAtomically(metrics, data: Data(text.utf8), what: "metrics")
        }
        // Fewer connections than requests: the workers kept theirs alive.
        func reportConnections() {
            let count = pool.connectionsOpened
            context.console.info("\(count) connection\(count == 1 ? "" : "s") opened by \(pool.workers) worker\(pool.workers == 1 ? "" : "s")")
        }
        if command.flag("once") {
            let totals = try deliverer.pass(stop: StopSignal())
            try writeMetrics()
            context.console.print("\(totals.delivered) delivered, \(totals.retrying) to retry, \(totals.dead) dead-lettered")
            reportConnections()
            return ExitCode.success
        }
        let stop = StopSignal()
        let watch = stop.watch(signals: [SIGTERM, SIGINT])
        defer { watch.end() }
        let interval = Double(command.duration("interval")?.seconds ?? 5)
        var totals = Deliverer.Totals()
        context.console.info("delivering as \(TerminalText.escape(deliverer.id)); stop with SIGTERM or SIGINT")
        while !stop.isSet {
            let pass = try deliverer.pass(stop: stop)
            totals.add(pass)
            try writeMetrics()
            if pass.claimed == 0 { stop.sleep(seconds: interval) }
        }
        context.console.print("stopped: \(totals.delivered) delivered, \(totals.retrying) to retry, \(totals.dead) dead-lettered")
        reportConnections()
        return ExitCode.success
    }

    // MARK: status

    static func status(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        try FileOutput.checkFolder(of: command.value("metrics"), option: "metrics")
        let store = try openStore(command, context, key: try StateAccess.key(command, context), access: .readOnly)
        let outbox = store.outbox
        let webhooks: [WebhookDeliveryStatus]
        let dead: [DeadLetter]
        do {
            webhooks = try outbox.status()
            dead = try outbox.deadLetters()
        } catch {
            throw failure(error)
        }
        if let file = command.value("metrics") {
            try FileOutput.replaceAtomically(file, data: Data(try metricsText(outbox, now: context.now).utf8), what: "metrics")
        }
        let console = context.console
        if command.value("format") == "json" {
            let rows: [[String: Any]] = webhooks.map { status in
                var row: [String: Any] = ["webhook": status.address, "exists": status.exists, "enabled": status.enabled,
                                          "pending": status.pending, "delivered": status.delivered, "deadLettered": status.dead,
                                          "attempts": status.attempts, "disabled": status.disabledReason != nil]
                if let error = status.lastError { row["lastError"] = error }
                if let at = status.lastErrorAt { row["lastErrorAt"] = AuditTimeText.string(at) }
                if let reason = status.disabledReason { row["disabledReason"] = reason }
                return row
            }
            let letters: [[String: Any]] = dead.map { letter in
                var row: [String: Any] = ["id": letter.id, "webhook": letter.webhook, "type": letter.type,
                                          "auditSequence": letter.auditSequence, "attempts": letter.attempts]
                if let error = letter.lastError { row["lastError"] = error }
                return row
            }
            console.print(JSONOutput.string(["formatVersion": 1, "webhooks": rows, "deadLetters": letters]))
            return ExitCode.success
        }
        var text = ""
        for status in webhooks {
            var state = status.exists ? (status.enabled ? "enabled" : "not enabled") : "no longer exists"
            if status.disabledReason != nil { state = "disabled" }
            text += "\(TerminalText.escape(status.address))  \(state)\n"
            text += "  pending \(status.pending), delivered \(status.delivered), dead-lettered \(status.dead), attempts \(status.attempts)\n"
            if let reason = status.disabledReason { text += "  disabled: \(TerminalText.escape(reason))\n" }
            if let error = status.lastError {
                text += "  last error\(status.lastErrorAt.map { " (\(AuditTimeText.string($0)))" } ?? ""): \(TerminalText.escape(error))\n"
            }
        }
        if webhooks.isEmpty { text = "no webhooks and no events\n" }
        console.out(text)
        return ExitCode.success
    }

    // MARK: retry

    static func retry(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let selection: Outbox.RetrySelection
        if let id = command.value("event") {
            selection = .event(id)
        } else if let webhook = command.value("webhook") {
            let (tenant, name) = try webhookName(webhook)
            selection = .webhook(tenant: tenant, name: name)
        } else if command.flag("all") {
            selection = .all
        } else {
            throw CommandFailure(message: "say which dead letters to requeue", help: "pass --event ID, --webhook TENANT/NAME or --all",
                                 exitCode: ExitCode.usage)
        }
        let store = try openStore(command, context, key: try StateAccess.key(command, context))
        let result: Result<Int, Outbox.RetryProblem>
        do {
            result = try store.outbox.retry(selection, now: Int64(context.now.timeIntervalSince1970))
        } catch let error as StateError {
            throw failure(error)
        }
        switch result {
        case .success(let count):
            context.console.print("requeued \(count) event\(count == 1 ? "" : "s")")
            return ExitCode.success
        case .failure(.noSuchEvent):
            throw CommandFailure(message: "the outbox holds no event '\(TerminalText.escape(command.value("event") ?? ""))'",
                                 help: "list dead letters with 'orgctl webhooks status --format json'")
        case .failure(.notDead(let status)):
            throw CommandFailure(message: "event '\(TerminalText.escape(command.value("event") ?? ""))' is \(status), not dead-lettered; only dead letters are requeued",
                                 help: "a pending event is retried on its schedule by 'orgctl webhooks deliver'")
        case .failure(.noSuchWebhook):
            throw CommandFailure(message: "the state database holds no webhook '\(TerminalText.escape(command.value("webhook") ?? ""))'",
                                 help: "name it as TENANT/NAME; 'orgctl state list tenant/*/webhook/*' lists them")
        }
    }

    // MARK: test

    static func test(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let (tenant, name) = try webhookName(command.argument("webhook") ?? "")
        let client = try client(command)
        let store = try openStore(command, context, key: try StateAccess.requiredKey(command, context))
        let target: DeliveryTarget?
        do {
            target = try store.outbox.target(tenant: tenant, name: name)
        } catch {
            throw failure(error)
        }
        let shown = TerminalText.escape("\(tenant)/\(name)")
        guard let target else {
            throw CommandFailure(message: "the state database holds no webhook '\(shown)'",
                                 help: "name it as TENANT/NAME; 'orgctl state list tenant/*/webhook/*' lists them")
        }
        guard let url = target.url, let secret = target.secret else {
            throw CommandFailure(message: "webhook '\(shown)' has no \(target.url == nil ? "URL" : "secret that this state key opens")",
                                 help: "declare its url and secret and apply, with the state key the database was written with")
        }
        let now = context.now
        let id = "msg_test_" + String(UInt64(now.timeIntervalSince1970 * 1000), radix: 16)
        let body = WebhookEvents.testPayload(webhook: target.address, time: AuditTimeText.string(Int64(now.timeIntervalSince1970)))
        let timestamp = Int64(now.timeIntervalSince1970)
        let started = DispatchTime.now()
        let result = client.post(HTTPRequest(url: url, headers: WebhookDelivery.headers(id: id, timestamp: timestamp, body: body, secret: secret),
                                             body: body, timeoutSeconds: target.timeoutSeconds ?? WebhookDelivery.defaultTimeoutSeconds))
        let milliseconds = (DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000
        switch result {
        case .success(let response):
            let ok = (200..<300).contains(response.status)
            var text = "\(shown): HTTP \(response.status) in \(milliseconds) ms\(ok ? "" : (300..<400).contains(response.status) ? " (a redirect, not followed)" : "")\n"
            if !response.bodyPrefix.isEmpty {
                text += "  body: \(TerminalText.escape(String(decoding: response.bodyPrefix.prefix(recordedBodyBytes), as: UTF8.self)))\(response.bodyPrefix.count > recordedBodyBytes || response.bodyTruncated ? "…" : "")\n"
            }
            context.console.out(text)
            return ok ? ExitCode.success : ExitCode.failure
        case .failure(let failure):
            throw CommandFailure(message: "\(shown): \(TerminalText.escape(failure.message))",
                                 help: failure.kind == .refused ? "orgctl delivers only to public addresses; an operator may allow a network with --allow-private" : "check the URL and that the receiver is up")
        }
    }

    // MARK: prune

    static func prune(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        guard let retention = command.duration("older-than") else {
            throw CommandFailure(message: "say how old delivered events must be to be deleted", help: "pass --older-than, e.g. --older-than 720h",
                                 exitCode: ExitCode.usage)
        }
        let store = try openStore(command, context, key: try StateAccess.key(command, context))
        let count: Int
        do {
            count = try store.outbox.prune(deliveredBefore: Int64(context.now.timeIntervalSince1970) - retention.seconds)
        } catch {
            throw failure(error)
        }
        context.console.print("deleted \(count) delivered event\(count == 1 ? "" : "s")")
        return ExitCode.success
    }

    // MARK: Metrics

    /// Prometheus text exposition format (node_exporter's textfile collector).
    static func metricsText(_ outbox: Outbox, now: Date) throws -> String {
        let webhooks: [WebhookDeliveryStatus]
        let attempts: Int
        do {
            webhooks = try outbox.status()
            attempts = try outbox.attemptCount()
        } catch {
            throw failure(error)
        }
        func label(_ text: String) -> String {
            text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
        }
        var out = "# HELP orgctl_webhook_events Webhook events in the outbox, by webhook and status.\n# TYPE orgctl_webhook_events gauge\n"
        for status in webhooks {
            for (name, count) in [("pending", status.pending), ("delivered", status.delivered), ("dead", status.dead)] {
                out += "orgctl_webhook_events{webhook=\"\(label(status.address))\",status=\"\(name)\"} \(count)\n"
            }
        }
        out += "# HELP orgctl_webhook_endpoint_disabled 1 when a 410 answer disabled the webhook's endpoint.\n# TYPE orgctl_webhook_endpoint_disabled gauge\n"
        for status in webhooks { out += "orgctl_webhook_endpoint_disabled{webhook=\"\(label(status.address))\"} \(status.disabledReason == nil ? 0 : 1)\n" }
        let delivered = webhooks.reduce(0) { $0 + $1.delivered }
        let latency = webhooks.reduce(Int64(0)) { $0 + $1.latencySeconds }
        out += """
            # HELP orgctl_webhook_attempts Delivery attempts recorded in the outbox (pruned events' attempts are gone).
            # TYPE orgctl_webhook_attempts gauge
            orgctl_webhook_attempts \(attempts)
            # HELP orgctl_webhook_delivery_latency_seconds Time from apply to successful delivery, over the delivered events in the outbox.
            # TYPE orgctl_webhook_delivery_latency_seconds summary
            orgctl_webhook_delivery_latency_seconds_sum \(latency)
            orgctl_webhook_delivery_latency_seconds_count \(delivered)
            # HELP orgctl_webhook_metrics_timestamp_seconds When these metrics were written (Unix time; ORGCTL_NOW when set).
            # TYPE orgctl_webhook_metrics_timestamp_seconds gauge
            orgctl_webhook_metrics_timestamp_seconds \(Int64(now.timeIntervalSince1970))

            """
        return out
    }
}

/// RFC 3339 UTC text of Unix seconds.
enum AuditTimeText {
    static func string(_ seconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }
}
