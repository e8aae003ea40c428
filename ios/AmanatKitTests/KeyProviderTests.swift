// SecureEnclaveKeyProvider: wrap format and the typed errors the core relies on.
import AmanatKit
import Security
import XCTest

final class KeyProviderTests: XCTestCase {
    func testWrapThenUnwrapGivesThePlaintextBack() throws {
        let provider = SecureEnclaveKeyProvider(store: SoftwareKeyStore())
        let secret = Data((0 ..< 32).map { UInt8($0) })
        let wrapped = try provider.wrap(plaintext: secret)
        XCTAssertEqual(wrapped.first, 1)
        XCTAssertNotEqual(wrapped.dropFirst().prefix(32), secret.prefix(32))
        XCTAssertEqual(try provider.unwrap(wrapped: wrapped), secret)
        // ECIES uses a fresh ephemeral key each time.
        XCTAssertNotEqual(try provider.wrap(plaintext: secret), wrapped)
    }

    func testTamperedBlobIsRejected() throws {
        let provider = SecureEnclaveKeyProvider(store: SoftwareKeyStore())
        var wrapped = try provider.wrap(plaintext: Data(repeating: 7, count: 32))
        wrapped[wrapped.count - 1] ^= 0x01
        XCTAssertThrowsError(try provider.unwrap(wrapped: wrapped)) { error in
            XCTAssertEqual(error as? KeyProviderFfiError, KeyProviderFfiError.Rejected)
        }
    }

    func testShortOrForeignBlobIsRejected() {
        let provider = SecureEnclaveKeyProvider(store: SoftwareKeyStore())
        for blob in [Data(), Data([1, 2, 3]), Data(repeating: 2, count: 120)] {
            XCTAssertThrowsError(try provider.unwrap(wrapped: blob)) { error in
                XCTAssertEqual(error as? KeyProviderFfiError, KeyProviderFfiError.Rejected)
            }
        }
    }

    func testBlobOfAnotherKeyIsRejected() throws {
        let a = SecureEnclaveKeyProvider(store: SoftwareKeyStore())
        let b = SecureEnclaveKeyProvider(store: SoftwareKeyStore())
        _ = try b.wrap(plaintext: Data([0]))
        let wrapped = try a.wrap(plaintext: Data(repeating: 9, count: 32))
        XCTAssertThrowsError(try b.unwrap(wrapped: wrapped)) { error in
            XCTAssertEqual(error as? KeyProviderFfiError, KeyProviderFfiError.Rejected)
        }
    }

    func testDestroyedKeyIsKeyMissing() throws {
        let provider = SecureEnclaveKeyProvider(store: SoftwareKeyStore())
        let wrapped = try provider.wrap(plaintext: Data(repeating: 1, count: 32))
        try provider.destroyKey()
        try provider.destroyKey() // idempotent
        XCTAssertThrowsError(try provider.unwrap(wrapped: wrapped)) { error in
            XCTAssertEqual(error as? KeyProviderFfiError, KeyProviderFfiError.KeyMissing)
        }
    }

    func testKeychainStatusesMapToTypedErrors() {
        XCTAssertEqual(SecureEnclaveKeyProviderProbe.mapped(errSecItemNotFound), KeyProviderFfiError.KeyMissing)
        XCTAssertEqual(SecureEnclaveKeyProviderProbe.mapped(errSecInteractionNotAllowed),
                       KeyProviderFfiError.Unavailable(reason: "device locked"))
        let store = SoftwareKeyStore()
        store.failWith = errSecInteractionNotAllowed
        let provider = SecureEnclaveKeyProvider(store: store)
        XCTAssertThrowsError(try provider.wrap(plaintext: Data([1]))) { error in
            guard case .some(.Unavailable) = error as? KeyProviderFfiError else {
                return XCTFail("expected Unavailable, got \(error)")
            }
        }
    }

    func testTheCoreSeesAMissingKeyAsKeyMissingNotAWrongPasscode() throws {
        let store = SoftwareKeyStore()
        let provider = SecureEnclaveKeyProvider(store: store)
        let dir = freshDirectory("vault")
        _ = try Vault.create(dir: dir, passcode: passcode, keyProvider: provider, kdfParams: fastKdf)
        try provider.destroyKey()
        let reopened: Vault = try Vault.open(dir: dir, keyProvider: provider)
        XCTAssertThrowsError(try reopened.unlock(passcode: passcode)) { error in
            guard case let AmanatError.KeyProvider(kind, _) = error else {
                return XCTFail("expected a KeyProvider error, got \(error)")
            }
            XCTAssertEqual(kind, KeyProviderErrorKind.keyMissing)
        }
    }
}

/// Reaches the provider's status mapping through a store that fails with a given status.
enum SecureEnclaveKeyProviderProbe {
    static func mapped(_ status: OSStatus) -> KeyProviderFfiError? {
        let store = SoftwareKeyStore()
        store.failWith = status
        let provider = SecureEnclaveKeyProvider(store: store)
        do {
            _ = try provider.unwrap(wrapped: Data(repeating: 1, count: 100))
            return nil
        } catch {
            return error as? KeyProviderFfiError
        }
    }
}
