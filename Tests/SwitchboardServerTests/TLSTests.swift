import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SwitchboardCore
import Testing
import X509

/// A test CA issuing server and client certificates, made fresh for each test.
struct TestCA {
    let key = P256.Signing.PrivateKey()
    let certificate: Certificate

    init(name: String = "Switchboard Test CA") throws {
        let subject = try DistinguishedName { CommonName(name) }
        let now = Date()
        certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 86400, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key))
    }

    var pem: String { (try? certificate.serializeAsPEM().pemString) ?? "" }

    /// A leaf for `names` (server) or a client certificate; `expired` ends it an hour ago.
    func issue(_ names: [String], client: Bool = false, expired: Bool = false) throws -> (cert: String, key: String) {
        let leafKey = P256.Signing.PrivateKey()
        let now = Date()
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(leafKey.publicKey),
            notValidBefore: now - 7200, notValidAfter: expired ? now - 3600 : now + 86400,
            issuer: certificate.subject, subject: try DistinguishedName { CommonName(names[0]) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([client ? .clientAuth : .serverAuth])
                SubjectAlternativeNames(names.map { .dnsName($0) })
            },
            issuerPrivateKey: .init(key))
        return (try leaf.serializeAsPEM().pemString, leafKey.pemRepresentation)
    }
}

/// TLS on the proxy port: certificates from the `ssls` resource picked by SNI (no restart for a
/// new one), ALPN with HTTP/2, streams over HTTP/2, mutual TLS, and certificates checked when
/// they are written.
@Suite struct TLSTests {
    /// A gateway with a plain listener (`proxy0`) and a TLS one (`proxy1`).
    static func tlsGateway() async throws -> TestGateway {
        try await TestGateway.start { config, _ in
            config.proxyListen = [
                ListenAddress(host: "127.0.0.1", port: 0), ListenAddress(host: "127.0.0.1", port: 0, tls: true),
            ]
        }
    }

    static func ssl(_ cert: String, _ key: String, snis: [String], clientCA: String? = nil) -> String {
        var value: JSONValue = ["cert": .string(cert), "key": .string(key), "snis": .array(snis.map { .string($0) })]
        if let clientCA { value["client"] = ["ca": .string(clientCA)] }
        return value.serialized()
    }

