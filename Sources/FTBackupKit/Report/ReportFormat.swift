import Foundation

/// The formats `ftbackup report` writes: `text` for a terminal, `markdown` for a ticket or wiki,
/// `json` for compliance tooling (the versioned schema), `html` for an auditor (one self-contained
/// file with charts, printable to PDF).
public enum ReportFormat: String, Sendable, CaseIterable {
    case text, markdown, json, html
}

extension ComplianceReport {
    /// The report in `format`, ending with a newline.
    public func rendered(_ format: ReportFormat) throws -> String {
        switch format {
        case .json: return try JSONOutput.encode(self) + "\n"
        case .text: return TextReportRenderer.render(ReportDocument(self))
        case .markdown: return MarkdownReportRenderer.render(ReportDocument(self))
        case .html: return HTMLReportRenderer.render(ReportDocument(self))
        }
    }
}

extension ComplianceReport {
    /// Writes a rendered report to `path` as every repository file is written: a temporary name,
    /// fsync, rename; mode 0600 (it names tables, organizations and hosts). Any failure is "cannot
    /// write" (73) about `--out`: the repository's hints (missing file, run verify) do not apply here.
    public static func write(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        do {
            try LocalStorage(root: folder.isEmpty ? "." : folder).writeAll(url.lastPathComponent, Array(text.utf8))
        } catch let error as FTBackupError {
            throw FTBackupError(.cannotWrite, "cannot write the report to --out \(path): \(error.message)",
                                hint: "give --out a file in a folder that exists and is writable")
        }
    }
}
