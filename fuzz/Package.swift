// swift-tools-version: 5.4
// Fuzz targets for the parsers that read outside data (issue 26). Not part of the main package or
// of `.ci/run`: built by `fuzz/run` with `-sanitize=fuzzer,address` (libFuzzer + ASan), following
// swift-protobuf's `FuzzTesting/` package. Each executable is one libFuzzer target.
// Tools version 5.4 on purpose: from 5.5 on, SwiftPM renames an executable's `main` for testable
// executables and links `--defsym main=TARGET_main`, which fails when libFuzzer provides `main`.
import PackageDescription

let common: [Target.Dependency] = [
    "FuzzCommon",
    .product(name: "Redaction", package: "tokentap"),
    .product(name: "Recording", package: "tokentap"),
    .product(name: "OAuthDiagnosis", package: "tokentap"),
    .product(name: "Reports", package: "tokentap"),
]

let targets = ["FuzzForm", "FuzzJSON", "FuzzXML", "FuzzText", "FuzzBasic", "FuzzJWT", "FuzzURL", "FuzzHAR"]

let package = Package(
    name: "TokentapFuzz",
    dependencies: [.package(name: "tokentap", path: "..")],
    targets: [
        .target(name: "FuzzCommon", dependencies: [
            .product(name: "Redaction", package: "tokentap"),
            .product(name: "OAuthDiagnosis", package: "tokentap"),
        ]),
    ] + targets.map { .executableTarget(name: $0, dependencies: common) }
)
