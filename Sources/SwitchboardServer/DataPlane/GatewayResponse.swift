import HTTPTypes
import Hummingbird
import NIOCore
import SwitchboardCore

/// Small constructors for the responses the gateway itself produces.
public enum GatewayResponse {
    public static func json(
        _ status: HTTPResponse.Status, _ value: JSONValue, headers: HTTPFields = [:], trailingNewline: Bool = true
    ) -> Response {
        var bytes = value.serializedBytes()
        if trailingNewline { bytes.append(0x0A) }
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    public static func text(_ status: HTTPResponse.Status, _ text: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
