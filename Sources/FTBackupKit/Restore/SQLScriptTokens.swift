/// The statements of a SQL script as `pg_restore -f -` writes it, split into tokens.
///
/// It exists so that the restore can read what a dump will do (which roles it names) without
/// guessing from text: string literals, dollar-quoted bodies and comments are skipped whole, quoted
/// identifiers are unquoted, and COPY data blocks are passed over.
struct SQLScriptTokens {
    enum Token: Equatable {
        /// An unquoted word, as written (SQL folds it to lower case).
        case word(String)
        /// A double-quoted identifier, unquoted.
        case quoted(String)
        /// A string literal, a number or an operator: never a name.
        case other(String)
        case comma, openParen, closeParen

        /// The word in upper case, for keyword comparisons (nil for anything but an unquoted word).
        var keyword: String? { if case .word(let w) = self { w.uppercased() } else { nil } }

        /// The name this token denotes as an identifier (an unquoted word folded to lower case).
        var identifier: String? {
            switch self {
            case .word(let w): w.lowercased()
            case .quoted(let q): q
            default: nil
            }
        }
    }

    /// Splits the script into statements of tokens (without the closing semicolons).
    static func statements(_ script: String) -> [[Token]] {
        let s = Array(script.unicodeScalars)
        var i = 0
        var statements: [[Token]] = []
        var current: [Token] = []
        func isWordStart(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic || c.value >= 0x80 }
        func isWordPart(_ c: Unicode.Scalar) -> Bool { isWordStart(c) || c == "$" || ("0"..."9").contains(c) }
        func endStatement() {
            // COPY … FROM stdin: the data lines that follow end with a line "\.".
            if current.first?.keyword == "COPY", current.last?.keyword == "STDIN" {
                while i < s.count {
                    var lineEnd = i
                    while lineEnd < s.count && s[lineEnd] != "\n" { lineEnd += 1 }
                    let line = String(String.UnicodeScalarView(s[i..<lineEnd]))
                    i = lineEnd + 1
                    if line == "\\." { break }
                }
            }
            if !current.isEmpty { statements.append(current) }
            current = []
        }
        while i < s.count {
            let c = s[i]
            if c.properties.isWhitespace { i += 1; continue }
            if c == "-" && i + 1 < s.count && s[i + 1] == "-" {
                while i < s.count && s[i] != "\n" { i += 1 }
                continue
            }
            if c == "/" && i + 1 < s.count && s[i + 1] == "*" {
                var depth = 0
                while i < s.count {
                    if s[i] == "/" && i + 1 < s.count && s[i + 1] == "*" { depth += 1; i += 2; continue }
                    if s[i] == "*" && i + 1 < s.count && s[i + 1] == "/" { depth -= 1; i += 2; if depth == 0 { break }; continue }
                    i += 1
                }
                continue
            }
            if c == ";" {
                i += 1
                endStatement()
                continue
            }
            if c == "," { current.append(.comma); i += 1; continue }
            if c == "(" { current.append(.openParen); i += 1; continue }
            if c == ")" { current.append(.closeParen); i += 1; continue }
            if c == "\"" {
                var name = String.UnicodeScalarView()
                i += 1
                while i < s.count {
                    if s[i] == "\"" {
                        if i + 1 < s.count && s[i + 1] == "\"" { name.append("\""); i += 2; continue }
                        i += 1
                        break
                    }
                    name.append(s[i])
                    i += 1
                }
                current.append(.quoted(String(name)))
                continue
            }
            if c == "'" || ((c == "E" || c == "e") && i + 1 < s.count && s[i + 1] == "'") {
                let backslashes = c != "'"
                i += backslashes ? 2 : 1
                while i < s.count {
                    if backslashes && s[i] == "\\" { i += 2; continue }
                    if s[i] == "'" {
                        if i + 1 < s.count && s[i + 1] == "'" { i += 2; continue }
                        i += 1
                        break
                    }
                    i += 1
                }
                current.append(.other("'"))
                continue
            }
            if c == "$" {
                // $tag$ … $tag$ (a bare $1 parameter is not a quote).
                var j = i + 1
                while j < s.count && s[j] != "$" && isWordPart(s[j]) { j += 1 }
                if j < s.count && s[j] == "$" && (j == i + 1 || isWordStart(s[i + 1])) {
                    let tag = Array(s[i...j])
                    var k = j + 1
                    while k < s.count {
                        if s[k] == "$" && k + tag.count <= s.count && Array(s[k..<(k + tag.count)]) == tag { break }
                        k += 1
                    }
                    i = min(s.count, k + tag.count)
                    current.append(.other("$"))
                    continue
                }
            }
            if isWordStart(c) {
                var word = String.UnicodeScalarView()
                while i < s.count && isWordPart(s[i]) { word.append(s[i]); i += 1 }
                current.append(.word(String(word)))
                continue
            }
            current.append(.other(String(c)))
            i += 1
        }
        endStatement()
        return statements
    }
}
