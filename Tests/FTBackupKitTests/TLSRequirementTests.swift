import Testing
@testable import FTBackupKit

@Suite struct TLSRequirementTests {
    @Test func byDefaultOnlyHostsOffThisMachineNeedTLS() {
        let automatic = TLSRequirement.automatic
        for local in ["", "/var/run/postgresql", "@abstract", "localhost", "127.0.0.1", "127.8.9.10", "::1", "LOCALHOST"] {
            #expect(!automatic.applies(toHosts: local), "\(local)")
        }
        for remote in ["db.example.com", "10.0.0.5", "128.0.0.1", "fe80::1", "localhost,db2.example.com", "127.0.0.1.example.com"] {
            #expect(automatic.applies(toHosts: remote), "\(remote)")
        }
        #expect(TLSRequirement.required.applies(toHosts: "/tmp"))
        #expect(!TLSRequirement.notRequired.applies(toHosts: "db.example.com"))
    }

    @Test func aRemoteHostGetsRequireAndAPlainTextModeIsRefused() throws {
        let remote = try ConnectionString("host=db.example.com dbname=fasttrack")
        #expect(try remote.sslModeToAdd() == "require")
        #expect(remote.forChildProcess().conninfo.contains("sslmode='require'"))
        #expect(try ConnectionString("host=db.example.com sslmode=verify-full").sslModeToAdd() == nil)
        #expect(throws: FTBackupError.self) { try ConnectionString("host=db.example.com sslmode=prefer").sslModeToAdd() }
        let optedOut = try ConnectionString("host=db.example.com sslmode=disable").requiringTLS(.notRequired)
        #expect(try optedOut.sslModeToAdd() == nil)
        #expect(try ConnectionString("host=127.0.0.1 sslmode=disable").sslModeToAdd() == nil)
    }
}
