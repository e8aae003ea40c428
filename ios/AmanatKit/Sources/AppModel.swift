// The app's state that is not a view: the vault session, the sync runner and scheduler, the lock
// state the screens follow, and what happens when the app leaves the screen.
import Combine
import Foundation

/// The platform pieces the shell uses, in one place so tests can swap them: the key provider
/// (Secure Enclave on a phone, a software key in unit tests), the KDF cost, where audio comes from,
/// the HTTP stack for sync, and the worker id written into consent records.
public struct ShellConfig {
    public var keyProvider: KeyProvider
    public var kdfParams: KdfParams
    public var vaultDir: String
    public var audioSource: () -> AudioSource
    public var transport: () -> Transport
    /// The field worker's id written into consent records (a placeholder until enrollment).
    public var workerId: String

    public init(keyProvider: KeyProvider, kdfParams: KdfParams, vaultDir: String,
                audioSource: @escaping () -> AudioSource, transport: @escaping () -> Transport, workerId: String) {
        self.keyProvider = keyProvider
        self.kdfParams = kdfParams
        self.vaultDir = vaultDir
        self.audioSource = audioSource
        self.transport = transport
        self.workerId = workerId
    }

    /// The configuration of the real app.
    public static func device() -> ShellConfig {
        ShellConfig(
            keyProvider: SecureEnclaveKeyProvider(store: SecureEnclaveKeyStore()),
            kdfParams: defaultKdfParams(),
            vaultDir: FileProtection.vaultDirectory(),
            audioSource: { EngineAudioSource() },
            transport: { URLSessionTransport() },
            workerId: "worker"
        )
    }
}

/// Published state for the screens. Every core call goes through `CoreQueue`; every rule is the
/// core's.
public final class AppModel: ObservableObject {
    /// Whether the vault is unlocked; false sends every screen back to the lock screen.
    @Published public private(set) var unlocked = false
    /// Whether the privacy cover hides the screen (app inactive, in the app switcher, or the screen
    /// being recorded or mirrored).
    @Published public var covered = false
    /// Bumped on every lock, so screens drop what they show.
    @Published public private(set) var lockGeneration = 0

    public let config: ShellConfig
    public private(set) var session: VaultSession
    public let queue: CoreQueue
    public let photos: PhotoImporter
    public private(set) var syncRunner: SyncRunner
    /// Background sync scheduling (registered once per launch by the app delegate).
    public private(set) lazy var scheduler = SyncScheduler(
        runner: { [weak self] in self?.syncRunner },
        isUnlocked: { [weak self] in self?.session.isUnlocked() ?? false }
    )
    /// Sends planned attachment chunks while the phone is locked (created at launch so iOS can
    /// hand it the events of uploads that finished while the app was not running).
    public let backgroundUploader: BackgroundUploader
    /// Called before the vault locks (recordings abort, sync cancels).
    private var beforeLock: [UUID: () -> Void] = [:]

    public init(config: ShellConfig, queue: CoreQueue = .shared, photos: PhotoImporter = PhotoImporter()) {
        self.config = config
        self.queue = queue
        self.photos = photos
        backgroundUploader = BackgroundUploader(vaultDir: config.vaultDir)
        let s = VaultSession(dir: config.vaultDir, keyProvider: config.keyProvider, kdfParams: config.kdfParams)
        session = s
        let runner = SyncRunner(vaultSession: s, makeTransport: config.transport)
        syncRunner = runner
    }

    /// The shell texts in the phone's language.
    public var l10n: L10n {
        L10n(language: L10n.deviceLanguage())
    }

    /// Runs a blocking core call off the main thread; a `Locked` error sends the app to the lock
    /// screen instead of reaching `done`.
    public func run<T>(_ work: @escaping (VaultSession) throws -> T, then done: @escaping (Result<T, Error>) -> Void) {
        let s = session
        queue.run({ try work(s) }, then: { [weak self] result in
            if case .failure(AmanatError.Locked) = result {
                self?.markLocked()
                return
            }
            done(result)
        })
    }

    /// The lock screen reports a successful unlock (or a duress unlock, which looks the same).
    public func didUnlock() {
        unlocked = true
        // The foreground sync takes over from the relay's offset: background tasks end, the plan
        // and its chunk files go.
        backgroundUploader.stop {}
        scheduler.schedule(earliestMs: nil)
    }

    /// Registers work to do before the vault locks; returns a token for `removeBeforeLock`.
    public func onBeforeLock(_ action: @escaping () -> Void) -> UUID {
        let id = UUID()
        beforeLock[id] = action
        return id
    }

    public func removeBeforeLock(_ id: UUID) {
        beforeLock[id] = nil
    }

    /// Locks now: recordings are aborted, a sync run is cancelled, the core forgets the keys.
    public func lock() {
        for action in beforeLock.values {
            action()
        }
        syncRunner.cancel()
        session.lockNow()
        markLocked()
    }

    private func markLocked() {
        unlocked = false
        lockGeneration += 1
    }

    /// The app left the screen (home button, app switcher, screen off, another app on top): lock.
    /// The screens lock at once; on the core queue, the core first writes the background upload
    /// plan (pending recordings as signed chunk files, while it still has the keys), then forgets
    /// the keys. `done` runs on the main thread after the vault locked (the app ends its
    /// background task there).
    public func enteredBackground(done: @escaping () -> Void = {}) {
        covered = true
        for action in beforeLock.values {
            action()
        }
        syncRunner.cancel()
        markLocked()
        let s = session
        let uploader = backgroundUploader
        queue.run({
            if let vault = try? s.unlocked() {
                // Not enrolled, or nothing pending: no plan, nothing sent. Never blocks the lock.
                _ = try? uploader.start(vault: vault)
            }
            s.lockNow()
        }, then: { _ in done() })
    }

    /// Panic wipe: the platform key and key slots first; afterwards the app is back at "choose a
    /// passcode".
    public func panicWipe(done: @escaping (Result<Void, Error>) -> Void) {
        for action in beforeLock.values {
            action()
        }
        syncRunner.cancel()
        // The wipe removes the plan's folder with the vault; this also cancels the system's tasks.
        backgroundUploader.stop {}
        let s = session
        queue.run({ try s.panicWipe() }, then: { [weak self] result in
            self?.resetSession()
            self?.markLocked()
            done(result)
        })
    }

    /// A fresh session object (after a wipe), so the next use opens whatever is on disk.
    public func resetSession() {
        session.close()
        let s = VaultSession(dir: config.vaultDir, keyProvider: config.keyProvider, kdfParams: config.kdfParams)
        session = s
        let runner = SyncRunner(vaultSession: s, makeTransport: config.transport)
        syncRunner = runner
    }
}
