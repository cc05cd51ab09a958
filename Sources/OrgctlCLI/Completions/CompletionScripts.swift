import Foundation
import Spec

/// Shell completion scripts generated from the command tree (``Orgctl/commands``): subcommands,
/// options, option values, and the addresses a configuration declares for `--target`/`--exclude`
/// (from `orgctl addresses DIR`).
enum CompletionScripts {
    enum Shell: String, CaseIterable {
        case bash, zsh, fish
    }

    /// What the value of an option or argument is completed with.
    enum Values: Equatable {
        case none
        case words([String])
        case files
        case directories
        /// `orgctl addresses DIR` of the command's first argument.
        case addresses
    }

    /// One runnable or group command, flattened out of the tree.
    struct Entry {
        var path: [String]
        var spec: CommandSpec
        var options: [OptionSpec]
    }

    static func script(for shell: Shell, root: CommandSpec) -> String {
        let entries = flatten(root)
        switch shell {
        case .bash: return bash(root: root, entries: entries)
        case .zsh: return zsh(root: root, entries: entries)
        case .fish: return fish(root: root, entries: entries)
        }
    }

    static func flatten(_ root: CommandSpec) -> [Entry] {
        var result: [Entry] = []
        func visit(_ spec: CommandSpec, path: [String], inherited: [OptionSpec]) {
            let available = inherited + spec.inheritedOptions
            result.append(Entry(path: path, spec: spec, options: spec.options + available))
            for sub in spec.subcommands { visit(sub, path: path + [sub.name], inherited: available) }
        }
        visit(root, path: [], inherited: [])
        return result
    }

    static func values(of option: OptionSpec) -> Values {
        if option.isFlag { return .none }
        if !option.allowedValues.isEmpty { return .words(option.allowedValues) }
        if option.long == "target" || option.long == "exclude" { return .addresses }
        if option.valueName == "file" || option.valueName == "path" { return .files }
        return .none
    }

    static func values(of argument: ArgumentSpec, in path: [String]) -> Values {
        switch (path, argument.name) {
        case (["explain"], "path"): .words(explainPaths())
        case (["completion"], "shell"): .words(Shell.allCases.map(\.rawValue))
        case (_, "dir"): .directories
        case (_, "path"), (_, "planfile"), (_, "file"): .files
        default: .none
        }
    }

    /// Every path `orgctl explain` knows: platform, platform.plans, platform.plans.quotas, …
    static func explainPaths() -> [String] {
        var paths: [String] = []
        func visit(_ object: FormatObject, prefix: String) {
            for field in object.fields {
                paths.append(prefix + "." + field.name)
                if let nested = field.type.nestedObject { visit(nested, prefix: prefix + "." + field.name) }
            }
        }
        for kind in SpecFormat.kinds {
            paths.append(kind.name.lowercased())
            visit(kind.object, prefix: kind.name.lowercased())
        }
        return paths
    }

    static func longs(_ options: [OptionSpec], includeHelp: Bool = true) -> [String] {
        options.map { "--" + $0.long } + (includeHelp ? ["--help"] : [])
    }

    static func valueOptions(_ entries: [Entry]) -> [String] {
        var seen: Set<String> = []
        var result: [String] = []
        for entry in entries {
            for option in entry.options where !option.isFlag {
                for name in ["--" + option.long] + (option.short.map { ["-\($0)"] } ?? []) where seen.insert(name).inserted {
                    result.append(name)
                }
            }
        }
        return result
    }

    // MARK: bash

    /// bash and zsh alike: `case "$cmdpath/$word"` arms that step into each group's subcommands.
    static func subcommandCases(_ entries: [Entry]) -> String {
        var s = ""
        for entry in entries where entry.spec.isGroup {
            for sub in entry.spec.subcommands {
                s += "            \"\(entry.path.joined(separator: " "))/\(sub.name)\") cmdpath=\"\((entry.path + [sub.name]).joined(separator: " "))\" ;;\n"
            }
        }
        return s
    }

    /// bash and zsh alike: a `case "$prev"` that completes the value of the option before the cursor.
    static func previousWordCases(_ entry: Entry, _ complete: (Values) -> String) -> String {
        var cases = ""
        for option in entry.options where !option.isFlag {
            let names = ["--" + option.long] + (option.short.map { ["-\($0)"] } ?? [])
            cases += "                \(names.joined(separator: "|"))) \(complete(values(of: option))) ;;\n"
        }
        return cases.isEmpty ? "" : "            case \"$prev\" in\n" + cases + "            esac\n"
    }

