import Foundation
import OrgctlCLI

// The executable stays thin: everything lives in OrgctlCLI so tests can run it in-process.
let environment = ProcessInfo.processInfo.environment
exit(Orgctl.run(Array(CommandLine.arguments.dropFirst()), environment: environment, console: .standard(environment: environment)))
