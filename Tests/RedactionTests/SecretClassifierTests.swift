import Foundation
import Redaction
import Testing
import TokentapCore

/// The one classifier (issue 14): names by their words. The table is the README's ("Secrets").
@Suite struct SecretClassifierTests {
    /// (name, expected role or nil). At least 40 names, every rule and shape.
    static let table: [(String, String?)] = [
        // OAuth parameters (RFC 6749, 7636, 8628, 8693)
        ("code", "code"), ("client_secret", "client_secret"), ("code_verifier", "code_verifier"),
        ("access_token", "access_token"), ("refresh_token", "refresh_token"), ("id_token", "id_token"),
        ("device_code", "device_code"), ("user_code", "user_code"), ("authorization_code", "authorization_code"),
        ("auth_code", "auth_code"), ("client_assertion", "client_assertion"), ("assertion", "assertion"),
        ("subject_token", "subject_token"), ("password", "password"), ("token", "token"),
        // camelCase, kebab-case, dotted, upper, glued
        ("clientSecret", "client_secret"), ("client-secret", "client_secret"), ("client.secret", "client_secret"),
        ("CLIENT_SECRET", "client_secret"), ("ACCESSTOKEN", "access_token"), ("refreshToken", "refresh_token"),
        ("sessionToken", "session_token"), ("session_token", "session_token"), ("webhook_secret", "webhook_secret"),
        ("private_key", "private_key"), ("privateKey", "private_key"), ("api_key", "api_key"), ("apiKey", "api_key"),
        ("apikey", "api_key"), ("x-api-key", "x_api_key"), ("secret_key", "secret_key"), ("signing.key", "signing_key"),
        ("key", "key"), ("passwd", "passwd"), ("pwd", "pwd"), ("passphrase", "passphrase"), ("otp", "otp"),
        ("signature", "signature"), ("sig", "sig"), ("session", "session"), ("session_id", "session_id"),
        ("sessionId", "session_id"), ("credentials", "credentials"), ("cookie", "cookie"),
        ("authorization", "authorization"), ("X-Auth-Token", "x_auth_token"), ("mfa_otp", "mfa_otp"),
        // brackets, counters, plurals, glued session ids (redaction review)
        ("data[client_secret]", "data_client_secret"), ("client_secret[]", "client_secret"),
        ("new_password2", "new_password2"), ("token2", "token2"), ("api_keys", "api_keys"),
        ("jsessionid", "jsessionid"), ("PHPSESSID", "phpsessid"), ("keys", nil), ("public_keys", nil), ("client_id2", nil),
        ("verification_code", "verification_code"), ("mfa_code", "mfa_code"), ("oob_code", "oob_code"),
        ("country_code", nil), ("currency_code", nil),
        // Not secrets: the allowlist
        ("token_type", nil), ("tokenType", nil), ("token_type_hint", nil), ("expires_in", nil), ("grant_type", nil),
        ("scope", nil), ("state", nil), ("client_id", nil), ("clientId", nil), ("redirect_uri", nil),
        ("redirectUri", nil), ("code_challenge", nil), ("code_challenge_method", nil), ("response_type", nil),
        ("kid", nil), ("key_id", nil), ("X-OAuth-Scopes", nil),
        // Not secrets: a metadata last word
        ("refresh_token_expires_in", nil), ("token_endpoint", nil), ("access_token_url", nil),
        ("passwordPolicy", nil), ("token_lifetime", nil), ("secret_name", nil), ("cookie_count", nil),
        ("password_length", nil), ("expires_at", nil), ("issued_at", nil), ("revocation_endpoint", nil),
        // Not secrets: `code` and `key` outside the OAuth and key-material names
        ("status_code", nil), ("error_code", nil), ("errorCode", nil), ("statusCode", nil), ("country_code", nil),
        ("zip_code", nil), ("public_key", nil), ("idempotency_key", nil), ("cache_key", nil), ("keyboard", nil),
        // Not secrets: ordinary names
        ("team_id", nil), ("user_id", nil), ("message", nil), ("error", nil), ("error_description", nil),
        ("error_uri", nil), ("type", nil), ("nonce", nil),
    ]

    @Test("the README's table of names", arguments: table)
    func classifies(name: String, role: String?) {
        #expect(SecretClassifier.role(forName: name) == role, "\(name)")
    }

    @Test func tableIsLargeEnough() {
        #expect(Self.table.count >= 40)
        #expect(Self.table.filter { $0.1 == nil }.count >= 20)
    }

    @Test("one name in every shape gets one role", arguments: [
        ["client_secret", "clientSecret", "client-secret", "client.secret", "CLIENT_SECRET", "ClientSecret", "CLIENT-SECRET"],
        ["private_key", "privateKey", "private-key", "private.key", "PRIVATE_KEY", "PrivateKey"],
        ["device_code", "deviceCode", "device-code", "device.code", "DEVICE_CODE"],
    ])
    func shapes(names: [String]) {
        let roles = Set(names.map { SecretClassifier.role(forName: $0) })
        #expect(roles.count == 1, "\(names): \(roles)")
        #expect(roles.first! != nil)
    }

    @Test func words() {
        #expect(SecretClassifier.words("clientSecret") == ["client", "secret"])
        #expect(SecretClassifier.words("XMLHttpToken") == ["xml", "http", "token"])
        #expect(SecretClassifier.words("x-api-key") == ["x", "api", "key"])
        #expect(SecretClassifier.words("a.b_c-d") == ["a", "b", "c", "d"])
        #expect(SecretClassifier.words("ns:Password") == ["ns", "password"])
        #expect(SecretClassifier.words("") == [])
    }

    @Test("headers fail closed, allowlisted ones stay readable")
    func headers() {
        for name in ["X-Api-Key", "X-Auth-Token", "X-Session-Id", "X-Custom-Token", "X-Webhook-Secret", "X-Signature",
                     "X-Password", "X-Credential", "X-Otp", "X-Amz-Security-Token", "Sec-WebSocket-Key", "X-Authy"] {
            #expect(SecretClassifier.isSecretHeader(name), "\(name)")
        }
        for name in ["X-OAuth-Scopes", "X-Accepted-OAuth-Scopes", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                     "X-RateLimit-Reset", "RateLimit-Policy", "Content-Type", "WWW-Authenticate", "Access-Control-Allow-Headers",
                     "X-Tokentap-Note", "Accept", "X-Request-Id", "Date", "Keep-Alive"] {
            #expect(!SecretClassifier.isSecretHeader(name), "\(name)")
        }
    }

    @Test func errorReference() {
        #expect(SecretClassifier.isErrorReference("error_uri"))
        #expect(SecretClassifier.isErrorReference("errorUri"))
        #expect(!SecretClassifier.isErrorReference("redirect_uri"))
    }
}
