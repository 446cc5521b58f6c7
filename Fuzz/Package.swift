// swift-tools-version:6.1
import PackageDescription

/// libFuzzer targets for every parser of SwitchboardCore that reads bytes from outside.
///
/// Built only with the fuzzer runtime, by `scripts/fuzz.sh`, which runs them too:
///
///     swift build --package-path Fuzz --scratch-path .build-fuzz -c debug \
///         -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
///
/// (`-Xcc` instruments Yams's C libyaml as well.) Each target is one `LLVMFuzzerTestOneInput`
/// and an `@main` that hands it to libFuzzer's driver (`LLVMFuzzerRunDriver`, declared in
/// CLibFuzzer): SwiftPM links an executable's `main` to the module's own entry point, so
/// libFuzzer's `main` cannot be the one that runs. Debug: Swift's checks stay on, and
/// `@testable import` reaches the in-place readers the targets compare with the JSON tree.
let fuzzTargets = [
    "FuzzJSON",
    "FuzzSSE",
    "FuzzVars",
    "FuzzCostExpr",
    "FuzzConfig",
    "FuzzEventStream",
    "FuzzStreamInspector",
    "FuzzResponseSummary",
]

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "SwitchboardFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "switchboard", path: "..")
    ],
    targets: [
        .target(name: "CLibFuzzer"),
        .target(
            name: "FuzzSupport",
            dependencies: ["CLibFuzzer", .product(name: "SwitchboardCore", package: "switchboard")],
            swiftSettings: swiftSettings
        ),
    ]
        + fuzzTargets.map { name in
            .executableTarget(
                name: name,
                dependencies: ["FuzzSupport", .product(name: "SwitchboardCore", package: "switchboard")],
                swiftSettings: swiftSettings
            )
        }
)