    static func bash(root: CommandSpec, entries: [Entry]) -> String {
        let name = root.name
        func shellWords(_ words: [String]) -> String { words.joined(separator: " ") }
        func complete(_ values: Values) -> String {
            switch values {
            case .none: return "return 0"
            case .words(let words): return "COMPREPLY=($(compgen -W \"\(shellWords(words))\" -- \"$cur\")); return 0"
            case .files: return "COMPREPLY=($(compgen -f -- \"$cur\")); compopt -o filenames 2>/dev/null; return 0"
            case .directories: return "COMPREPLY=($(compgen -d -- \"$cur\")); compopt -o filenames 2>/dev/null; return 0"
            case .addresses:
                return "[ -n \"$arg\" ] && COMPREPLY=($(compgen -W \"$(\"${COMP_WORDS[0]}\" addresses \"$arg\" 2>/dev/null)\" -- \"$cur\")); return 0"
            }
        }
        var s = """
            # bash completion for \(name), generated by '\(name) completion bash'.
            # Load it in ~/.bashrc:  source <(\(name) completion bash)

            _\(name)() {
                local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
                local cmdpath="" arg="" word i skip=0
                local value_options=" \(shellWords(valueOptions(entries))) "
                for ((i = 1; i < COMP_CWORD; i++)); do
                    word="${COMP_WORDS[i]}"
                    if [ $skip = 1 ]; then skip=0; continue; fi
                    case "$word" in
                        --*=*) continue ;;
                        -*) [[ "$value_options" == *" $word "* ]] && skip=1; continue ;;
                    esac
                    case "$cmdpath/$word" in

            """
        s += subcommandCases(entries)
        s += """
                        *) [ -z "$arg" ] && arg="$word" ;;
                    esac
                done
                case "$cmdpath" in

            """
        for entry in entries {
            s += "        \"\(entry.path.joined(separator: " "))\")\n"
            s += previousWordCases(entry, complete)
            s += "            if [[ \"$cur\" == -* ]]; then\n"
            s += "                COMPREPLY=($(compgen -W \"\(shellWords(longs(entry.options)))\" -- \"$cur\")); return 0\n"
            s += "            fi\n"
            if entry.spec.isGroup {
                let subs = entry.spec.subcommands.map(\.name) + (entry.path.isEmpty ? ["help"] : [])
                s += "            COMPREPLY=($(compgen -W \"\(shellWords(subs))\" -- \"$cur\"))\n"
            } else if let argument = entry.spec.arguments.first {
                let action = complete(values(of: argument, in: entry.path))
                s += "            [ -z \"$arg\" ] && { \(action); }\n"
            }
            s += "            ;;\n"
        }
        s += """
                esac
                return 0
            }
            complete -F _\(name) \(name)

            """
        return s
    }

    // MARK: zsh

    static func zsh(root: CommandSpec, entries: [Entry]) -> String {
        let name = root.name
        func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        func described(_ pairs: [(String, String)]) -> String {
            pairs.map { quote($0.0.replacingOccurrences(of: ":", with: "\\:") + ":" + $0.1) }.joined(separator: " ")
        }
        func complete(_ values: Values) -> String {
            switch values {
            case .none: return "return 0"
            case .words(let words): return "compadd -- \(words.map(quote).joined(separator: " ")); return"
            case .files: return "_files; return"
            case .directories: return "_files -/; return"
            case .addresses:
                return "[[ -n $arg ]] && compadd -- ${(f)\"$(${words[1]} addresses $arg 2>/dev/null)\"}; return"
            }
        }
        var s = """
            #compdef \(name)
            # zsh completion for \(name), generated by '\(name) completion zsh'.
            # Save it as _\(name) in a folder on $fpath, or load it in ~/.zshrc:
            #   source <(\(name) completion zsh)

            _\(name)() {
                local cur="${words[CURRENT]}" prev="${words[CURRENT-1]}"
                local cmdpath="" arg="" word i skip=0
                local -a value_options=(\(valueOptions(entries).joined(separator: " ")))
                local -a items
                for ((i = 2; i < CURRENT; i++)); do
                    word="${words[i]}"
                    if (( skip )); then skip=0; continue; fi
                    case "$word" in
                        --*=*) continue ;;
                        -*) (( ${value_options[(Ie)$word]} )) && skip=1; continue ;;
                    esac
                    case "$cmdpath/$word" in

            """
        s += subcommandCases(entries)
        s += """
                        *) [[ -z $arg ]] && arg="$word" ;;
                    esac
                done
                case "$cmdpath" in

            """
        for entry in entries {
            s += "        \"\(entry.path.joined(separator: " "))\")\n"
            s += previousWordCases(entry, complete)
            let options = entry.options.map { ("--" + $0.long, $0.help) } + [("--help", "Show help information.")]
            s += "            if [[ \"$cur\" == -* ]]; then\n"
            s += "                items=(\(described(options)))\n"
            s += "                _describe -t options option items; return\n"
            s += "            fi\n"
            if entry.spec.isGroup {
                var subs = entry.spec.subcommands.map { ($0.name, $0.abstract) }
                if entry.path.isEmpty { subs.append(("help", "Show subcommand help information.")) }
                s += "            items=(\(described(subs)))\n"
                s += "            _describe -t commands command items\n"
            } else if let argument = entry.spec.arguments.first {
                s += "            [[ -z $arg ]] && { \(complete(values(of: argument, in: entry.path))); }\n"
            }
            s += "            ;;\n"
        }
        s += """
                esac
            }
            compdef _\(name) \(name)

            """
        return s
    }

