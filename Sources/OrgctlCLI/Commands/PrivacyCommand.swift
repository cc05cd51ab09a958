import Audit
import Foundation
import StateStore

/// `orgctl privacy export|forget`: a data subject's access and erasure requests (docs/audit-chain.md section 8).
enum PrivacyCommand {
    static let spec = CommandSpec(
        name: "privacy",
        abstract: "Answer a data subject's access and erasure requests (GDPR Art. 15 and 17).",
        subcommands: [
            CommandSpec(
                name: "export", abstract: "Print everything the state holds about one person, as JSON.",
                discussion: """
                    Prints one JSON document (docs/audit-chain.md 8.7): the person's memberships and roles per tenant, \
                    team memberships, guest expiry, the audit entries that name them (with every subject token \
                    resolved), and the webhook events whose payload holds their address. Members are sorted by name \
                    (RFC 8785); non-ASCII is written as \\u escapes. A person the state knows nothing about (never \
                    recorded, or forgotten) gets the same document with empty lists, and a note on standard error.
                    Exit status: 0 printed, 1 error, 64 usage error.
                    """,
                arguments: [ArgumentSpec("email", help: "The person's e-mail address, as the configuration writes it.")],
                options: StateAccess.readOptions),
            CommandSpec(
                name: "forget", abstract: "Erase a person's data from the state; the audit log keeps verifying.",
                discussion: """
                    Refused while the state still holds the person (remove them from the configuration and apply \
                    first), for a person it knows nothing about, and for one named by audit entries written before \
                    subject tokens (format 1, docs/audit-chain.md 8.6). Otherwise, in one transaction under the apply \
                    lock: deletes the person's subject rows (so every audit entry naming them reads [erased]), redacts \
                    the webhook events and delivery records that hold their address, and appends one audit entry that \
                    names nobody. Then, on SQLite, checkpoints and truncates the write-ahead log and checks that no byte \
                    of the address is left in the files (rebuilding with VACUUM when one is); on PostgreSQL, rewrites \
                    the tables that held it with VACUUM FULL. With --departed-before, forgets everyone in no tenant \
                    whose last membership removal is before DATE. The erasure's entry names nobody: a --source that \
                    holds an e-mail address is a usage error, and an actor who is the person to forget is refused.
                    Exit status: 0 erased, 1 refused or error (nothing written), 64 usage error.
                    """,
                arguments: [ArgumentSpec("email", help: "The person's e-mail address.", optional: true)],
                options: [
                    .option("departed-before", valueName: "date", help: "Forget everyone in no tenant whose last removal is before this UTC date (2026-01-01).",
                            type: .utcTime),
                    .option("actor", valueName: "name", help: "Who erases, for the audit log.",
                            default: Provenance.actorVariables.joined(separator: ", ") + ", else the account name"),
                    .option("source", valueName: "text", help: "The request's reference (a ticket, without an e-mail address), for the audit log.", default: "local"),
                ] + StateAccess.options),
        ])

    static func openStore(_ command: ParsedCommand, _ context: CommandContext, access: StateAccessMode) throws -> any StateStore {
        // Never created here: forgetting in a mistyped --state must say it does not exist, not make an empty state.
        // An older schema is migrated by the erasure's own transaction: a refused forget leaves it as it was.
        guard let store = try StateAccess.open(command, context, access: access, key: try StateAccess.key(command, context), readsOlderSchema: access == .readOnly,
                                               createsMissing: false, defersMigration: access == .readWrite) else {
            throw CommandFailure(message: "the state database '\(StateAccess.display(command, context))' does not exist",
                                 help: "pass --state (or set ORGCTL_STATE) to the database that 'orgctl apply' wrote")
        }
        return store
    }

