import Foundation

/// The compliance report as Markdown (GitHub-flavoured tables), for a ticket, a wiki page or an
/// auditor's request by mail; charts are left to the HTML form.
enum MarkdownReportRenderer {
    static func render(_ document: ReportDocument) -> String {
        var lines = ["# \(document.title)", ""] + document.meta.map { "- \(escape($0))" } + ["", "## Findings", ""]
        if document.findings.isEmpty { lines.append("None: every check passed.") }
        for finding in document.findings {
            lines.append("- **\(finding.section.rawValue)** (\(finding.severity.rawValue)): \(escape(finding.message))")
        }
        for section in document.sections {
            lines += ["", "## \(section.title): \(section.passed ? "pass" : "**\(section.status)**")", ""]
            for block in section.blocks {
                switch block {
                case .paragraph(let text): lines += [escape(text.trimmingCharacters(in: .whitespacesAndNewlines)), ""]
                case .list(let items): lines += items.map { "- \(escape($0))" } + [""]
                case .table(let headers, let rows):
                    guard !rows.isEmpty else { lines += ["(none)", ""]; continue }
                    lines.append("| " + headers.map(cell).joined(separator: " | ") + " |")
                    lines.append("|" + String(repeating: "---|", count: headers.count))
                    lines += rows.map { "| " + $0.map(cell).joined(separator: " | ") + " |" }
                    lines.append("")
                case .chart: continue
                }
            }
        }
        return lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            if "\\`*_<>|[]".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }

    static func cell(_ text: String) -> String { escape(text).replacingOccurrences(of: "\n", with: " ") }
}
