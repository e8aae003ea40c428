// The platform key provider: the vault's sealed data key is wrapped again with a P-256 key that
// never leaves the phone's Secure Enclave (DESIGN.md "Key slots"), ECIES with AES-GCM.
import Foundation
import Security

/// Where the wrapping key pair lives. On a phone: `SecureEnclaveKeyStore`; on the Simulator (no
/// Secure Enclave) the same class keeps a Keychain-only key; in unit tests an in-memory software key
/// stands in, so `SecureEnclaveKeyProvider`'s own logic — wrap format, error mapping — is exercised
/// the same way.
public protocol WrappingKeyStore: AnyObject {
    /// The private key, or nil when there is none (never created, or deleted).
    func find() throws -> SecKey?

    /// Creates the key pair on first use and returns its private key.
    func create() throws -> SecKey

    /// Deletes the key; succeeds when it is already gone.
    func delete() throws
}

/// Why a `WrappingKeyStore` failed: the Keychain status, never platform text.
public struct KeychainFailure: Error, Equatable {
    /// The `OSStatus` the Keychain returned.
    public let status: OSStatus

    public init(status: OSStatus) {
        self.status = status
    }
}

/// The generated `KeyProvider` over a `WrappingKeyStore`: ECIES (`SecKeyCreateEncryptedData` with
/// `.eciesEncryptionCofactorVariableIVX963SHA256AESGCM`) to the key pair's public key; output
/// `version(1) ‖ ECIES blob` (ephemeral public key ‖ ciphertext ‖ tag).
///
/// Every failure becomes one of the three typed provider errors, as on Android, so the core can
/// tell "the key is gone" (offer the wipe) from "the Keychain is busy" (retry): a missing key is
/// `KeyMissing`, a blob that does not decrypt is `Rejected`, anything else `Unavailable`. The
/// platform's messages are not passed on (they could contain anything).
public final class SecureEnclaveKeyProvider: KeyProvider, @unchecked Sendable {
    private let store: WrappingKeyStore
    private let lock = NSLock()

    /// Format byte of this provider's output.
    static let format: UInt8 = 1
    /// Shortest blob that can be ours: format, an uncompressed P-256 point (65), a GCM tag (16).
    static let minimumLength = 1 + 65 + 16
    static let algorithm: SecKeyAlgorithm = .eciesEncryptionCofactorVariableIVX963SHA256AESGCM

    public init(store: WrappingKeyStore) {
        self.store = store
    }

    public func wrap(plaintext: Data) throws -> Data {
        lock.lock()
        defer { lock.unlock() }
        let privateKey: SecKey
        do {
            privateKey = try store.find() ?? store.create()
        } catch {
            throw Self.mapped(error)
        }
        guard let publicKey = SecKeyCopyPublicKey(privateKey),
              SecKeyIsAlgorithmSupported(publicKey, .encrypt, Self.algorithm)
        else {
            throw KeyProviderFfiError.Unavailable(reason: "no usable public key")
        }
        var error: Unmanaged<CFError>?
        guard let sealed = SecKeyCreateEncryptedData(publicKey, Self.algorithm, plaintext as CFData, &error) else {
            _ = error?.takeRetainedValue()
            throw KeyProviderFfiError.Unavailable(reason: "encryption failed")
        }
        var out = Data([Self.format])
        out.append(sealed as Data)
        return out
    }

    public func unwrap(wrapped: Data) throws -> Data {
        lock.lock()
        defer { lock.unlock() }
        guard wrapped.count >= Self.minimumLength, wrapped.first == Self.format else {
            throw KeyProviderFfiError.Rejected
        }
        let key: SecKey?
        do {
            key = try store.find()
        } catch {
            throw Self.mapped(error)
        }
        guard let privateKey = key else {
            throw KeyProviderFfiError.KeyMissing
        }
        var error: Unmanaged<CFError>?
        let blob = wrapped.dropFirst()
        guard let plain = SecKeyCreateDecryptedData(privateKey, Self.algorithm, Data(blob) as CFData, &error) else {
            let code = error.map { CFErrorGetCode($0.takeRetainedValue()) } ?? 0
            throw Self.decryptionFailure(code: code)
        }
        return plain as Data
    }

    public func destroyKey() throws {
        lock.lock()
        defer { lock.unlock() }
        do {
            try store.delete()
        } catch {
            throw Self.mapped(error)
        }
    }

