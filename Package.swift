// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ftbackup",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ftbackup", targets: ["ftbackup"]),
        .library(name: "FTBackupKit", targets: ["FTBackupKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries, linked from the system (apt: libpq-dev, libzstd-dev, zlib1g-dev, libcurl4-openssl-dev).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libcurl (OpenSSL flavour) for S3-compatible repositories (apt: libcurl4-openssl-dev).
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // All logic lives here, one folder per concern.
        .target(
            name: "FTBackupKit",
            dependencies: [
                "CLibPQ", "CZstd", "CZlib", "CCurl",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [
                .embedInCode("Dev/SQL/fasttrack_schema.sql"),
                .embedInCode("Dev/SQL/fasttrack_data.sql"),
            ]
        ),
        // The command line: only a swift-argument-parser front over FTBackupKit.
        .executableTarget(
            name: "ftbackup",
            dependencies: [
                "FTBackupKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Unit tests: no server needed.
        .testTarget(name: "FTBackupKitTests", dependencies: ["FTBackupKit"]),
        // Integration tests: against a real PostgreSQL server (FTBACKUP_TEST_DSN, see `make test`).
        // CZlib: the compliance report test decodes the PNG headless Chromium renders of the HTML report.
        .testTarget(name: "FTBackupIntegrationTests", dependencies: ["FTBackupKit", "CZlib", .product(name: "Logging", package: "swift-log")],
                    resources: [.embedInCode("Zoo/zoo.sql")]),
    ]
)
