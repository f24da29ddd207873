import Foundation
import Testing
import TestSupport
import TokentapCore

@testable import Reports
import Recording

/// A `websocket` row in `list`, `show`, `show --json` and the HAR export.
@Suite("WebSocket rows rendered")
struct WebSocketRenderTests {
    func row(framesServer: Int? = 4, open: Bool = false) -> Exchange {
        var e = sample(kind: .websocket, target: "/socket", status: 101)
        e.id = 7
        e.request.headers = [HeaderField(name: "Upgrade", value: "websocket")]
        e.websocket = WebSocketSummary(key: "k", open: open, framesClient: 3, framesServer: framesServer, bytesClient: 120,
                                       bytesServer: 90, closeCode: open ? nil : 1000, closedBy: open ? nil : "client",
                                       countingError: framesServer == nil ? "server → client frames not counted: x" : nil,
                                       messagesDropped: 2,
                                       messages: [WebSocketMessage(time: Date(timeIntervalSince1970: 1_700_000_000.5), type: "send", opcode: 1, length: 5),
                                                  WebSocketMessage(time: Date(timeIntervalSince1970: 1_700_000_001), type: "receive", opcode: 2, length: 9)])
        return e
    }

    @Test func showJSONHasTheDesignsWebSocketObject() throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(Render.showJSON(row()).utf8)) as? [String: Any])
        let ws = try #require(object["websocket"] as? [String: Any])
        #expect(Set(ws.keys) == ["frames_client", "frames_server", "bytes_client", "bytes_server", "close_code", "closed_by"])
        #expect(ws["frames_client"] as? Int == 3)
        #expect(ws["bytes_server"] as? Int == 90)
        #expect(ws["close_code"] as? Int == 1000)
        #expect(ws["closed_by"] as? String == "client")
        let unknown = try #require(try JSONSerialization.jsonObject(with: Data(Render.showJSON(row(framesServer: nil)).utf8)) as? [String: Any])
        #expect((unknown["websocket"] as? [String: Any])?["frames_server"] is NSNull)
        let http = try #require(try JSONSerialization.jsonObject(with: Data(Render.showJSON(sample()).utf8)) as? [String: Any])
        #expect(http["websocket"] == nil)
    }

    @Test func showAndListNameIt() {
        let text = Render.show(row(), raw: false, color: false)
        #expect(text.contains("#7  websocket"))
        #expect(text.contains("client→server 3 frames, 120 bytes"))
        #expect(text.contains("close code 1000, closed by client"))
        #expect(text.contains("2 kept (metadata only), 2 more counted only"))
        let open = Render.show(row(open: true), raw: false, color: false)
        #expect(open.contains("open, or tokentap stopped before it closed"))
        let unknown = Render.show(row(framesServer: nil), raw: false, color: false)
        #expect(unknown.contains("server→client frames unknown"))
        #expect(Render.listTable([row()], color: false).contains("  WS  "))
    }

    @Test func harHasWebSocketMessagesWithoutPayload() throws {
        let entry = HAR.entry(row())
        #expect(entry["_resourceType"] as? String == "websocket")
        let messages = try #require(entry["_webSocketMessages"] as? [[String: Any]])
        #expect(messages.count == 2)
        #expect(messages[0]["type"] as? String == "send")
        #expect(messages[0]["time"] as? Double == 1_700_000_000.5)
        #expect(messages[0]["opcode"] as? Int == 1)
        #expect(messages[0]["data"] as? String == "")
        #expect(messages[1]["_length"] as? Int == 9)
        let tokentap = try #require(entry["_tokentap"] as? [String: Any])
        let ws = try #require(tokentap["websocket"] as? [String: Any])
        #expect(ws["messages_not_listed"] as? Int == 2)
        #expect(HAR.entry(sample())["_webSocketMessages"] == nil)
    }
}
