import Foundation

/// The HTML report's charts as inline SVG (no script, no external asset): the coverage timeline
/// (days of the period × verified full, and the last days' hours × restorable, gaps in red), audit
/// rows by age in years with the retention line, and each drill's RTO and RPO against the objectives.
enum HTMLReportCharts {
    static let ok = "#2e7d32", bad = "#c62828", warn = "#f9a825", muted = "#bdbdbd", pending = "#90caf9", bar = "#1565c0"

    static func figure(_ chart: ReportDocument.Chart) -> String {
        switch chart {
        case .coverage(let facts): return coverage(facts)
        case .auditAges(let facts, let years): return auditAges(facts, retentionYears: years)
        case .drills(let facts): return drills(facts)
        }
    }

    static func legend(_ items: [(String, String)]) -> String {
        "<div class=\"legend\">" + items.map { "<span><i style=\"background:\($0.1)\"></i>\($0.0)</span>" }.joined() + "</div>"
    }

    static func coverage(_ facts: BackupCoverage) -> String {
        let colours: [BackupCoverage.DayStatus: String] = [.verified: ok, .unverified: warn, .missing: bad, .expired: muted, .pending: pending]
        let cell = 24.0, left = 70.0
        var days = "<svg role=\"img\" aria-label=\"verified full backup per day\" width=\"\(Int(left + Double(max(facts.days.count, 1)) * cell + 10))\" height=\"56\" viewBox=\"0 0 \(Int(left + Double(max(facts.days.count, 1)) * cell + 10)) 56\">"
        days += "<text x=\"0\" y=\"22\">full backup</text>"
        for (index, day) in facts.days.enumerated() {
            let x = left + Double(index) * cell
            days += "<rect x=\"\(x)\" y=\"8\" width=\"\(cell - 3)\" height=\"20\" rx=\"3\" fill=\"\(colours[day.status]!)\"><title>\(HTMLReportRenderer.escape(day.day)): \(day.status.rawValue)</title></rect>"
            days += "<text x=\"\(x + (cell - 3) / 2)\" y=\"42\" text-anchor=\"middle\">\(HTMLReportRenderer.escape(String(day.day.suffix(2))))</text>"
        }
        days += "</svg>"
        // Hours: one row per day, 24 columns.
        let hourCell = 26.0, rowHeight = 16.0
        let rows = Dictionary(grouping: facts.hours, by: { ReportPeriod.dayText($0.start) }).sorted { $0.key < $1.key }
        let width = left + 24 * hourCell + 10, height = Double(rows.count) * rowHeight + 28
        var hours = "<svg role=\"img\" aria-label=\"restorable hours\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
        let hourColours: [BackupCoverage.HourStatus: String] = [.restorable: ok, .gap: bad, .pending: pending]
        for (row, entry) in rows.enumerated() {
            let y = Double(row) * rowHeight + 4
            hours += "<text x=\"0\" y=\"\(y + 11)\">\(HTMLReportRenderer.escape(entry.key))</text>"
            for hour in entry.value {
                let column = Double(ReportPeriod.calendar.component(.hour, from: hour.start))
                hours += "<rect x=\"\(left + column * hourCell)\" y=\"\(y)\" width=\"\(hourCell - 2)\" height=\"\(rowHeight - 3)\" fill=\"\(hourColours[hour.status]!)\"><title>\(Timestamps.display(hour.start)): \(hour.status.rawValue)</title></rect>"
            }
        }
        for hour in stride(from: 0, to: 24, by: 3) {
            hours += "<text x=\"\(left + Double(hour) * hourCell)\" y=\"\(height - 8)\">\(String(format: "%02d:00", hour))</text>"
        }
        hours += "</svg>"
        return "<figure>\(days)\(legend([("verified", ok), ("not verified", warn), ("missing", bad), ("past retention", muted), ("today, pending", pending)]))"
            + "<figcaption>Verified full backup per UTC day of the period.</figcaption></figure>"
            + "<figure>\(hours)\(legend([("restorable", ok), ("gap", bad), ("not sealed yet (within RPO)", pending)]))"
            + "<figcaption>Hours (UTC) restorable by restore --at over the incremental retention.</figcaption></figure>"
    }

