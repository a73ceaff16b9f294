import Foundation

/// The compliance report as one self-contained HTML file: inline CSS, inline SVG charts
/// (``HTMLReportCharts``), no JavaScript and no external asset, so it opens anywhere, can be mailed
/// or archived as is, and prints cleanly to PDF (`@media print`: A4, sections kept whole, colours kept).
enum HTMLReportRenderer {
    static let style = """
        :root { --ok: #2e7d32; --bad: #c62828; --warn: #ef6c00; --muted: #757575; --line: #e0e0e0; }
        * { box-sizing: border-box; }
        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #212121;
               margin: 0 auto; padding: 24px 32px; max-width: 1100px; background: #fff; }
        h1 { font-size: 24px; margin: 0 0 4px; }
        h2 { font-size: 18px; margin: 0 0 8px; display: flex; justify-content: space-between; align-items: baseline; }
        .meta { color: var(--muted); margin: 0 0 16px; padding: 0; list-style: none; font-size: 13px; }
        section { border: 1px solid var(--line); border-radius: 6px; padding: 14px 18px; margin: 14px 0; }
        section.findings { border-left: 6px solid var(--bad); }
        section.findings.none { border-left-color: var(--ok); }
        .status { font-size: 13px; font-weight: 600; padding: 2px 10px; border-radius: 10px; color: #fff; background: var(--ok); }
        .status.bad { background: var(--bad); }
        .sev-error { color: var(--bad); font-weight: 600; }
        .sev-warning { color: var(--warn); font-weight: 600; }
        table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; font-size: 12.5px; }
        th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: break-word; }
        th { background: #f5f5f5; font-weight: 600; }
        p { margin: 6px 0; }
        figure { margin: 10px 0; }
        figcaption { color: var(--muted); font-size: 12px; }
        svg { max-width: 100%; height: auto; }
        svg text { font: 10px system-ui, "DejaVu Sans", sans-serif; fill: #424242; }
        .legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
        .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
        @page { size: A4; margin: 14mm; }
        @media print {
          body { padding: 0; max-width: none; font-size: 11px; }
          section { break-inside: avoid; page-break-inside: avoid; }
          table { font-size: 10px; }
          * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
        }
        """

    static func render(_ document: ReportDocument) -> String {
        var html = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
                    "<title>\(escape(document.title))</title>", "<style>\(style)</style></head><body>",
                    "<h1>\(escape(document.title))</h1>",
                    "<ul class=\"meta\">" + document.meta.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"]
        html.append("<section class=\"findings\(document.findings.isEmpty ? " none" : "")\"><h2>Findings <span class=\"status\(document.findings.isEmpty ? "" : " bad")\">\(document.findings.isEmpty ? "pass" : "\(document.findings.count)")</span></h2>")
        if document.findings.isEmpty {
            html.append("<p>None: every check passed.</p>")
        } else {
            html.append("<table><tr><th>section</th><th>severity</th><th>finding</th></tr>" + document.findings.map {
                "<tr><td>\($0.section.rawValue)</td><td class=\"sev-\($0.severity.rawValue)\">\($0.severity.rawValue)</td><td>\(escape($0.message))</td></tr>"
            }.joined() + "</table>")
        }
        html.append("</section>")
        for section in document.sections {
            html.append("<section><h2>\(escape(section.title)) <span class=\"status\(section.passed ? "" : " bad")\">\(escape(section.status))</span></h2>")
            for block in section.blocks {
                switch block {
                case .paragraph(let text): html.append("<p>\(escape(text))</p>")
                case .list(let items): html.append("<ul>" + items.map { "<li>\(escape($0))</li>" }.joined() + "</ul>")
                case .table(let headers, let rows):
                    guard !rows.isEmpty else { html.append("<p>(none)</p>"); continue }
                    html.append("<table><tr>" + headers.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
                                + rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined() + "</table>")
                case .chart(let chart): html.append(HTMLReportCharts.figure(chart))
                }
            }
            html.append("</section>")
        }
        html.append("</body></html>")
        return html.joined(separator: "\n") + "\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
