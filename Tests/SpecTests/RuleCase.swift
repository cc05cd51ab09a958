import Foundation
import Spec
import Testing

/// One rule, shown twice: a configuration that satisfies it (loads with no diagnostics at all)
/// and one that breaks it (the marker in `invalid` is where the diagnostic must point).
struct RuleCase: Sendable, CustomTestStringConvertible {
    enum Document: Sendable { case tenant, platform }

    var name: String
    var valid: String
    var invalid: String
    var id: String
    var severity: Severity = .error
    /// The exact help text, when the test pins it.
    var help: String?
    /// A fragment the message must contain.
    var message: String?
    /// Which document `valid` and `invalid` are (the other one is the base document).
    var document: Document = .tenant

    init(
        _ name: String, valid: String, invalid: String, _ id: String, _ severity: Severity = .error,
        help: String? = nil, message: String? = nil, document: Document = .tenant
    ) {
        self.name = name
        self.valid = valid
        self.invalid = invalid
        self.id = id
        self.severity = severity
        self.help = help
        self.message = message
        self.document = document
    }

    var testDescription: String { name }

    private func scratch(_ text: String) -> Scratch {
        switch document {
        case .tenant: Scratch.with(tenant: text)
        case .platform: Scratch.with(platform: text)
        }
    }

    /// Loads both configurations and checks the valid one is clean and the invalid one reports
    /// the rule at the marker.
    func check(sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        #expect(!valid.contains(marker), "the valid text of \(name) must not hold a marker", sourceLocation: sourceLocation)
        let good = scratch(valid)
        try expectClean(good.load(), sourceLocation: sourceLocation)

        let bad = scratch(invalid)
        guard let location = bad.markedLocation else {
            Issue.record("the invalid text of \(name) has no marker", sourceLocation: sourceLocation)
            return
        }
        let result = try bad.load()
        expectDiagnostic(result, id, severity, at: location, help: help, message: message, sourceLocation: sourceLocation)
        if severity == .error {
            #expect(result.configuration == nil, "a configuration with errors must not be returned", sourceLocation: sourceLocation)
        } else {
            #expect(result.errors.isEmpty, "\(dump(result.errors))", sourceLocation: sourceLocation)
            #expect(result.configuration != nil, sourceLocation: sourceLocation)
        }
    }
}

/// A tenant with one webhook `hook`; `extra` lines go inside the webhook (unindented here).
func tenantWithWebhook(url: String = "https://hooks.example.com/orgctl", events: String = "[member.added]", _ extra: String = "") -> String {
    var rest = "webhooks:\n  hook:\n    url: \(url)\n    events: \(events)\n"
    for line in extra.split(separator: "\n") { rest += "    \(line)\n" }
    return tenant(rest)
}
