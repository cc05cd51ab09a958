/// Words for command lines orgctl prints for the user to run ("Apply it with: …").
enum ShellQuoting {
    /// `word` as a POSIX shell reads it back unchanged: bare when it holds only characters no
    /// shell treats specially, otherwise in single quotes (a `'` inside becomes `'\''`).
    static func quote(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || "@%+=:,./_-".unicodeScalars.contains(scalar))
        }
        if plain && !word.hasPrefix("=") { return word }
        return "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    /// The words quoted and joined with spaces.
    static func line(_ words: [String]) -> String { words.map(quote).joined(separator: " ") }
}
