import Foundation
import Logging

/// What a drill needs: the source and repository, the policy's objectives and checks, and where and
/// to which point to restore.
public struct DrillOptions: Sendable {
    public var source: ConnectionString
    public var repositoryPath: String
    public var policy: Policy
    /// A separate drill server (its database is the maintenance connection; the scratch database is
    /// created beside it); nil: the source's server.
    public var target: ConnectionString?
    /// The point to restore; nil: the newest point the repository can restore now.
    public var at: Date?
    public var schemas: [String]
    /// Keep the scratch database after the drill (it is dropped otherwise).
    public var keep: Bool
    /// Also compare ordered row hashes, against the live source, of the tables unchanged since the point.
    public var compare: Bool
    public var jobs: Int
    public var logger: Logger
    public var showProgress: Bool

    public init(source: ConnectionString, repositoryPath: String, policy: Policy, target: ConnectionString? = nil, at: Date? = nil,
                schemas: [String] = [], keep: Bool = false, compare: Bool = false, jobs: Int = 2,
                logger: Logger = Logger(label: "ftbackup"), showProgress: Bool = false) {
        self.source = source
        self.repositoryPath = repositoryPath
        self.policy = policy
        self.target = target
        self.at = at
        self.schemas = schemas
        self.keep = keep
        self.compare = compare
        self.jobs = jobs
        self.logger = logger
        self.showProgress = showProgress
    }
}
