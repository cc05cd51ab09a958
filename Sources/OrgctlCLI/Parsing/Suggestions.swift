// "did you mean ...?" suggestions for misspelt options, subcommands and values.
//
// The config validator uses the same idea for unknown keys; keep the two in step:
// optimal-string-alignment distance (Levenshtein plus adjacent transpositions, so
// `fromat` is one edit from `format`), compared case-insensitively, accepted when the
// distance is at most max(1, word length / 3).

/// The optimal-string-alignment distance between `a` and `b`: the number of single
/// character insertions, deletions, substitutions and adjacent transpositions needed to
/// turn one into the other (no substring is edited twice). Compares Characters, so
/// `é` counts as one.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    // Three rolling rows: i-2, i-1 and i.
    var previousPrevious = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            var best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                best = min(best, previousPrevious[j - 2] + 1)
            }
            current[j] = best
        }
        (previousPrevious, previous, current) = (previous, current, previousPrevious)
    }
    return previous[b.count]
}

/// The candidate closest to `word`, or nil when none is close enough to be what the user
/// meant. Close enough: an edit distance (see `editDistance`, case-insensitive) of at
/// most max(1, word.count / 3). Ties go to the candidate listed first, so pass
/// candidates in a meaningful order (declaration order), not a hashed one.
func editDistanceSuggestion(for word: String, among candidates: [String]) -> String? {
    guard !word.isEmpty else { return nil }
    let threshold = max(1, word.count / 3)
    let lowered = word.lowercased()
    var best: (candidate: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(lowered, candidate.lowercased())
        if distance <= threshold, distance < (best?.distance ?? Int.max) {
            best = (candidate, distance)
        }
    }
    return best?.candidate
}
