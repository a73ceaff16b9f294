import Foundation

/// One metric family in Prometheus's text exposition format (version 0.0.4), as node_exporter's
/// textfile collector reads it. ftbackup writes a handful of gauges once per run, so a few lines of
/// formatting replace a metrics library (swift-prometheus is built for a long-running registry that a
/// scrape reads; it would add a dependency for what `promtool check metrics` verifies here directly).
public struct MetricFamily: Sendable, Equatable {
    public enum Kind: String, Sendable { case gauge, counter }
    public struct Sample: Sendable, Equatable {
        public var labels: [(String, String)]
        public var value: Double
        public init(_ labels: [(String, String)] = [], _ value: Double) { self.labels = labels; self.value = value }
        public static func == (a: Sample, b: Sample) -> Bool {
            a.value == b.value && a.labels.map { "\($0.0)=\($0.1)" } == b.labels.map { "\($0.0)=\($0.1)" }
        }
    }

    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [Sample]

    public init(_ name: String, _ kind: Kind = .gauge, help: String, _ samples: [Sample]) {
        self.name = name; self.kind = kind; self.help = help; self.samples = samples
    }

    /// A family of one unlabelled sample.
    public init(_ name: String, _ kind: Kind = .gauge, help: String, value: Double) {
        self.init(name, kind, help: help, [Sample([], value)])
    }

    var text: String {
        var lines = ["# HELP \(name) \(help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n"))",
                     "# TYPE \(name) \(kind.rawValue)"]
        for sample in samples {
            let labels = sample.labels.isEmpty ? "" : "{" + sample.labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
            lines.append("\(name)\(labels) \(Self.format(sample.value))")
        }
        return lines.joined(separator: "\n")
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.6f", value)
    }
}

/// `ftbackup_<job>.prom` in the metrics folder: written whole under a temporary name, then renamed, so
/// node_exporter never reads half a file. Mode 0644: node_exporter runs as its own user and must read
/// it; it holds numbers and job names only, never a connection string or a secret.
public enum MetricsFile {
    public static func path(directory: String, job: String) -> String {
        (directory as NSString).appendingPathComponent("ftbackup_\(job).prom")
    }

    public static func write(directory: String, job: String, _ families: [MetricFamily]) throws {
        try write(directory: directory, job: job, text: families.map(\.text).joined(separator: "\n") + "\n")
    }

    /// Sets one unlabelled gauge in a file this writer wrote, keeping every other line as it is (the
    /// family is added when the file lacks it, or the file is made with it alone).
    public static func replace(directory: String, job: String, _ family: MetricFamily) throws {
        let lines = ((try? String(contentsOfFile: path(directory: directory, job: job), encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
        let own: (String) -> Bool = { $0 == "# HELP \(family.name)" || $0.hasPrefix("# HELP \(family.name) ") || $0.hasPrefix("# TYPE \(family.name) ")
            || $0.hasPrefix("\(family.name) ") || $0.hasPrefix("\(family.name){") }
        try write(directory: directory, job: job, text: (lines.filter { !own($0) } + [family.text]).joined(separator: "\n") + "\n")
    }

    static func write(directory: String, job: String, text: String) throws {
        let final = path(directory: directory, job: job)
        let temporary = (directory as NSString).appendingPathComponent(".ftbackup_\(job).prom.\(getpid()).tmp")
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]) else {
            throw FTBackupError(.cannotWrite, "cannot write metrics file \(temporary)", hint: "check --metrics-dir / FTBACKUP_METRICS_DIR exists and is writable")
        }
        guard rename(temporary, final) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw FTBackupError(.cannotWrite, "cannot rename metrics file to \(final): \(reason)")
        }
    }

    /// The unlabelled (or `job`-labelled) sample values of a file this writer wrote, by metric name
    /// (what a run that failed carries over: the previous last success).
    public static func readValues(directory: String, job: String) -> [String: Double] {
        guard let text = try? String(contentsOfFile: path(directory: directory, job: job), encoding: .utf8) else { return [:] }
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = Double(parts[1]) else { continue }
            let name = parts[0].split(separator: "{").first.map(String.init) ?? String(parts[0])
            values[name] = value
        }
        return values
    }
}
