import CertificateAuthority
import Foundation
import Testing

/// WebSockets through the relay (issue 19): a Python `websockets` echo server (TLS with the test
/// upstream CA) behind `--map-remote`, `websockets` clients through the proxy (CONNECT, trusting
/// tokentap's CA), and the `websocket` row they leave.
@Suite("WebSocket end to end", .serialized)
final class WebSocketEndToEndTests {
    let fixture: UpstreamFixture
    let script = packageRoot.appendingPathComponent("Tests/EndToEndTests/Python/ws_echo.py").path

    init() throws { fixture = try UpstreamFixture() }

    /// The echo server, serving a leaf for api.miro.com from the test upstream CA.
    func startEchoServer() throws -> ServerProcess {
        let leaf = try fixture.upstream.authority.leaf(for: "api.miro.com")
        let cert = fixture.dir.appendingPathComponent("ws-leaf.pem")
        let key = fixture.dir.appendingPathComponent("ws-leaf-key.pem")
        let base64 = Data(leaf.derBytes).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        try "-----BEGIN CERTIFICATE-----\n\(base64)\n-----END CERTIFICATE-----\n".write(to: cert, atomically: true, encoding: .utf8)
        try fixture.upstream.authority.leafPrivateKeyPEM.write(to: key, atomically: true, encoding: .utf8)
        return try ServerProcess([script, "server", cert.path, key.path], executable: try SandboxRig.pythonInterpreter())
    }

    func client(_ mode: String, _ proxy: ServerProcess, path: String = "/echo") throws -> [String: Any] {
        let result = try runCommand(try SandboxRig.pythonInterpreter(),
                                    [script, mode, proxy.proxyURL, fixture.proxyCA, "wss://api.miro.com\(path)"], timeout: 300)
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.stderr)")
    }

    func webSocketRows() throws -> [[String: Any]] {
        let list = try tokentap(["list", "--home", fixture.home, "--session", "e2e", "--all", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
        return rows.filter { $0["kind"] as? String == "websocket" }
    }

    func show(_ id: Int) throws -> [String: Any] {
        let show = try tokentap(["show", "--home", fixture.home, "--json", String(id)])
        return try #require(try JSONSerialization.jsonObject(with: show.stdout) as? [String: Any])
    }

    @Test("1,000 messages (text and binary, 1 B to 1 MiB) echoed intact and in order; one websocket row with the counts and close 1000; list, show, HAR and the live line show it")
    func echo() throws {
        let server = try startEchoServer()
        defer { server.stop(signal: SIGKILL) }
        let proxy = try fixture.startProxy(mapTo: server.port)
        let result = try client("echo", proxy)
        #expect(result["ok"] as? Bool == true, "\(result)")
        #expect(result["messages"] as? Int == 1000)
        #expect(result["close_code"] as? Int == 1000)
        let sent = try #require(result["bytes"] as? Int)
        // The live line comes at close: WS, and the close code at the end.
        #expect(eventually(10) { proxy.lines.withLockedValue { $0.contains { $0.contains(" WS api.miro.com/echo 101 ") && $0.hasSuffix(" close 1000") } } },
                "\(proxy.lines.withLockedValue { $0 })")
        #expect(proxy.stop() == 0)

        let rows = try webSocketRows()
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row["status"] as? Int == 101)
        #expect(row["error"] is NSNull || row["error"] == nil)
        let id = try #require(row["id"] as? Int)
        let shown = try show(id)
        let ws = try #require(shown["websocket"] as? [String: Any], "\(shown)")
        // 1,000 messages and the close frame each way (websockets sends each message as one frame).
        #expect(ws["frames_client"] as? Int == 1001)
        #expect(ws["frames_server"] as? Int == 1001)
        #expect(ws["close_code"] as? Int == 1000)
        #expect(ws["closed_by"] as? String == "client")
        // Every byte each way after the 101: the frames as the client computed them (no compression).
        #expect(ws["bytes_client"] as? Int == result["wire_client"] as? Int)
        #expect(ws["bytes_server"] as? Int == result["wire_server"] as? Int)
        #expect((ws["bytes_client"] as? Int ?? 0) > sent)
        let request = try #require(shown["request"] as? [String: Any])
        let headers = try #require(request["headers"] as? [[String: Any]])
        #expect(headers.contains { ($0["name"] as? String)?.lowercased() == "upgrade" && ($0["value"] as? String)?.lowercased() == "websocket" })

        let text = try tokentap(["show", "--home", fixture.home, String(id)]).text
        #expect(text.contains("client→server 1001 frames"))
        #expect(text.contains("close code 1000, closed by client"))
        let list = try tokentap(["list", "--home", fixture.home, "--session", "e2e", "--all"]).text
        #expect(list.contains("WS"))

        let har = try tokentap(["export", "--format", "har", "--session", "e2e", "--all", "--home", fixture.home])
        let document = try #require(try JSONSerialization.jsonObject(with: har.stdout) as? [String: Any], "\(har.stderr)")
        let entries = try #require((document["log"] as? [String: Any])?["entries"] as? [[String: Any]])
        let entry = try #require(entries.first { $0["_resourceType"] as? String == "websocket" })
        let messages = try #require(entry["_webSocketMessages"] as? [[String: Any]])
        #expect(messages.count == 1000, "the first 1,000 messages are listed")
        let firstMessage: [String: Any] = messages[0], secondMessage: [String: Any] = messages[1]
        #expect(firstMessage["type"] as? String == "send")
        #expect(firstMessage["opcode"] as? Int == 1)
        #expect(secondMessage["type"] as? String == "receive")
        #expect(messages.allSatisfy { ($0["data"] as? String) == "" }, "no payload is kept")
    }

    @Test("a client that drops the TCP connection mid-message leaves a row with the error; the proxy serves the next client")
    func dropMidMessage() throws {
        let server = try startEchoServer()
        defer { server.stop(signal: SIGKILL) }
        let proxy = try fixture.startProxy(mapTo: server.port)
        let dropped = try client("drop", proxy)
        #expect(dropped["ok"] as? Bool == true)
        let next = try client("few", proxy)
        #expect(next["ok"] as? Bool == true, "\(next)")
        #expect(next["close_code"] as? Int == 1000)
        #expect(eventually(10) { proxy.lines.withLockedValue { $0.filter { $0.contains(" WS ") }.count == 2 } },
                "\(proxy.lines.withLockedValue { $0 })")
        #expect(proxy.stop() == 0)

        let rows = try webSocketRows()
        #expect(rows.count == 2)
        let first = try #require(rows.first)
        let error = try #require(first["error"] as? String)
        #expect(error.contains("client closed the connection mid-message"), "\(error)")
        let firstID = try #require(first["id"] as? Int)
        let ws = try #require(try show(firstID)["websocket"] as? [String: Any])
        #expect(ws["frames_client"] as? Int == 1)
        #expect(ws["frames_server"] as? Int == 1)
        #expect(ws["close_code"] is NSNull)
        #expect(ws["closed_by"] as? String == "client")
        let second = try #require(rows.last)
        #expect(second["error"] is NSNull || second["error"] == nil)
        let secondID = try #require(second["id"] as? Int)
        let ws2 = try #require(try show(secondID)["websocket"] as? [String: Any])
        #expect(ws2["frames_client"] as? Int == 4)
        #expect(ws2["close_code"] as? Int == 1000)
    }
}
