import Testing
import TokentapCore

/// One function makes invisible characters visible for `show`, the HTML report and findings.
@Suite("Visible text")
struct VisibleTextTests {
    @Test func lineBreaksTabsAndControlsAreShown() {
        #expect(visibleText("authorization_code\r\n") == #"authorization_code\r\n"#)
        #expect(visibleText("a\tb\u{0B}c\u{7F}") == #"a\tb\u{B}c\u{7F}"#)
    }

    @Test func formatCharactersAreShownButOtherUnicodeIsKept() {
        // A zero-width space and a BOM pasted into a client_id: invisible in a terminal.
        #expect(visibleText("id\u{200B}\u{FEFF}") == #"id\u{200B}\u{FEFF}"#)
        #expect(visibleText("Zürich ✓") == "Zürich ✓")
    }

    @Test func quotedEscapesQuotesAndBackslashesOnlyWhenQuoted() {
        #expect(visibleText(#"a"b\c"#, quoted: true) == #""a\"b\\c""#)
        #expect(visibleText(#"a"b\c"#) == #"a"b\c"#)
        #expect(visibleText("", quoted: true) == #""""#)
    }
}
