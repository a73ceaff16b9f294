/// A collection field that a record written by an earlier ftbackup may lack: it decodes as empty.
///
/// Evidence and manifests are kept for years; a field added later must not make the older files
/// unreadable (`verify` would call them damaged, compliance reports could not read them).
@propertyWrapper
public struct DefaultEmpty<Value: Codable & Sendable & Equatable & RangeReplaceableCollection>: Codable, Sendable, Equatable {
    public var wrappedValue: Value

    public init(wrappedValue: Value) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        wrappedValue = try decoder.singleValueContainer().decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

extension KeyedDecodingContainer {
    public func decode<Value>(_ type: DefaultEmpty<Value>.Type, forKey key: Key) throws -> DefaultEmpty<Value> {
        try decodeIfPresent(type, forKey: key) ?? DefaultEmpty(wrappedValue: Value())
    }
}
