// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "tokentap",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tokentap", targets: ["tokentap"]),
        .executable(name: "tokentap-loadgen", targets: ["tokentap-loadgen"]),
        // For fuzz/ (issue 26): the parsers that read outside data, as libraries.
        .library(name: "Redaction", targets: ["Redaction"]),
        .library(name: "Recording", targets: ["Recording"]),
        .library(name: "OAuthDiagnosis", targets: ["OAuthDiagnosis"]),
        .library(name: "Reports", targets: ["Reports"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        // Value types shared by every module: the captured exchange, findings, headers.
        .target(name: "TokentapCore"),
        .testTarget(name: "TokentapCoreTests", dependencies: ["TokentapCore"]),
        .target(
            name: "CertificateAuthority",
            dependencies: [
                "TokentapCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .target(
            name: "Redaction",
            dependencies: [
                "TokentapCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Recording",
            dependencies: [
                "TokentapCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "OAuthDiagnosis",
            dependencies: ["TokentapCore", "Redaction", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Every output format: list/show text, the JSON documents (Codable), and the exports
        // (HAR, Markdown, curl, HTML) behind the `Exporter` protocol.
        .target(
            name: "Reports",
            dependencies: ["TokentapCore", "Redaction", "Recording", "OAuthDiagnosis"]
        ),
        // The capture pipeline: decode → diagnose (raw values) → redact → store → live line.
        .target(
            name: "Capture",
            dependencies: [
                "TokentapCore", "Recording", "Redaction", "OAuthDiagnosis", "ProxyServer",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "Recording", "Redaction", "OAuthDiagnosis", "TokentapCore",
                                                         .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "ReportsTests",
            dependencies: ["Reports", "Recording", "OAuthDiagnosis", "Redaction", "TokentapCore", "TestSupport"],
            exclude: ["Golden"]
        ),
        .target(
            name: "ProxyServer",
            dependencies: [
                "TokentapCore",
                "CertificateAuthority",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Sandbox",
            dependencies: [
                "CertificateAuthority",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `tokentap run`: the command's environment (proxy, CA bundle, wgetrc, Python hook) and
        // the child process in tokentap's own process group.
        .target(
            name: "RunSupport",
            dependencies: ["TokentapCore", "ProxyServer", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(name: "RunSupportTests", dependencies: ["RunSupport", "ProxyServer", "TokentapCore"]),
        .executableTarget(
            name: "tokentap",
            dependencies: [
                "TokentapCore", "CertificateAuthority", "ProxyServer", "Recording", "Redaction",
                "OAuthDiagnosis", "Sandbox", "RunSupport", "Reports", "Capture",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // bench/run's HTTPS load generator (CONNECT through a proxy, TLS with a given CA, keep-alive).
        .executableTarget(
            name: "tokentap-loadgen",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "bench/LoadGen"
        ),
        .testTarget(
            name: "CertificateAuthorityTests",
            dependencies: [
                "CertificateAuthority", "TokentapCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "SandboxTests",
            dependencies: [
                "Sandbox", "CertificateAuthority",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "RedactionTests",
            dependencies: ["Redaction", "TokentapCore"]
        ),
        // Sample exchanges the RecordingTests and ReportsTests share.
        .target(name: "TestSupport", dependencies: ["TokentapCore"], path: "Tests/TestSupport"),
        .testTarget(
            name: "RecordingTests",
            dependencies: ["Recording", "Reports", "TokentapCore", "TestSupport"]
        ),
        .testTarget(
            name: "OAuthDiagnosisTests",
            dependencies: ["OAuthDiagnosis", "TokentapCore", "Redaction"]
        ),
        .testTarget(
            name: "ProxyServerTests",
            dependencies: [
                "ProxyServer", "CertificateAuthority", "TokentapCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "CertificateAuthority", "TokentapCore",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Python", "Java", "Node", "Go"]
        ),
    ]
)
