import Foundation
import OrgctlCLI

// The executable stays thin: everything lives in OrgctlCLI so tests can run it in-process.
let environment = ProcessInfo.processInfo.environment
// Top-level values live until exit(): what the lifetime keeps is never torn down.
let lifetime = ProcessLifetime()
exit(Orgctl.run(Array(CommandLine.arguments.dropFirst()), environment: environment, console: .standard(environment: environment),
                lifetime: lifetime))
