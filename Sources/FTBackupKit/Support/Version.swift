/// The version written into every manifest and shown by `ftbackup --version`.
public enum FTBackupVersion {
    public static let current = "0.1.0"
}
