import Crypto
import Foundation
import SwiftASN1
import X509

extension CertificateAuthority {
    /// The base64 SHA-256 of a certificate's SubjectPublicKeyInfo (DER), as Chromium's
    /// `--ignore-certificate-errors-spki-list` and HPKP pins take it (the same value as
    /// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`).
    ///
    /// - Parameter pem: a PEM certificate (the first one of the text is used).
    /// - Throws: when `pem` holds no certificate that parses.
    public static func spkiSHA256Base64(pem: String) throws -> String {
        let certificate = try Certificate(pemEncoded: pem)
        // The whole SubjectPublicKeyInfo (algorithm + key), not `subjectPublicKeyInfoBytes`, which
        // is only the key's bit string.
        var serializer = DER.Serializer()
        try serializer.serialize(certificate.publicKey)
        return Data(SHA256.hash(data: serializer.serializedBytes)).base64EncodedString()
    }
}
