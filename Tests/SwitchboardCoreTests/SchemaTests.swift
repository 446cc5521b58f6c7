import Testing

@testable import SwitchboardCore

@Suite struct SchemaTests {
    func message(_ schema: Schema, _ json: String) -> String? {
        do {
            _ = try schema.validate(try JSONParser.parse(json))
            return nil
        } catch let error as SchemaError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test(arguments: [
        (
            #"{"uri":"/a","methods":["GETT"],"plugins":{}}"#,
            #"property "methods" validation failed: failed to validate item 1: matches none of the enum values"#
        ),
        (
            #"{"uri":"/a"}"#,
            #"object matches none of the required: ["plugins","uri"] or ["upstream","uri"] or ["upstream_id","uri"] or ["service_id","uri"] or ["plugins","uris"] or ["upstream","uris"] or ["upstream_id","uris"] or ["service_id","uris"] or ["script","uri"] or ["script","uris"]"#
        ),
        (#"{"uri":"/a","plugins":{},"foo":1}"#, "additional properties forbidden, found foo"),
        (#"{"uri":5,"plugins":{}}"#, #"property "uri" validation failed: wrong type: expected string, got number"#),
        (
            #"{"uri":"","plugins":{}}"#,
            #"property "uri" validation failed: string too short, expected at least 1, got 0"#
        ),
        (
            #"{"uri":"/a","plugins":{},"status":3}"#,
            #"property "status" validation failed: matches none of the enum values"#
        ),
        (
            #"{"uri":"/a","plugins":{},"id":"a b"}"#,
            #"property "id" validation failed: object matches none of the required"#
        ),
        (
            #"{"uri":"/a","plugins":{},"host":"a b"}"#,
            #"property "host" validation failed: failed to match pattern "^\*?[0-9a-zA-Z-._\[\]:]+$" with "a b""#
        ),
        (
            #"{"uri":"/a","plugins":{},"priority":1.5}"#,
            #"property "priority" validation failed: wrong type: expected integer, got number"#
        ),
        (#"{"uri":"/a","uris":["/b"],"plugins":{}}"#, "value wasn't supposed to match schema"),
    ])
    func routeMessagesMatchAPISIX(json: String, expected: String) {
        #expect(message(ResourceSchemas.route, json) == expected)
    }

    @Test func injectsDefaults() throws {
        let value = try ResourceSchemas.route.validate(
            try JSONParser.parse(#"{"uri":"/a","upstream":{"nodes":{"h:1":1}}}"#))
        #expect(value["priority"] == 0)
        #expect(value["status"] == 1)
        #expect(value["upstream"]?["type"] == "roundrobin")
        #expect(value["upstream"]?["pass_host"] == "pass")
    }

    @Test func rangesAndDependencies() {
        let schema = Schema(
            type: .object,
            properties: [
                "limit": Schema(type: .integer, exclusiveMinimum: 0),
                "time_window": Schema(type: .integer, exclusiveMinimum: 0),
                "rejected_code": Schema(type: .integer, minimum: 200, maximum: 599),
                "list": Schema(type: .array, items: Schema(type: .integer), minItems: 1, uniqueItems: true),
            ],
            dependencies: [("limit", ["time_window"]), ("time_window", ["limit"])])
        #expect(
            message(schema, #"{"rejected_code":199}"#)
                == #"property "rejected_code" validation failed: expected 199 to be at least 200"#)
        #expect(
            message(schema, #"{"rejected_code":600}"#)
                == #"property "rejected_code" validation failed: expected 600 to be at most 599"#)
        #expect(
            message(schema, #"{"limit":0,"time_window":1}"#)
                == #"property "limit" validation failed: expected 0 to be greater than 0"#)
        #expect(message(schema, #"{"time_window":60}"#) == #"property "limit" is required when "time_window" is set"#)
        #expect(message(schema, #"{"limit":30}"#) == #"property "time_window" is required when "limit" is set"#)
        #expect(
            message(schema, #"{"list":[]}"#)
                == #"property "list" validation failed: expect array to have at least 1 items"#)
        #expect(
            message(schema, #"{"list":[1,2,1]}"#)
                == #"property "list" validation failed: expected unique items but items 1 and 3 are equal"#)
        #expect(message(schema, #"{"limit":1,"time_window":2,"list":[1]}"#) == nil)
    }

    @Test func oneOfReportsBothMatches() {
        let schema = Schema(oneOf: [Schema(required: ["a"]), Schema(required: ["b"])])
        #expect(
            message(schema, #"{"a":1,"b":2}"#) == "value should match only one schema, but matches both schemas 1 and 2"
        )
        #expect(message(schema, #"{"c":1}"#) == "value should match only one schema, but matches none")
        #expect(message(schema, #"{"b":1}"#) == nil)
    }
}