    static func auditAges(_ facts: AuditRetentionFacts, retentionYears: Int) -> String {
        let buckets = Dictionary(facts.ageByYear.map { ($0.years, $0.rows) }, uniquingKeysWith: +)
        let maxYear = max(retentionYears + 1, (buckets.keys.max() ?? 0) + 1)
        let peak = max(1, buckets.values.max() ?? 1)
        let left = 60.0, top = 14.0, plotHeight = 160.0, barWidth = 34.0
        let width = left + Double(maxYear) * barWidth + 110, height = top + plotHeight + 34
        var svg = "<svg role=\"img\" aria-label=\"audit rows by age\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
        svg += "<line x1=\"\(left)\" y1=\"\(top + plotHeight)\" x2=\"\(width - 10)\" y2=\"\(top + plotHeight)\" stroke=\"#9e9e9e\"/>"
        svg += "<text x=\"\(left - 6)\" y=\"\(top + 4)\" text-anchor=\"end\">\(peak)</text><text x=\"\(left - 6)\" y=\"\(top + plotHeight)\" text-anchor=\"end\">0</text>"
        for year in 0..<maxYear {
            let rows = buckets[year] ?? 0
            let barHeight = Double(rows) / Double(peak) * plotHeight
            let x = left + Double(year) * barWidth
            svg += "<rect x=\"\(x + 3)\" y=\"\(top + plotHeight - barHeight)\" width=\"\(barWidth - 6)\" height=\"\(barHeight)\" fill=\"\(year >= retentionYears ? bad : bar)\"><title>\(year)–\(year + 1) years old: \(rows) rows</title></rect>"
            svg += "<text x=\"\(x + barWidth / 2)\" y=\"\(top + plotHeight + 13)\" text-anchor=\"middle\">\(year)</text>"
        }
        let lineX = left + Double(retentionYears) * barWidth
        svg += "<line x1=\"\(lineX)\" y1=\"\(top - 6)\" x2=\"\(lineX)\" y2=\"\(top + plotHeight)\" stroke=\"\(bad)\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>"
        svg += "<text x=\"\(lineX + 4)\" y=\"\(top + 6)\" style=\"fill:\(bad)\">\(retentionYears)-year retention</text>"
        svg += "<text x=\"\(left + Double(maxYear) * barWidth / 2)\" y=\"\(height - 4)\" text-anchor=\"middle\">age in years</text></svg>"
        return "<figure>\(svg)<figcaption>Audit rows (all audit tables) by age in whole years; rows right of the line are past retention (held or referenced rows stay on purpose).</figcaption></figure>"
    }

    static func drills(_ facts: RecoveryTestingFacts) -> String {
        func chart(_ title: String, _ values: [(String, Double, Double)]) -> String {
            let peak = max(1, values.map { max($0.1, $0.2) }.max() ?? 1) * 1.15
            let left = 60.0, top = 22.0, plotHeight = 120.0, step = 56.0
            let width = max(280, left + Double(values.count) * step + 20), height = top + plotHeight + 40
            var svg = "<svg role=\"img\" aria-label=\"\(title)\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
            svg += "<text x=\"\(left)\" y=\"12\" style=\"font-weight:600\">\(HTMLReportRenderer.escape(title))</text>"
            svg += "<line x1=\"\(left)\" y1=\"\(top + plotHeight)\" x2=\"\(width - 10)\" y2=\"\(top + plotHeight)\" stroke=\"#9e9e9e\"/>"
            for (index, value) in values.enumerated() {
                let x = left + Double(index) * step
                let barHeight = value.1 / peak * plotHeight
                svg += "<rect x=\"\(x + 8)\" y=\"\(top + plotHeight - barHeight)\" width=\"\(step - 16)\" height=\"\(max(1, barHeight))\" fill=\"\(value.1 <= value.2 ? ok : bad)\"><title>\(HTMLReportRenderer.escape(value.0)): \(ReportDocument.duration(value.1)) (objective \(ReportDocument.duration(value.2)))</title></rect>"
                svg += "<text x=\"\(x + step / 2)\" y=\"\(top + plotHeight + 13)\" text-anchor=\"middle\">\(HTMLReportRenderer.escape(String(value.0.prefix(8).suffix(4))))</text>"
                let objectiveY = top + plotHeight - value.2 / peak * plotHeight
                svg += "<line x1=\"\(x + 2)\" y1=\"\(objectiveY)\" x2=\"\(x + step - 2)\" y2=\"\(objectiveY)\" stroke=\"\(bad)\" stroke-width=\"2\" stroke-dasharray=\"4 2\"/>"
            }
            svg += "<text x=\"\(left - 6)\" y=\"\(top + 4)\" text-anchor=\"end\">\(ReportDocument.duration(peak))</text></svg>"
            return svg
        }
        let rto = facts.drills.map { ($0.label, $0.rtoSeconds, $0.rtoObjectiveSeconds) }
        let rpo = facts.drills.map { ($0.label, $0.rpoSeconds, $0.rpoObjectiveSeconds) }
        return "<figure>\(chart("RTO measured", rto)) \(chart("RPO measured", rpo))\(legend([("met", ok), ("missed", bad), ("objective (dashed)", "#fff;border:2px dashed \(bad)")]))"
            + "<figcaption>Each drill of the period (labelled MMDD) against the objectives.</figcaption></figure>"
    }
}
