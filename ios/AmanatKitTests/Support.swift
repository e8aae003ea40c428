// Test doubles and helpers for AmanatKit's XCTest suite (run on a Mac: ios/README.md).
import AmanatKit
import Foundation
import Security
import XCTest

/// A cheap Argon2id cost for tests (the production cost takes a noticeable fraction of a second).
let fastKdf = KdfParams(mKib: 256, t: 1, p: 1)
let passcode = "correct horse 1"
let duressPasscode = "duress horse 2"

/// The wrapping key as an in-memory P-256 software key: the same SecKey API and ECIES algorithm as
/// the Secure Enclave store, without the Keychain, so the provider's format and error mapping are
/// tested the same way on every Mac and Simulator.
final class SoftwareKeyStore: WrappingKeyStore {
    private(set) var key: SecKey?
    var failWith: OSStatus?

    func find() throws -> SecKey? {
        if let status = failWith {
            throw KeychainFailure(status: status)
        }
        return key
    }

    func create() throws -> SecKey {
        let attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
        ]
        var error: Unmanaged<CFError>?
        guard let made = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            throw KeychainFailure(status: errSecInternalError)
        }
        key = made
        return made
    }

    func delete() throws {
        key = nil
    }
}

/// Audio that hands out known bytes, so what reaches the vault can be compared.
final class FakeAudioSource: AudioSource {
    let mediaType = "audio/wav"
    let chunks: [Data]
    private(set) var stopped = false

    init(chunks: [Data]) {
        self.chunks = chunks
    }

    func start(sink: @escaping (Data) -> Void) throws {
        for chunk in chunks {
            sink(chunk)
        }
    }

    func stop() {
        stopped = true
    }
}

/// A fresh folder under the test's temporary directory.
func freshDirectory(_ name: String) -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("amanat-tests-\(UUID().uuidString)", isDirectory: true)
        .appendingPathComponent(name, isDirectory: true)
    try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    return url.path
}
