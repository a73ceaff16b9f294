import Foundation

/// Reads the few values ftbackup needs out of S3's XML answers (list results, error codes, upload ids).
///
/// S3's responses are flat, machine-written XML; a small tag scanner avoids a dependency on an XML
/// parser module for `<Key>`, `<Prefix>`, `<Code>` and the like.
public enum S3XML {
    /// The text of every `<tag>…</tag>` in order (entities decoded), within `xml`.
    public static func all(_ tag: String, in xml: [UInt8]) -> [String] { all(tag, in: String(decoding: xml, as: UTF8.self)) }

    public static func all(_ tag: String, in text: String) -> [String] {
        var values: [String] = []
        let open = "<\(tag)>", close = "</\(tag)>"
        var rest = text[...]
        while let start = rest.range(of: open) {
            guard let end = rest.range(of: close, range: start.upperBound..<rest.endIndex) else { break }
            values.append(decode(String(rest[start.upperBound..<end.lowerBound])))
            rest = rest[end.upperBound...]
        }
        return values
    }

    public static func first(_ tag: String, in xml: [UInt8]) -> String? { all(tag, in: xml).first }

    /// The inner text of every `<element>…</element>` block (for `<Contents>`, `<CommonPrefixes>`, `<Upload>`).
    public static func blocks(_ element: String, in xml: [UInt8]) -> [String] {
        let text = String(decoding: xml, as: UTF8.self)
        var blocks: [String] = []
        let open = "<\(element)>", close = "</\(element)>"
        var rest = text[...]
        while let start = rest.range(of: open) {
            guard let end = rest.range(of: close, range: start.upperBound..<rest.endIndex) else { break }
            blocks.append(String(rest[start.upperBound..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        return blocks
    }

    static func decode(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else { break }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                if entity.hasPrefix("#x"), let code = UInt32(entity.dropFirst(2), radix: 16), let scalar = Unicode.Scalar(code) {
                    out.unicodeScalars.append(scalar)
                } else if entity.hasPrefix("#"), let code = UInt32(entity.dropFirst()), let scalar = Unicode.Scalar(code) {
                    out.unicodeScalars.append(scalar)
                } else {
                    out += "&\(entity);"
                }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }

    /// Escapes text for an XML body (the CompleteMultipartUpload request).
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
