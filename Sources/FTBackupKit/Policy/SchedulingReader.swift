import Foundation
import Yams

/// Reads the policy's optional `schedule` section (what `ftbackup run` and `ftbackup schedule` need);
/// a policy without it gets the defaults, so older policy files keep loading.
enum SchedulingReader {
    static func read(_ reader: NodeReader, _ node: Node?) throws -> Policy.Scheduling {
        var scheduling = Policy.Scheduling()
        let section = try reader.mapping(node, path: "schedule",
                                         keys: ["tick", "window", "lifecycle", "maintenance", "randomized_delay", "follower"])
        if let tick = section.optional("tick") {
            scheduling.tick = try reader.period(tick, path: "schedule.tick")
            guard scheduling.tick.nominalSeconds >= 60, scheduling.tick.nominalSeconds <= 3600 else {
                throw reader.error("schedule.tick", tick, "'\(scheduling.tick)' must be between 1min and 1h")
            }
        }
        if let window = section.optional("window") {
            let text = try reader.string(window, path: "schedule.window")
            guard let match = text.wholeMatch(of: #/(\d{2}):(\d{2})-(\d{2}):(\d{2})/#),
                  let h1 = Int(match.1), let m1 = Int(match.2), let h2 = Int(match.3), let m2 = Int(match.4),
                  h1 < 24, h2 <= 24, m1 < 60, m2 < 60, h1 * 60 + m1 != h2 * 60 + m2 else {
                throw reader.error("schedule.window", window, "'\(text)' is not a UTC window such as 02:00-05:00")
            }
            scheduling.windowStartMinute = h1 * 60 + m1
            scheduling.windowEndMinute = (h2 * 60 + m2) % 1440
        }
        if let lifecycle = section.optional("lifecycle") {
            scheduling.lifecycle = try reader.enumeration(lifecycle, path: "schedule.lifecycle")
        }
        if let maintenance = section.optional("maintenance") {
            scheduling.maintenance = try reader.enumeration(maintenance, path: "schedule.maintenance")
        }
        if let delay = section.optional("randomized_delay") {
            scheduling.randomizedDelay = try reader.period(delay, path: "schedule.randomized_delay")
        }
        if let follower = section.optional("follower") {
            scheduling.follower = try reader.bool(follower, path: "schedule.follower")
        }
        return scheduling
    }
}
