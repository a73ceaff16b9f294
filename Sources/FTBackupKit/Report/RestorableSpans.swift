import Foundation

/// The stretches of time `restore --at` can reach, from the repository's manifests alone: from each
/// slot-aligned full's consistent instant, through the change segments that continue it without a
/// gap (each starts at or before the previous one's end LSN), to the last commit they hold.
///
/// It exists for the report's hour-by-hour coverage: an hour is restorable when a span covers it,
/// and the time between two spans is a gap, listed with its times and the segments around it.
struct RestorableSpans {
    struct Span: Equatable {
        var start: Date
        var end: Date
        /// The segment the span stops at (nil: the full alone) and why it stops.
        var lastSegment: String?
        var brokenBefore: String?
    }

    var spans: [Span]

    init(fulls: [BackupManifest], segments: [ChangeSegmentManifest]) {
        let ordered = segments.sorted { (LSN.parse($0.startLSN) ?? 0) < (LSN.parse($1.startLSN) ?? 0) }
        var spans: [Span] = []
        for full in fulls where full.snapshot.origin == "replication-slot" {
            guard var cursor = LSN.parse(full.snapshot.walLSN) else { continue }
            var span = Span(start: full.snapshot.time, end: full.snapshot.time, lastSegment: nil, brokenBefore: nil)
            for segment in ordered {
                guard let start = LSN.parse(segment.startLSN), let end = LSN.parse(segment.endLSN), end > cursor else { continue }
                if start > cursor {
                    span.brokenBefore = "\(segment.label) starts at \(segment.startLSN), after \(LSN.format(cursor))"
                    break
                }
                cursor = end
                if let last = segment.lastCommitTime { span.end = max(span.end, last) }
                span.lastSegment = segment.label
            }
            spans.append(span)
        }
        // Union of overlapping spans, oldest first.
        var merged: [Span] = []
        for span in spans.sorted(by: { $0.start < $1.start }) {
            if let last = merged.last, span.start <= last.end {
                if span.end > last.end {
                    merged[merged.count - 1].end = span.end
                    merged[merged.count - 1].lastSegment = span.lastSegment
                    merged[merged.count - 1].brokenBefore = span.brokenBefore
                }
            } else {
                merged.append(span)
            }
        }
        self.spans = merged
    }

    /// The newest instant any span reaches.
    var newestPoint: Date? { spans.map(\.end).max() }

    /// True when one span covers [from, to].
    func covers(_ from: Date, _ to: Date) -> Bool { spans.contains { $0.start <= from && $0.end >= to } }
}
