import Foundation
import Testing

@testable import OrgctlCLI

/// `apply --help` names the variables the actor is taken from, in the order `Provenance.actor` tries them.
@Suite("actor help")
struct ActorHelpTests {
    @Test("apply --help names every variable the actor is taken from, in the order they are tried")
    func helpNamesEveryVariable() {
        let captured = Captured()
        #expect(captured.run(["apply", "--help"]) == ExitCode.success)
        let help = captured.out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        var rest = help[...]
        for name in Provenance.actorVariables {
            guard let found = rest.range(of: name) else {
                Issue.record("apply --help does not name \(name) after the variables before it:\n\(captured.out)")
                return
            }
            rest = rest[found.upperBound...]
        }
        #expect(help.contains("BUILDKITE_BUILD_CREATOR"))
    }

    @Test("each variable the help names sets the actor when it is the only one set, and the first set wins")
    func eachVariableSetsTheActor() throws {
        guard case .command(let parsed) = try ArgumentParser(root: Orgctl.commands, version: "test").parse(["apply", "config"]) else {
            Issue.record("'apply config' did not parse as a command")
            return
        }
        for name in Provenance.actorVariables {
            #expect(Provenance.actor(parsed, [name: "someone-\(name)"]) == "someone-\(name)")
        }
        let all = Dictionary(uniqueKeysWithValues: Provenance.actorVariables.map { ($0, "someone-\($0)") })
        #expect(Provenance.actor(parsed, all) == "someone-ORGCTL_ACTOR")
    }
}
