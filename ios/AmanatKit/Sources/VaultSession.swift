// The one vault of the app, opened lazily, shared by every screen.
import Foundation

/// The vault in `dir` as the screens see it: created or opened once, unlocked by the lock screen,
/// locked on background, wiped by the panic action. It holds no rule of its own; every decision
/// (backoff, duress, what a wipe destroys) is the core's. Every method blocks: call them on
/// `CoreQueue`, never on the main thread (Argon2id takes a noticeable fraction of a second).
public final class VaultSession: @unchecked Sendable {
    /// Folder of the vault.
    public let dir: String
    private let keyProvider: KeyProvider
    private let kdfParams: KdfParams
    private let lock = NSLock()
    private var vault: Vault?

    public init(dir: String, keyProvider: KeyProvider, kdfParams: KdfParams) {
        self.dir = dir
        self.keyProvider = keyProvider
        self.kdfParams = kdfParams
    }

    /// Whether a vault exists, i.e. the lock screen asks for the passcode rather than a new one.
    public func exists() -> Bool {
        vaultExists(dir: dir)
    }

    /// Creates the vault with `passcode`; it is unlocked afterwards.
    public func create(passcode: String) throws {
        lock.lock()
        defer { lock.unlock() }
        vault = nil
        try FileProtection.prepareVaultDirectory(dir)
        let created: Vault = try Vault.create(dir: dir, passcode: passcode, keyProvider: keyProvider, kdfParams: kdfParams)
        vault = created
        FileProtection.protectVaultFiles(dir)
    }

    private func opened() throws -> Vault {
        lock.lock()
        defer { lock.unlock() }
        if let existing = vault {
            return existing
        }
        let fresh: Vault = try Vault.open(dir: dir, keyProvider: keyProvider)
        vault = fresh
        return fresh
    }

    /// Tries `passcode`; a duress passcode succeeds the same way (the core wipes behind it).
    public func unlock(passcode: String) throws {
        let v: Vault = try opened()
        try v.unlock(passcode: passcode)
        FileProtection.protectVaultFiles(dir)
    }

    /// Changes the passcode (the current one is checked by the core).
    public func changePasscode(current: String, newPasscode: String) throws {
        let v: Vault = try unlocked()
        try v.changePasscode(current: current, newPasscode: newPasscode)
    }

    /// Sets the duress passcode (the core refuses one equal to the real passcode).
    public func setDuressPasscode(current: String, duress: String) throws {
        let v: Vault = try unlocked()
        try v.setDuressPasscode(current: current, duress: duress)
    }

    /// Failed attempts and the earliest time of the next one, from the core's persisted counter.
    public func status() throws -> UnlockStatus {
        let v: Vault = try opened()
        return v.unlockStatus()
    }

    /// Whether the vault is open for use right now.
    public func isUnlocked() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return vault?.isUnlocked() ?? false
    }

    /// The unlocked vault, or `AmanatError.Locked` (another screen or the auto-lock locked it).
    public func unlocked() throws -> Vault {
        lock.lock()
        defer { lock.unlock() }
        guard let v: Vault = vault, v.isUnlocked() else {
            throw AmanatError.Locked(detail: "locked")
        }
        return v
    }

    /// Locks: the core forgets the keys.
    public func lockNow() {
        lock.lock()
        let v: Vault? = vault
        lock.unlock()
        v?.lock()
    }

    /// Panic wipe: the platform key and the key slots first, so nothing can be decrypted any more.
    public func panicWipe() throws {
        lock.lock()
        defer { lock.unlock() }
        if let v: Vault = vault {
            try v.panicWipe()
        } else {
            try wipeVault(dir: dir, keyProvider: keyProvider)
        }
        vault = nil
    }

    /// Wipes a vault that cannot be opened (its platform key is gone).
    public func wipeUnopenable() throws {
        lock.lock()
        defer { lock.unlock() }
        vault = nil
        try wipeVault(dir: dir, keyProvider: keyProvider)
    }

    /// Drops the native vault object (Swift frees it on deinit).
    public func close() {
        lock.lock()
        vault = nil
        lock.unlock()
    }
}

/// Runs blocking core calls off the main thread, one at a time, and hands the result back on the
/// main thread.
public final class CoreQueue: @unchecked Sendable {
    /// The app's queue for core calls.
    public static let shared = CoreQueue(label: "org.amanat.core")

    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    /// Runs `work` on the queue, then `done` on the main thread with its result.
    public func run<T>(_ work: @escaping () throws -> T, then done: @escaping (Result<T, Error>) -> Void) {
        queue.async {
            let result = Result<T, Error>(catching: work)
            DispatchQueue.main.async {
                done(result)
            }
        }
    }
}
