import Foundation
import Testing
@testable import FTBackupKit

@Suite struct DumpEntryScriptsTests {
    /// pg_restore's script cut at its headers: the preamble's encoding, psql's \restrict lines left out,
    /// each entry with the tablespace set before its header, and a comment's text kept byte for byte.
    @Test func splitsAScriptAtItsEntryHeaders() {
        let script = """
            SET client_encoding = 'LATIN1';
            \\restrict abc
            SET default_tablespace = '';

            --
            -- Name: t_u; Type: INDEX; Schema: s; Owner: o
            --

            CREATE UNIQUE INDEX t_u ON s.t USING btree (u);

            ALTER TABLE ONLY s.t REPLICA IDENTITY USING INDEX t_u;

            SET default_tablespace = fast;

            --
            -- Name: INDEX t_u; Type: COMMENT; Schema: s; Owner: o
            --

            COMMENT ON INDEX s.t_u IS 'two
            -- lines';

            \\unrestrict abc
            """
        var bytes = Array(script.utf8)
        bytes[bytes.lastIndex(of: UInt8(ascii: "w"))!] = 0xE9  // the comment says "t\u{E9}o" in LATIN1: not UTF-8
        let (encoding, scripts, headers) = DumpEntryScripts.split(bytes)
        #expect(encoding == "LATIN1")
        #expect(headers.count == 2 && headers[1].contains("; Type: COMMENT; Schema: s"))
        #expect(scripts.count == 2)
        #expect(String(decoding: scripts[0], as: UTF8.self).hasPrefix("SET default_tablespace = '';\n\nCREATE UNIQUE INDEX t_u"))
        #expect(DumpEntryScripts.setsReplicaIdentity(scripts[0]))
        #expect(!DumpEntryScripts.setsReplicaIdentity(scripts[1]))
        #expect(scripts[1].starts(with: "SET default_tablespace = fast;\n\nCOMMENT ON INDEX s.t_u IS 't".utf8))
        #expect(scripts[1].contains(0xE9))
        #expect(!String(decoding: scripts[1], as: UTF8.self).contains("restrict"))
    }

    /// A unique index is told from others by its own statement, not by a comment or a name that says "unique".
    @Test func tellsAUniqueIndexByItsStatement() {
        let unique = Array("SET default_tablespace = '';\n\nCREATE UNIQUE INDEX codes_code ON s.codes USING btree (code);\n".utf8)
        let plain = Array("SET default_tablespace = '';\n\nCREATE INDEX unique_looking ON s.t USING btree (u);\n".utf8)
        let commented = Array("SET default_tablespace = '';\n\nCREATE INDEX t_i ON s.t USING btree (u);\n\nCOMMENT ON INDEX s.t_i IS '\nCREATE UNIQUE INDEX in a comment';\n".utf8)
        #expect(DumpEntryScripts.createsUniqueIndex(unique))
        #expect(!DumpEntryScripts.createsUniqueIndex(plain))
        #expect(!DumpEntryScripts.createsUniqueIndex(commented))
    }
}
