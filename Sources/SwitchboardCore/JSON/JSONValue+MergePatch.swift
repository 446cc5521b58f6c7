extension JSONValue {
    /// Applies an RFC 7396 JSON merge patch: objects merge recursively, `null` deletes a member,
    /// anything else (arrays included) replaces the target.
    public func merging(patch: JSONValue) -> JSONValue {
        guard case .object(let patchObject) = patch else { return patch }
        var result: JSONObject
        if case .object(let target) = self {
            result = target
        } else {
            result = [:]
        }
        for (key, value) in patchObject {
            if value.isNull {
                result.removeValue(forKey: key)
            } else {
                result[key] = (result[key] ?? .null).merging(patch: value)
            }
        }
        return .object(result)
    }

    /// Replaces the subtree at a `/`-separated path of object keys, creating objects along the
    /// way (the Admin API's `PATCH /routes/1/plugins/x` form). Array elements are addressed by
    /// 0-based index. Returns `nil` when the path crosses a scalar.
    public func replacing(path: [String], with replacement: JSONValue) -> JSONValue? {
        guard let head = path.first else { return replacement }
        let rest = Array(path.dropFirst())
        switch self {
        case .object(var o):
            let child = o[head] ?? .object([:])
            guard let newChild = child.replacing(path: rest, with: replacement) else { return nil }
            o[head] = newChild
            return .object(o)
        case .array(var a):
            guard let i = Int(head), a.indices.contains(i) else { return nil }
            guard let newChild = a[i].replacing(path: rest, with: replacement) else { return nil }
            a[i] = newChild
            return .array(a)
        case .null:
            return JSONValue.object([:]).replacing(path: path, with: replacement)
        default:
            return nil
        }
    }
}
