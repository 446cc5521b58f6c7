extension Schema {
    /// Validates `value` and returns it with defaults filled in.
    public func validate(_ value: JSONValue) throws(SchemaError) -> JSONValue {
        var result = value
        try checkType(value)
        switch value {
        case .object(let object):
            result = .object(try validateObject(object))
        case .array(let array):
            result = .array(try validateArray(array))
        case .string(let string):
            try validateString(string)
        case .int, .double:
            try validateNumber(value)
        default:
            break
        }
        if let enumValues, !enumValues.contains(value) {
            throw SchemaError("matches none of the enum values")
        }
        if let allOf {
            for (i, sub) in allOf.enumerated() {
                do { result = try sub.validate(result) } catch {
                    throw SchemaError("allOf \(i + 1) failed: \(error.message)")
                }
            }
        }
        if let anyOf {
            var matched: JSONValue?
            for sub in anyOf {
                if let ok = try? sub.validate(result) {
                    matched = ok
                    break
                }
            }
            guard let matched else {
                let requires = anyOf.compactMap {
                    $0.required.isEmpty ? nil : JSONValue.array($0.required.map { .string($0) }).serialized()
                }
                if requires.isEmpty { throw SchemaError("object matches none of the required") }
                throw SchemaError("object matches none of the required: \(requires.joined(separator: " or "))")
            }
            result = matched
        }
        if let oneOf {
            var matchedIndex: Int?
            var matchedValue = result
            for (i, sub) in oneOf.enumerated() {
                if let ok = try? sub.validate(result) {
                    if let first = matchedIndex {
                        throw SchemaError(
                            "value should match only one schema, but matches both schemas \(first + 1) and \(i + 1)")
                    }
                    matchedIndex = i
                    matchedValue = ok
                }
            }
            guard matchedIndex != nil else { throw SchemaError("value should match only one schema, but matches none") }
            result = matchedValue
        }
        if let not, (try? not.validate(result)) != nil {
            throw SchemaError("value wasn't supposed to match schema")
        }
        if let ifSchema, (try? ifSchema.validate(result)) != nil, let thenSchema {
            do { result = try thenSchema.validate(result) } catch { throw SchemaError("then clause did not match") }
        }
        return result
    }

    private func luaTypeName(_ value: JSONValue) -> String {
        switch value {
        case .object, .array: return "table"
        case .int, .double: return "number"
        case .bool: return "boolean"
        case .string: return "string"
        case .null: return "null"
        }
    }

    private func matches(_ type: JSONType, _ value: JSONValue) -> Bool {
        switch (type, value) {
        case (.string, .string), (.boolean, .bool), (.null, .null): return true
        case (.number, .int), (.number, .double): return true
        case (.integer, .int): return true
        case (.integer, .double(let d)): return d.rounded() == d
        case (.object, .object), (.array, .array): return true
        // Lua cannot tell an empty object from an empty array; APISIX accepts `[]` for `{}`.
        case (.object, .array(let a)): return a.isEmpty
        case (.array, .object(let o)): return o.isEmpty
        default: return false
        }
    }

    private func checkType(_ value: JSONValue) throws(SchemaError) {
        guard let types else { return }
        if types.contains(where: { matches($0, value) }) { return }
        if types.count == 1 {
            throw SchemaError("wrong type: expected \(types[0].rawValue), got \(luaTypeName(value))")
        }
        throw SchemaError(
            "wrong type: expected one of \(types.map(\.rawValue).joined(separator: ", ")), got \(luaTypeName(value))")
    }

    private func validateObject(_ input: JSONObject) throws(SchemaError) -> JSONObject {
        var object = input
        for (name, sub) in properties {
            if let value = object[name] {
                do {
                    object[name] = try sub.validate(value)
                } catch {
                    throw SchemaError("property \"\(name)\" validation failed: \(error.message)")
                }
                for (prop, deps) in dependencies where prop == name {
                    for dep in deps where object[dep] == nil {
                        throw SchemaError("property \"\(dep)\" is required when \"\(name)\" is set")
                    }
                }
            } else if required.contains(name) {
                throw SchemaError("property \"\(name)\" is required")
            } else if let defaultValue = sub.defaultValue {
                object[name] = defaultValue
            }
        }
        for name in required where object[name] == nil {
            throw SchemaError("property \"\(name)\" is required")
        }
        for (prop, deps) in dependencies where object[prop] != nil && !properties.contains(where: { $0.0 == prop }) {
            for dep in deps where object[dep] == nil {
                throw SchemaError("property \"\(dep)\" is required when \"\(prop)\" is set")
            }
        }
        for (key, value) in object {
            if properties.contains(where: { $0.0 == key }) { continue }
            var matched = false
            for (pattern, sub) in patternProperties where pattern.matches(key) {
                matched = true
                do {
                    object[key] = try sub.validate(value)
                } catch {
                    throw SchemaError("failed to validate \(key) (matching \"\(pattern.source)\"): \(error.message)")
                }
            }
            if matched { continue }
            switch additionalProperties {
            case .allowed: break
            case .forbidden: throw SchemaError("additional properties forbidden, found \(key)")
            case .schema(let sub):
                do {
                    object[key] = try sub.validate(value)
                } catch {
                    throw SchemaError("failed to validate additional property \(key): \(error.message)")
                }
            }
        }
        if let minProperties, object.count < minProperties {
            throw SchemaError("expect object to have at least \(minProperties) properties")
        }
        if let maxProperties, object.count > maxProperties {
            throw SchemaError("expect object to have at most \(maxProperties) properties")
        }
        return object
    }

    private func validateArray(_ input: [JSONValue]) throws(SchemaError) -> [JSONValue] {
        var array = input
        if let minItems, array.count < minItems {
            throw SchemaError("expect array to have at least \(minItems) items")
        }
        if let maxItems, array.count > maxItems {
            throw SchemaError("expect array to have at most \(maxItems) items")
        }
        if let items {
            for i in array.indices {
                do {
                    array[i] = try items.validate(array[i])
                } catch {
                    throw SchemaError("failed to validate item \(i + 1): \(error.message)")
                }
            }
        }
        if uniqueItems {
            for i in array.indices {
                for j in array.indices where j > i && array[i] == array[j] {
                    throw SchemaError("expected unique items but items \(i + 1) and \(j + 1) are equal")
                }
            }
        }
        return array
    }

    private func validateString(_ string: String) throws(SchemaError) {
        let length = string.utf8.count
        if let minLength, length < minLength {
            throw SchemaError("string too short, expected at least \(minLength), got \(length)")
        }
        if let maxLength, length > maxLength {
            throw SchemaError("string too long, expected at most \(maxLength), got \(length)")
        }
        if let pattern, !pattern.matches(string) {
            throw SchemaError("failed to match pattern \"\(pattern.source)\" with \"\(string)\"")
        }
    }

    private func validateNumber(_ value: JSONValue) throws(SchemaError) {
        guard let number = value.doubleValue else { return }
        let shown = value.serialized()
        if let minimum, number < minimum {
            throw SchemaError("expected \(shown) to be at least \(Self.format(minimum))")
        }
        if let exclusiveMinimum, number <= exclusiveMinimum {
            throw SchemaError("expected \(shown) to be greater than \(Self.format(exclusiveMinimum))")
        }
        if let maximum, number > maximum {
            throw SchemaError("expected \(shown) to be at most \(Self.format(maximum))")
        }
        if let exclusiveMaximum, number >= exclusiveMaximum {
            throw SchemaError("expected \(shown) to be smaller than \(Self.format(exclusiveMaximum))")
        }
    }

    static func format(_ number: Double) -> String {
        JSONValue.double(number).serialized()
    }
}