    static func export(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let email = command.argument("email") ?? ""
        let store = try openStore(command, context, access: .readOnly)
        let found: PersonalDataExport
        do {
            found = try store.personalData(email: email)
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
        if found.isEmpty {
            context.console.printError("note: \(TerminalText.escape(store.location)) holds no personal data of '\(TerminalText.escape(email))' (never recorded, or forgotten)")
        }
        context.console.print(asciiJSON(document(found)))
        return ExitCode.success
    }

    /// The export document (docs/audit-chain.md 8.7).
    static func document(_ found: PersonalDataExport) -> JSONValue {
        func optional(_ text: String?) -> JSONValue { text.map { .string($0) } ?? .null }
        var object = JSONObject()
        object["formatVersion"] = 1
        object["email"] = .string(found.email)
        object["memberships"] = .array(found.memberships.sorted { $0.address < $1.address }.map {
            ["address": .string($0.address), "tenant": .string($0.tenant), "role": .string($0.role), "expires": optional($0.expires)]
        })
        object["teams"] = .array(found.teams.sorted { $0.address < $1.address }.map {
            ["address": .string($0.address), "tenant": .string($0.tenant), "team": .string($0.team), "role": .string($0.role)]
        })
        object["auditEntries"] = .array(found.auditEntries.map(\.jsonValue))
        object["webhookEvents"] = .array(found.webhookEvents.map { event in
            let payload = (try? CanonicalJSON.decode(event.payload)) ?? .string(String(decoding: event.payload, as: UTF8.self))
            return ["id": .string(event.id), "webhook": .string(event.webhook), "type": .string(event.type), "status": .string(event.status),
                    "auditSeq": .int(event.auditSequence), "payload": payload]
        })
        return .object(object)
    }

    /// RFC 8785 JSON with every non-ASCII scalar as a `\u` escape: nothing a terminal interprets.
    static func asciiJSON(_ value: JSONValue) -> String {
        var result = ""
        for scalar in String(decoding: CanonicalJSON.encode(value), as: UTF8.self).unicodeScalars {
            if scalar.isASCII {
                result.unicodeScalars.append(scalar)
            } else {
                for unit in String(scalar).utf16 { result += "\\u" + String(repeating: "0", count: 4 - String(unit, radix: 16).count) + String(unit, radix: 16) }
            }
        }
        return result
    }

    static func forget(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let whom: ErasureRequest.Whom
        switch (command.argument("email"), command.value("departed-before")) {
        case (let email?, nil): whom = .emails([email])
        case (nil, let date?): whom = .departedBefore(String((ValueType.utcTime(date) ?? date).prefix(20)))
        default:
            throw CommandFailure(message: "name one person (EMAIL) or a retention date (--departed-before), not both or neither",
                                 help: "run 'orgctl privacy forget alice@example.com' or 'orgctl privacy forget --departed-before 2026-01-01'",
                                 exitCode: ExitCode.usage)
        }
        let actor = Provenance.actor(command, context.environment), source = command.value("source") ?? "local"
        try checkNamesNobody(whom: whom, actor: actor, source: source)
        let store = try openStore(command, context, access: .readWrite)
        let request = ErasureRequest(whom: whom, actor: actor, source: source, time: Provenance.timestamp(context.now))
        let outcome: ErasureOutcome
        do {
            outcome = try store.forget(request)
        } catch let refusal as ErasureRefusal {
            throw failure(refusal, store: store)
        } catch let error as StateError {
            throw CommandFailure(message: error.message, help: error.help)
        }
        let console = context.console
        if case .departedBefore(let date) = whom {
            console.print("forgot \(outcome.forgotten) \(outcome.forgotten == 1 ? "person" : "people") who left every tenant before \(TerminalText.escape(date))")
            if outcome.keptInPlainEntries > 0 {
                console.printError("note: kept \(outcome.keptInPlainEntries) who are named by audit entries of format 1, which cannot be erased (docs/audit-chain.md 8.6)")
            }
        } else {
            console.print("forgot 1 person: their audit entries now read \(PersonalData.erasedMarker)")
        }
        if outcome.auditSequence > 0 {
            console.print("redacted \(outcome.redactedEvents) webhook event\(outcome.redactedEvents == 1 ? "" : "s"); recorded as audit entry \(outcome.auditSequence)")
        }
        for line in outcome.scrubbing {
            if line.hasPrefix("warning: ") { console.printError(TerminalText.escape(line)) } else { console.print(TerminalText.escape(line)) }
        }
        return ExitCode.success
    }

    /// The erasure's audit entry names nobody (docs/audit-chain.md 8.5). An e-mail address in its source
    /// (a ticket reference such as "DSAR from bob@example.com"), or the person erased as its actor, would be
    /// tokenised by that very entry: the address stored again in the subject table, and the entry tied to it.
    static func checkNamesNobody(whom: ErasureRequest.Whom, actor: String, source: String) throws {
        if let found = PersonalData.emailShapes(in: source).first {
            throw CommandFailure(message: "--source holds an e-mail address ('\(TerminalText.escape(found))'): the erasure's audit entry names nobody, and the address would be stored again; nothing was erased",
                                 help: "give the request's reference without the address, e.g. --source DSAR-2026-017", exitCode: ExitCode.usage)
        }
        guard case .emails(let emails) = whom else { return }
        let erased = Set(emails.map { $0.lowercased() })
        if let found = PersonalData.emailShapes(in: actor).first(where: { erased.contains($0.lowercased()) }) {
            throw CommandFailure(message: "the actor '\(TerminalText.escape(actor))' is '\(TerminalText.escape(found))', the person to forget: the erasure's audit entry would name them; nothing was erased",
                                 help: "run the erasure as someone else (--actor NAME or ORGCTL_ACTOR)")
        }
    }

    static func failure(_ refusal: ErasureRefusal, store: any StateStore) -> CommandFailure {
        let location = TerminalText.escape(store.location)
        switch refusal {
        case .stillPresent(let email, let addresses):
            let tenants = Set(addresses.compactMap { $0.hasPrefix("tenant/") ? $0.split(separator: "/").dropFirst().first.map(String.init) : nil }).sorted()
            return CommandFailure(
                message: "'\(TerminalText.escape(email))' is still in the state: \(TerminalText.escape(addresses.prefix(10).joined(separator: ", ")))\(addresses.count > 10 ? ", …" : ""); nothing was erased",
                help: "remove them from the configuration of tenant\(tenants.count == 1 ? "" : "s") \(TerminalText.escape(tenants.joined(separator: ", "))), run 'orgctl apply', then forget them")
        case .inPlainEntries(let email, let sequences):
            let shown = sequences.prefix(20).map(String.init).joined(separator: ", ") + (sequences.count > 20 ? ", …" : "")
            return CommandFailure(
                message: "'\(TerminalText.escape(email))' is named by \(sequences.count) audit entr\(sequences.count == 1 ? "y" : "ies") written before subject tokens (format 1: \(shown)), whose hashed bytes hold the address; nothing was erased",
                help: "format 1 entries cannot be changed without breaking the chain and every checkpoint; see docs/audit-chain.md 8.6 for what can be erased")
        case .unknown(let email):
            return CommandFailure(message: "\(location) holds no personal data of '\(TerminalText.escape(email))': it was never recorded, or is forgotten already; nothing was erased",
                                  help: "check the address (as the configuration wrote it) with 'orgctl privacy export'")
        case .olderSchema:
            return CommandFailure(message: "\(location) predates the subject table (schema 7); nothing was erased",
                                  help: "run 'orgctl apply' once to migrate it; entries written before stay format 1 (docs/audit-chain.md 8.6)")
        case .namedByErasure(let field, let value):
            return CommandFailure(message: "the \(field) '\(TerminalText.escape(value))' names one of the people to forget: the erasure's audit entry would name them; nothing was erased",
                                  help: field == "actor" ? "run the erasure as someone else (--actor NAME or ORGCTL_ACTOR)" : "give the request's reference without the address, e.g. --source DSAR-2026-017")
        case .heldElsewhere(let email, let table):
            return CommandFailure(message: "'\(TerminalText.escape(email))' is still in table \(TerminalText.escape(table)) of \(location), where forget does not erase it (a table of your own, or a row written behind orgctl's back); nothing was erased",
                                  help: "delete or change the rows of \(TerminalText.escape(table)) that hold the address (in any case), then run 'orgctl privacy forget' again")
        case .auditBroken(let broken):
            return CommandFailure(message: "the audit chain is broken at entry \(broken.sequence): \(TerminalText.escape("\(broken.problem)")); nothing was erased",
                                  help: "run 'orgctl audit verify', restore the database from a backup and investigate who changed it")
        }
    }
}
