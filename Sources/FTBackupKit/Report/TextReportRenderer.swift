import Foundation

/// The compliance report as plain text: findings first, then each section with its policy, facts
/// and tables in aligned columns (charts are left to the HTML form).
enum TextReportRenderer {
    static func render(_ document: ReportDocument) -> String {
        var lines: [String] = [document.title.uppercased()] + document.meta + [""]
        lines.append(document.findings.isEmpty ? "FINDINGS: none, every check passed" : "FINDINGS (\(document.findings.count)):")
        for finding in document.findings { lines.append("  [\(finding.section.rawValue)] \(finding.severity.rawValue): \(finding.message)") }
        for section in document.sections {
            lines.append("")
            lines.append("\(section.title.uppercased()): \(section.status)")
            for block in section.blocks {
                switch block {
                case .paragraph(let text): lines.append(text.trimmingCharacters(in: .whitespacesAndNewlines))
                case .list(let items): lines += items.map { "  - \($0)" }
                case .table(let headers, let rows): lines += table(headers, rows)
                case .chart: continue
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func table(_ headers: [String], _ rows: [[String]]) -> [String] {
        guard !rows.isEmpty else { return ["  (none)"] }
        let widths = headers.indices.map { column in ([headers[column]] + rows.map { $0[column] }).map(\.count).max()! }
        func line(_ cells: [String]) -> String {
            "  " + cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return [line(headers)] + rows.map(line)
    }
}