    /// A Keychain failure as the core's typed provider error.
    static func mapped(_ error: Error) -> KeyProviderFfiError {
        if let known = error as? KeyProviderFfiError {
            return known
        }
        if let failure = error as? KeychainFailure {
            switch failure.status {
            case errSecItemNotFound:
                return .KeyMissing
            case errSecInteractionNotAllowed:
                // The phone is locked: the key is unusable until it is unlocked again.
                return .Unavailable(reason: "device locked")
            default:
                return .Unavailable(reason: "keychain status \(failure.status)")
            }
        }
        return .Unavailable(reason: "keychain error")
    }

    /// A failed decryption: the phone being locked is `Unavailable` (retry later); anything else
    /// means the blob does not belong to this key (tampered, or wrapped by another key) — `Rejected`.
    static func decryptionFailure(code: CFIndex) -> KeyProviderFfiError {
        switch OSStatus(truncatingIfNeeded: code) {
        case errSecInteractionNotAllowed, errSecNotAvailable:
            return .Unavailable(reason: "device locked")
        case errSecItemNotFound:
            return .KeyMissing
        default:
            return .Rejected
        }
    }
}

/// The wrapping key pair in the Keychain. On a phone the private key is made inside the Secure
/// Enclave (P-256, `kSecAttrTokenIDSecureEnclave`): it cannot be exported, and it is usable only
/// while the phone is unlocked (`kSecAttrAccessibleWhenUnlockedThisDeviceOnly`). `ThisDeviceOnly`
/// keeps it out of backups and iCloud Keychain; `kSecAttrSynchronizable` is false on every query.
///
/// On the Simulator, which has no Secure Enclave, the same attributes make an ordinary P-256 key
/// in the Keychain (`secureEnclave: false`) — weaker, for development only.
public final class SecureEnclaveKeyStore: WrappingKeyStore {
    /// The Keychain tag of the vault's wrapping key.
    public static let defaultTag = "org.amanat.vault.wrapping-key"

    private let tag: Data
    /// Whether the key is (to be) made in the Secure Enclave.
    public let secureEnclave: Bool

    public init(tag: String = SecureEnclaveKeyStore.defaultTag, secureEnclave: Bool = SecureEnclaveKeyStore.hasSecureEnclave) {
        self.tag = Data(tag.utf8)
        self.secureEnclave = secureEnclave
    }

    /// False on the Simulator (no Secure Enclave), true on devices.
    public static var hasSecureEnclave: Bool {
        #if targetEnvironment(simulator)
        return false
        #else
        return true
        #endif
    }

    private func query() -> [String: Any] {
        var q: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: tag,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeyClass as String: kSecAttrKeyClassPrivate,
            kSecAttrSynchronizable as String: kCFBooleanFalse as Any,
        ]
        if secureEnclave {
            q[kSecAttrTokenID as String] = kSecAttrTokenIDSecureEnclave
        }
        return q
    }

    public func find() throws -> SecKey? {
        var q = query()
        q[kSecReturnRef as String] = true
        q[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            guard let found = item, CFGetTypeID(found) == SecKeyGetTypeID() else {
                throw KeychainFailure(status: errSecInternalError)
            }
            return (found as! SecKey)
        case errSecItemNotFound:
            return nil
        default:
            throw KeychainFailure(status: status)
        }
    }

    public func create() throws -> SecKey {
        var error: Unmanaged<CFError>?
        let flags: SecAccessControlCreateFlags = secureEnclave ? [.privateKeyUsage] : []
        guard let access = SecAccessControlCreateWithFlags(
            kCFAllocatorDefault, kSecAttrAccessibleWhenUnlockedThisDeviceOnly, flags, &error
        ) else {
            _ = error?.takeRetainedValue()
            throw KeychainFailure(status: errSecParam)
        }
        var attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecPrivateKeyAttrs as String: [
                kSecAttrIsPermanent as String: true,
                kSecAttrApplicationTag as String: tag,
                kSecAttrAccessControl as String: access,
                kSecAttrSynchronizable as String: kCFBooleanFalse as Any,
            ] as [String: Any],
        ]
        if secureEnclave {
            attributes[kSecAttrTokenID as String] = kSecAttrTokenIDSecureEnclave
        }
        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            let code = error.map { CFErrorGetCode($0.takeRetainedValue()) } ?? Int(errSecInternalError)
            throw KeychainFailure(status: OSStatus(truncatingIfNeeded: code))
        }
        return key
    }

    public func delete() throws {
        let status = SecItemDelete(query() as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw KeychainFailure(status: status)
        }
    }
}
