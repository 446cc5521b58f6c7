import Foundation

/// A JSON Schema (draft 4–7 subset) used to validate configuration exactly as APISIX does.
///
/// Plugin and resource schemas are declared as data, like APISIX's Lua tables, and
/// ``Schema/validate(_:)`` answers with the same messages as the `jsonschema` library that
/// APISIX uses (`property "x" validation failed: ...`), so users' scripts that match on error
/// texts keep working. Validation also returns the value with `default`s filled in, because
/// APISIX stores configuration with its defaults.
public final class Schema: Sendable {
    public enum JSONType: String, Sendable {
        case string, integer, number, boolean, object, array, null
    }

    public enum Additional: Sendable {
        case allowed
        case forbidden
        case schema(Schema)
    }

    public let types: [JSONType]?
    public let properties: [(String, Schema)]
    public let required: [String]
    public let additionalProperties: Additional
    public let patternProperties: [(SchemaPattern, Schema)]
    public let dependencies: [(String, [String])]
    public let minProperties: Int?
    public let maxProperties: Int?
    public let items: Schema?
    public let minItems: Int?
    public let maxItems: Int?
    public let uniqueItems: Bool
    public let minLength: Int?
    public let maxLength: Int?
    public let pattern: SchemaPattern?
    public let enumValues: [JSONValue]?
    public let minimum: Double?
    public let maximum: Double?
    public let exclusiveMinimum: Double?
    public let exclusiveMaximum: Double?
    public let anyOf: [Schema]?
    public let oneOf: [Schema]?
    public let allOf: [Schema]?
    public let not: Schema?
    public let ifSchema: Schema?
    public let thenSchema: Schema?
    public let defaultValue: JSONValue?

    public init(
        type: JSONType? = nil,
        types: [JSONType]? = nil,
        properties: KeyValuePairs<String, Schema> = [:],
        propertyList: [(String, Schema)] = [],
        required: [String] = [],
        additionalProperties: Additional = .allowed,
        patternProperties: [(String, Schema)] = [],
        dependencies: [(String, [String])] = [],
        minProperties: Int? = nil,
        maxProperties: Int? = nil,
        items: Schema? = nil,
        minItems: Int? = nil,
        maxItems: Int? = nil,
        uniqueItems: Bool = false,
        minLength: Int? = nil,
        maxLength: Int? = nil,
        pattern: String? = nil,
        enum enumValues: [JSONValue]? = nil,
        minimum: Double? = nil,
        maximum: Double? = nil,
        exclusiveMinimum: Double? = nil,
        exclusiveMaximum: Double? = nil,
        anyOf: [Schema]? = nil,
        oneOf: [Schema]? = nil,
        allOf: [Schema]? = nil,
        not: Schema? = nil,
        if ifSchema: Schema? = nil,
        then thenSchema: Schema? = nil,
        default defaultValue: JSONValue? = nil
    ) {
        if let type {
            self.types = [type]
        } else {
            self.types = types
        }
        self.properties = properties.map { ($0.key, $0.value) } + propertyList
        self.required = required
        self.additionalProperties = additionalProperties
        self.patternProperties = patternProperties.map { (SchemaPattern($0.0), $0.1) }
        self.dependencies = dependencies
        self.minProperties = minProperties
        self.maxProperties = maxProperties
        self.items = items
        self.minItems = minItems
        self.maxItems = maxItems
        self.uniqueItems = uniqueItems
        self.minLength = minLength
        self.maxLength = maxLength
        self.pattern = pattern.map(SchemaPattern.init)
        self.enumValues = enumValues
        self.minimum = minimum
        self.maximum = maximum
        self.exclusiveMinimum = exclusiveMinimum
        self.exclusiveMaximum = exclusiveMaximum
        self.anyOf = anyOf
        self.oneOf = oneOf
        self.allOf = allOf
        self.not = not
        self.ifSchema = ifSchema
        self.thenSchema = thenSchema
        self.defaultValue = defaultValue
    }
}

/// A compiled regular expression of a schema `pattern` (PCRE-like syntax, unanchored search).
public final class SchemaPattern: @unchecked Sendable {
    // NSRegularExpression is immutable and documented as thread-safe once created.
    public let source: String
    private let regex: NSRegularExpression?

    public init(_ source: String) {
        self.source = source
        self.regex = try? NSRegularExpression(pattern: source)
        precondition(regex != nil, "invalid schema pattern \(source)")
    }

    public func matches(_ string: String) -> Bool {
        guard let regex else { return false }
        let range = NSRange(string.startIndex..<string.endIndex, in: string)
        return regex.firstMatch(in: string, options: [], range: range) != nil
    }
}

/// A schema violation, worded like APISIX's `jsonschema` library.
public struct SchemaError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