    // MARK: fish

    static func fish(root: CommandSpec, entries: [Entry]) -> String {
        let name = root.name
        func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'" }
        let groups = entries.filter { $0.spec.isGroup }
        var s = """
            # fish completion for \(name), generated by '\(name) completion fish'.
            # Save it as ~/.config/fish/completions/\(name).fish, or: \(name) completion fish | source

            # The subcommand path typed so far ("plan", "audit log"), and the first argument after it.
            function __\(name)_path
                set -l tokens (commandline -opc)
                set -l cmdpath
                set -l skip 0
                set -l value_options \(valueOptions(entries).joined(separator: " "))
                for token in $tokens[2..-1]
                    if test $skip = 1
                        set skip 0
                        continue
                    end
                    switch $token
                        case '--*=*'
                            continue
                        case '-*'
                            contains -- $token $value_options; and set skip 1
                            continue
                    end
                    switch "$cmdpath/$token"

            """
        for entry in groups {
            for sub in entry.spec.subcommands {
                s += "            case \(quote(entry.path.joined(separator: " ") + "/" + sub.name))\n"
                s += "                set cmdpath \((entry.path + [sub.name]).map(quote).joined(separator: " "))\n"
            }
        }
        s += """
                        case '*'
                            if test "$argv[1]" = arg
                                echo $token
                                return
                            end
                    end
                end
                test "$argv[1]" = arg; or echo "$cmdpath"
            end

            function __\(name)_at
                test (string join ' ' -- (__\(name)_path)) = "$argv[1]"
            end

            function __\(name)_addresses
                set -l dir (__\(name)_path arg)
                test -n "$dir"; and \(name) addresses $dir 2>/dev/null
            end

            complete -c \(name) -f

            """
        for entry in entries {
            let condition = "__\(name)_at \(quote(entry.path.joined(separator: " ")))"
            if entry.spec.isGroup {
                var subs = entry.spec.subcommands.map { ($0.name, $0.abstract) }
                if entry.path.isEmpty { subs.append(("help", "Show subcommand help information.")) }
                for (sub, abstract) in subs {
                    s += "complete -c \(name) -n \(quote(condition)) -a \(sub) -d \(quote(abstract))\n"
                }
            } else if let argument = entry.spec.arguments.first {
                switch values(of: argument, in: entry.path) {
                case .words(let words): s += "complete -c \(name) -n \(quote(condition)) -a \(quote(words.joined(separator: " ")))\n"
                case .files, .directories: s += "complete -c \(name) -n \(quote(condition)) -F\n"
                default: break
                }
            }
            for option in entry.options {
                var line = "complete -c \(name) -n \(quote(condition)) -l \(option.long)"
                if let short = option.short { line += " -s \(short)" }
                switch values(of: option) {
                case .none: if !option.isFlag { line += " -x" }
                case .words(let words): line += " -x -a \(quote(words.joined(separator: " ")))"
                case .files, .directories: line += " -r -F"
                case .addresses: line += " -x -a '(__\(name)_addresses)'"
                }
                s += line + " -d \(quote(option.help))\n"
            }
        }
        return s
    }
}

/// `orgctl completion SHELL`.
enum CompletionCommand {
    static let spec = CommandSpec(
        name: "completion",
        abstract: "Print a shell completion script (bash, zsh or fish).",
        discussion: """
            Completes subcommands, options and their values, and for --target and --exclude the addresses \
            the configuration folder on the command line declares (from 'orgctl addresses DIR').
              bash: source <(orgctl completion bash)     # in ~/.bashrc
              zsh:  source <(orgctl completion zsh)      # in ~/.zshrc, after compinit
              fish: orgctl completion fish > ~/.config/fish/completions/orgctl.fish
            Exit status: 0 success, 64 usage error (unknown shell).
            """,
        arguments: [ArgumentSpec("shell", help: "bash, zsh or fish.")])

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let name = command.argument("shell") ?? ""
        guard let shell = CompletionScripts.Shell(rawValue: name) else {
            let names = CompletionScripts.Shell.allCases.map(\.rawValue)
            throw CommandFailure(message: "no completion script for '\(name)'",
                                 help: Suggestions.closest(to: name, among: names).map { "did you mean '\($0)'?" }
                                    ?? "choose one of: \(names.joined(separator: ", "))",
                                 exitCode: ExitCode.usage)
        }
        context.console.out(CompletionScripts.script(for: shell, root: Orgctl.commands))
        return ExitCode.success
    }
}
