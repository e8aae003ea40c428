// Sync runs (foreground "sync now" and background tasks): one SyncSession at a time, progress to
// the screen, cancellation, and BGTaskScheduler scheduling. Every rule — what to send, backoff,
// wedged entries, clashes — is the core's; this only runs and schedules.
import BackgroundTasks
import Foundation

/// Forwards the core's progress reports to the main thread. An observer cannot stop or crash a
/// sync (the core ignores its failures); it only updates the screen.
public final class ProgressRelay: SyncObserver, @unchecked Sendable {
    private let handler: (SyncProgress) -> Void

    public init(_ handler: @escaping (SyncProgress) -> Void) {
        self.handler = handler
    }

    public func onProgress(progress: SyncProgress) throws {
        let h = handler
        DispatchQueue.main.async {
            h(progress)
        }
    }
}

/// Runs at most one `SyncSession` over the vault at a time, on its own queue (a run can take
/// minutes; it must not hold up `CoreQueue`), and cancels it on request — when the user taps
/// cancel, when the app goes to the background (it is about to lock), or when iOS ends a
/// background task.
public final class SyncRunner: @unchecked Sendable {
    private let vaultSession: VaultSession
    private let makeTransport: () -> Transport
    private let queue = DispatchQueue(label: "org.amanat.sync", qos: .utility)
    private let lock = NSLock()
    private var running: SyncSession?

    public init(vaultSession: VaultSession, makeTransport: @escaping () -> Transport = { URLSessionTransport() }) {
        self.vaultSession = vaultSession
        self.makeTransport = makeTransport
    }

    /// Whether a run is in progress.
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running != nil
    }

    /// Starts one run; `done` gets the core's report (transient failures and cancellation are in
    /// `SyncReport.interrupted`) or its typed error, on the main thread. Returns false, and calls
    /// nothing, when a run is already in progress.
    @discardableResult
    public func start(progress: ((SyncProgress) -> Void)?, done: @escaping (Result<SyncReport, Error>) -> Void) -> Bool {
        let syncSession: SyncSession
        let observer: SyncObserver? = progress.map { ProgressRelay($0) }
        lock.lock()
        if running != nil {
            lock.unlock()
            return false
        }
        do {
            let vault: Vault = try vaultSession.unlocked()
            syncSession = vault.syncSession(transport: makeTransport())
        } catch {
            lock.unlock()
            DispatchQueue.main.async {
                done(.failure(error))
            }
            return true
        }
        running = syncSession
        lock.unlock()
        queue.async { [weak self] in
            let result = Result<SyncReport, Error>(catching: { try syncSession.run(observer: observer) })
            self?.finished(syncSession)
            DispatchQueue.main.async {
                done(result)
            }
        }
        return true
    }

    private func finished(_ syncSession: SyncSession) {
        lock.lock()
        if running === syncSession {
            running = nil
        }
        lock.unlock()
    }

    /// Asks the running session to stop at its next step boundary (nothing is lost).
    public func cancel() {
        lock.lock()
        let s: SyncSession? = running
        lock.unlock()
        s?.cancel()
    }
}

/// Background sync with BGTaskScheduler. The identifiers are listed in Info.plist
/// (`BGTaskSchedulerPermittedIdentifiers`): a refresh task (short, any network) and a processing
/// task (longer, needs network, for uploads of attachments).
///
/// The data key exists only in memory while the vault is unlocked, and the app locks the vault as
/// soon as it leaves the screen; so a task that iOS starts while the vault is locked cannot sync:
/// it completes at once (no network traffic, nothing read) and is scheduled again. A task that
/// starts while the app is unlocked in the foreground (iOS may run them then) syncs normally and is
/// cancelled through `SyncSession.cancel()` when iOS ends it. What does move while locked is the
/// attachment chunks the core planned before the lock (`BackgroundUploader`, a background
/// URLSession); the next unlocked sync completes them and pushes everything else.
public final class SyncScheduler: @unchecked Sendable {
    public static let refreshIdentifier = "org.amanat.sync.refresh"
    public static let processingIdentifier = "org.amanat.sync.processing"

    private let currentRunner: () -> SyncRunner?
    private let isUnlocked: () -> Bool

    /// `runner` and `isUnlocked` are asked each time a task starts (the session is replaced after
    /// a wipe; the handlers are registered once per launch).
    public init(runner: @escaping () -> SyncRunner?, isUnlocked: @escaping () -> Bool) {
        currentRunner = runner
        self.isUnlocked = isUnlocked
    }

    /// Registers both handlers (run on the main queue, like the model they read); must be called
    /// before the app finishes launching.
    public func register() {
        _ = BGTaskScheduler.shared.register(forTaskWithIdentifier: Self.refreshIdentifier, using: DispatchQueue.main) { [weak self] task in
            self?.handle(task)
        }
        _ = BGTaskScheduler.shared.register(forTaskWithIdentifier: Self.processingIdentifier, using: DispatchQueue.main) { [weak self] task in
            self?.handle(task)
        }
    }

    /// Asks iOS for the next background runs, not before `earliestMs` (the core's
    /// `SyncStatus.nextAttemptMs`, its backoff) when given.
    public func schedule(earliestMs: UInt64?) {
        let earliest = earliestMs.map { Date(timeIntervalSince1970: TimeInterval($0) / 1000) }
        let refresh = BGAppRefreshTaskRequest(identifier: Self.refreshIdentifier)
        refresh.earliestBeginDate = earliest ?? Date(timeIntervalSinceNow: 15 * 60)
        let processing = BGProcessingTaskRequest(identifier: Self.processingIdentifier)
        processing.requiresNetworkConnectivity = true
        processing.requiresExternalPower = false
        processing.earliestBeginDate = earliest
        // Failures (too many pending requests, Simulator) leave the next foreground sync to do it.
        try? BGTaskScheduler.shared.submit(refresh)
        try? BGTaskScheduler.shared.submit(processing)
    }

    private func handle(_ task: BGTask) {
        guard isUnlocked(), let runner = currentRunner() else {
            // Locked: nothing can be read or sent. Ask again later.
            schedule(earliestMs: nil)
            task.setTaskCompleted(success: false)
            return
        }
        task.expirationHandler = {
            runner.cancel()
        }
        let started = runner.start(progress: nil) { [weak self] result in
            var next: UInt64?
            if case .success(let report) = result {
                next = report.retryAfterMs.map { UInt64(Date().timeIntervalSince1970 * 1000) + $0 }
            }
            self?.schedule(earliestMs: next)
            var completed = false
            if case .success(let report) = result, report.interrupted == nil {
                completed = true
            }
            task.setTaskCompleted(success: completed)
        }
        if !started {
            task.setTaskCompleted(success: true)
        }
    }
}