    /// A client that trusts `ca`, resolves every test name to 127.0.0.1 (keeping SNI and
    /// hostname verification, like curl's `--resolve`).
    /// Owned by `fx`, so that it is shut down even when the test fails before it does (an
    /// `HTTPClient` dropped without `shutdown()` ends the test process).
    static func client(
        _ fx: Fixtures, _ ca: TestCA, names: [String], http1Only: Bool = false,
        identity: (cert: String, key: String)? = nil
    ) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(ca.pem.utf8), format: .pem)])
        if let identity {
            tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: Array(identity.cert.utf8), format: .pem))]
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.key.utf8), format: .pem))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.dnsOverride = Dictionary(uniqueKeysWithValues: names.map { ($0, "127.0.0.1") })
        configuration.httpVersion = http1Only ? .http1Only : .automatic
        // A refused handshake is the answer; retrying it would only wait for the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        return fx.own(HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration))
    }

    static func get(_ client: HTTPClient, _ url: String) async throws -> (
        status: Int, version: HTTPVersion, body: String
    ) {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.version, String(buffer: body))
    }

    @Test func certificatesAreCheckedWhenWritten() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let ca = try TestCA()
            let good = try ca.issue(["a.example.test"])
            let other = try ca.issue(["a.example.test"])
            let expired = try ca.issue(["a.example.test"], expired: true)
            let cases: [(String, String)] = [
                (
                    Self.ssl(String(repeating: "x", count: 200), good.key, snis: ["a.example.test"]),
                    "not a PEM certificate"
                ),
                (
                    Self.ssl(good.cert, String(repeating: "y", count: 200), snis: ["a.example.test"]),
                    "not a PEM private key"
                ),
                (Self.ssl(good.cert, other.key, snis: ["a.example.test"]), "key does not match the certificate"),
                (Self.ssl(expired.cert, expired.key, snis: ["a.example.test"]), "the certificate expired at"),
            ]
            for (body, message) in cases {
                let result = try await gw.admin(.PUT, "/ssls/1", body)
                #expect(result.status == 400)
                let text = result.json["error_msg"]?.stringValue ?? ""
                #expect(text.hasPrefix("invalid configuration: ") && text.contains(message), "\(text)")
            }
            let noSNI = try await gw.admin(
                .PUT, "/ssls/1",
                #"{"cert":"\#(String(repeating: "c", count: 130))","key":"\#(String(repeating: "k", count: 130))"}"#)
            #expect(noSNI.status == 400)
            let stored = try await gw.admin(.PUT, "/ssls/1", Self.ssl(good.cert, good.key, snis: ["a.example.test"]))
            #expect(stored.status == 201)
            #expect(!stored.body.contains("PRIVATE KEY"), "the private key is never shown")
            #expect(try await gw.admin(.GET, "/ssls/1").json["value"]?["key"] == .string(SensitiveFields.mask))
        }
    }

    /// A certificate that expired while stored does not keep the gateway from starting (here a
    /// standalone file, read strictly): it is logged and still served, and clients decide.
    @Test func anExpiredStoredCertificateDoesNotStopAStart() async throws {
        try await withFixture { fx in
            let ca = try TestCA()
            let expired = try ca.issue(["old.example.test"], expired: true)
            let directory = TestGateway.makeDirectory()
            let file = directory.appendingPathComponent("routes.yaml")
            let ssl = Self.ssl(expired.cert, expired.key, snis: ["old.example.test"])
            try """
            routes:
              - {id: hello, uri: /hello, plugins: {mocking: {response_example: hi}}}
            ssls:
              - \(ssl.replacingOccurrences(of: "{", with: "{\"id\":\"old\",", options: .anchored))
            #END
            """.write(to: file, atomically: true, encoding: .utf8)
            let gw = try await fx.own(
                TestGateway.start(directory: directory) { config, _ in
                    config.store = .file(path: file.path)
                    config.proxyListen.append(ListenAddress(host: "127.0.0.1", port: 0, tls: true))
                })
            #expect(try await gw.proxy(.GET, "/hello").body == "hi")
            #expect(try await gw.admin(.GET, "/ssls/old").status == 200)
        }
    }

    /// Two certificates, one with a wildcard: the client's SNI picks the one it verifies; a
    /// third added later is served at once; HTTP/2 by ALPN, HTTP/1.1 for clients that want it.
    @Test func sniPicksTheCertificateAndHTTP2IsNegotiated() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(Self.tlsGateway())
            let port = try gw.port("proxy1")
            let ca = try TestCA()
            let a = try ca.issue(["a.example.test"])
            let b = try ca.issue(["*.b.example.test"])
            #expect(
                try await gw.admin(.PUT, "/ssls/a", Self.ssl(a.cert, a.key, snis: ["a.example.test"])).status == 201)
            #expect(
                try await gw.admin(.PUT, "/ssls/b", Self.ssl(b.cert, b.key, snis: ["*.b.example.test"])).status == 201)
            let route = #"{"uri":"/hello","plugins":{"mocking":{"response_example":"hi"}}}"#
            #expect(try await gw.admin(.PUT, "/routes/hello", route).status == 201)

            let names = ["a.example.test", "x.b.example.test", "c.example.test"]
            let client = try Self.client(fx, ca, names: names)
            let first = try await Self.get(client, "https://a.example.test:\(port)/hello")
            #expect(first.status == 200 && first.body == "hi" && first.version == .http2)
            let wildcard = try await Self.get(client, "https://x.b.example.test:\(port)/hello")
            #expect(wildcard.status == 200 && wildcard.version == .http2)
            await #expect(throws: (any Error).self, "no certificate for this name") {
                _ = try await Self.get(client, "https://c.example.test:\(port)/hello")
            }
            let c = try ca.issue(["c.example.test"])
            #expect(
                try await gw.admin(.PUT, "/ssls/c", Self.ssl(c.cert, c.key, snis: ["c.example.test"])).status == 201)
            #expect(try await Self.get(client, "https://c.example.test:\(port)/hello").status == 200, "without restart")
            try await client.shutdown()

            let http1 = try Self.client(fx, ca, names: names, http1Only: true)
            let old = try await Self.get(http1, "https://a.example.test:\(port)/hello")
            #expect(old.status == 200 && old.version == .http1_1)
            try await http1.shutdown()
            // The plain listener is unchanged.
            #expect(try await gw.proxy(.GET, "/hello").body == "hi")
        }
    }

    /// An AI fixture whose gateway listens only with TLS, serving `ai.example.test` with a
    /// certificate of the returned CA.
    static func tlsAIFixture(_ fx: Fixtures) async throws -> (AIFixture, Int, TestCA) {
        let f = try await fx.own(
            AIFixture.start { config, _ in
                config.proxyListen = [ListenAddress(host: "127.0.0.1", port: 0, tls: true)]
            })
        let ca = try TestCA()
        let a = try ca.issue(["ai.example.test"])
        let stored = try await f.gw.admin(.PUT, "/ssls/a", Self.ssl(a.cert, a.key, snis: ["ai.example.test"]))
        #expect(stored.status == 201)
        return (f, try f.gw.port("proxy0"), ca)
    }

    /// curl over HTTP/2 streams a chat completion through the gateway: every event arrives, in
    /// order.
    @Test func curlStreamsOverHTTP2() async throws {
        try await withFixture { fx in
            let (f, port, ca) = try await Self.tlsAIFixture(fx)
            f.a.reply { _ in
                .sse(events: FakeLLM.chatStream(model: "m", words: ["one", " two", " three"], includeUsage: true))
            }
            try await f.route("{\"instances\":[\(f.instance("a", f.a))]}")
            let caFile = f.gw.directory.appendingPathComponent("ca.pem")
            try ca.pem.write(to: caFile, atomically: true, encoding: .utf8)
            let result = try await Spawned.finish(
                "curl",
                [
                    "-sS", "-N", "--http2", "--resolve", "ai.example.test:\(port):127.0.0.1", "--cacert", caFile.path,
                    "-H", "Content-Type: application/json", "-d",
                    #"{"stream":true,"messages":[{"role":"user","content":"count"}]}"#,
                    "-w", "\\nHTTP_VERSION=%{http_version}", "https://ai.example.test:\(port)/anything",
                ])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.hasSuffix("HTTP_VERSION=2"))
            let contents = result.stdout.split(separator: "\n").filter { $0.hasPrefix("data: {") }.compactMap {
                (try? JSONParser.parse(String($0.dropFirst(6))))?["choices"]?[0]?["delta"]?["content"]?.stringValue
            }
            #expect(contents.joined() == "one two three")
            #expect(result.stdout.contains("data: [DONE]"))
        }
    }

    /// A client that resets one HTTP/2 stream cancels that request's upstream call; the
    /// connection and its other requests go on.
    @Test func resettingAnHTTP2StreamCancelsOnlyThatRequest() async throws {
        try await withFixture { fx in
            let (f, port, ca) = try await Self.tlsAIFixture(fx)
            let events = Array(FakeLLM.chatStream(model: "m", words: ["a"], includeUsage: false).prefix(2))
            let calls = Counter()
            f.a.reply { _ in
                calls.next() == 0
                    ? .sse(events: events, end: .hang) : .json(status: 200, body: FakeLLM.completion(model: "m"))
            }
            try await f.route("{\"instances\":[\(f.instance("a", f.a))]}")
            let client = try Self.client(fx, ca, names: ["ai.example.test"])
            let url = "https://ai.example.test:\(port)/anything"
            let stream = Task {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: streamBody))
                let response = try await client.execute(request, timeout: .seconds(30))
                #expect(response.version == .http2)
                for try await chunk in response.body where String(buffer: chunk).contains("\"a\"") { return }
            }
            try await stream.value
            let disconnects = f.a.disconnects
            let noticed = try await within(10) {
                var iterator = disconnects.makeAsyncIterator()
                return await iterator.next() != nil
            }
            #expect(noticed, "the upstream call of the reset stream was cancelled")
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"messages":[{"role":"user","content":"hi"}]}"#))
            let next = try await client.execute(request, timeout: .seconds(10))
            #expect(next.status == .ok && next.version == .http2)
            _ = try await next.body.collect(upTo: 1 << 20)
            try await client.shutdown()
        }
    }

    /// A plain upstream behind a TLS listener is told the client came over https.
    @Test func upstreamsSeeTheHTTPSScheme() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(Self.tlsGateway())
            let upstream = try await fx.own(FakeUpstream.start(name: "u"))
            let ca = try TestCA()
            let a = try ca.issue(["a.example.test"])
            #expect(
                try await gw.admin(.PUT, "/ssls/a", Self.ssl(a.cert, a.key, snis: ["a.example.test"])).status == 201)
            let route = #"{"uri":"/api/*","upstream":{"nodes":{"\#(upstream.address)":1}}}"#
            #expect(try await gw.admin(.PUT, "/routes/api", route).status == 201)
            let client = try Self.client(fx, ca, names: ["a.example.test"])
            #expect(try await Self.get(client, "https://a.example.test:\(try gw.port("proxy1"))/api/x").status == 200)
            try await client.shutdown()
            #expect(try await gw.proxy(.GET, "/api/y").status == 200)
            let schemes = upstream.requests.map { $0.headers[.init("X-Forwarded-Proto")!] }
            #expect(schemes == ["https", "http"])
        }
    }

    /// A certificate with a client CA requires a client certificate that CA issued.
    @Test func mutualTLSRequiresAClientCertificate() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(Self.tlsGateway())
            let port = try gw.port("proxy1")
            let ca = try TestCA()
            let clientCA = try TestCA(name: "Client CA")
            let server = try ca.issue(["m.example.test"])
            let body = Self.ssl(server.cert, server.key, snis: ["m.example.test"], clientCA: clientCA.pem)
            #expect(try await gw.admin(.PUT, "/ssls/m", body).status == 201)
            let route = #"{"uri":"/hello","plugins":{"mocking":{"response_example":"hi"}}}"#
            #expect(try await gw.admin(.PUT, "/routes/hello", route).status == 201)

            let anonymous = try Self.client(fx, ca, names: ["m.example.test"])
            await #expect(throws: (any Error).self) {
                _ = try await Self.get(anonymous, "https://m.example.test:\(port)/hello")
            }
            try await anonymous.shutdown()
            let stranger = try Self.client(
                fx, ca, names: ["m.example.test"], identity: try TestCA().issue(["x"], client: true))
            await #expect(throws: (any Error).self) {
                _ = try await Self.get(stranger, "https://m.example.test:\(port)/hello")
            }
            try await stranger.shutdown()
            let member = try Self.client(
                fx, ca, names: ["m.example.test"], identity: try clientCA.issue(["member"], client: true))
            #expect(try await Self.get(member, "https://m.example.test:\(port)/hello").status == 200)
            try await member.shutdown()

            // Another name without mutual TLS on the same listener: its connections may not
            // carry requests for the protected host.
            let open = try ca.issue(["*.example.test"])
            #expect(
                try await gw.admin(.PUT, "/ssls/o", Self.ssl(open.cert, open.key, snis: ["*.example.test"])).status
                    == 201)
            let sneaky = try Self.client(fx, ca, names: ["o.example.test"], http1Only: true)
            #expect(try await Self.get(sneaky, "https://o.example.test:\(port)/hello").status == 200)
            var request = HTTPClientRequest(url: "https://o.example.test:\(port)/hello")
            request.headers.replaceOrAdd(name: "Host", value: "m.example.test")
            let misdirected = try await sneaky.execute(request, timeout: .seconds(10))
            #expect(misdirected.status.code == 421)
            _ = try await misdirected.body.collect(upTo: 1 << 20)
            try await sneaky.shutdown()
        }
    }
}
