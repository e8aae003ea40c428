// Background uploads of attachment chunks (ios/README.md, "Background uploads"): the core cuts
// pending recordings into signed chunk files just before the vault locks; a background URLSession
// sends them while the phone is locked or the app is gone; after each answer the core's rule
// (`backgroundUploadNext`) names the next chunk. Nothing here decides anything.
import Foundation

/// Owns the background `URLSession` (`org.amanat.upload`). One per launch, created at launch so
/// that iOS can hand it the events of tasks that finished while the app was not running.
public final class BackgroundUploader: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    public static let sessionIdentifier = "org.amanat.upload"
    /// Most chunk bytes one plan copies (the copy happens while the app goes to the background).
    public static let planBudgetBytes: UInt64 = 64 * 1024 * 1024
    /// How long the signatures stay valid: the relay's maximum, 72 hours.
    public static let validityMs: UInt64 = 72 * 60 * 60 * 1000

    private let vaultDir: String
    private let lock = NSLock()
    private var bodies: [Int: Data] = [:]
    private var eventsDone: (() -> Void)?

    private lazy var session: URLSession = {
        let config = URLSessionConfiguration.background(withIdentifier: Self.sessionIdentifier)
        config.sessionSendsLaunchEvents = true
        config.isDiscretionary = false
        config.httpCookieStorage = nil
        config.urlCache = nil
        config.urlCredentialStorage = nil
        config.tlsMinimumSupportedProtocolVersion = .TLSv12
        return URLSession(configuration: config, delegate: self, delegateQueue: nil)
    }()

    public init(vaultDir: String) {
        self.vaultDir = vaultDir
        super.init()
    }

    /// Before the lock, on the core queue: writes a new plan (the core replaces any old one),
    /// gives its folder the protection class the system uploader can read while the phone is
    /// locked, and starts the first chunk of each blob. Returns the plan's size for the caller.
    @discardableResult
    public func start(vault: Vault) throws -> BackgroundUploadPlan {
        let plan = try vault.prepareBackgroundUploads(maxBytes: Self.planBudgetBytes, validMs: Self.validityMs)
        FileProtection.protectUploads(vaultDir)
        for request in plan.first {
            enqueue(request)
        }
        return plan
    }

    /// At unlock (the foreground sync takes over from the relay's offset) and before a wipe:
    /// cancels every task, then removes the plan and its files.
    public func stop(done: @escaping () -> Void) {
        let dir = vaultDir
        session.getAllTasks { tasks in
            for task in tasks {
                task.cancel()
            }
            try? discardBackgroundUploads(vaultDir: dir)
            done()
        }
    }

    /// From the app delegate's `handleEventsForBackgroundURLSession`: reconnects the session so its
    /// delegate gets the finished tasks, and keeps iOS's completion handler for when they are done.
    public func handleEvents(identifier: String, completion: @escaping () -> Void) -> Bool {
        guard identifier == Self.sessionIdentifier else {
            return false
        }
        lock.lock()
        eventsDone = completion
        lock.unlock()
        _ = session
        return true
    }

    private func enqueue(_ chunk: BackgroundChunkRequest) {
        guard let url = URL(string: chunk.url) else {
            return
        }
        var request = URLRequest(url: url)
        request.httpMethod = chunk.method
        for header in chunk.headers {
            request.setValue(header.value, forHTTPHeaderField: header.name)
        }
        let task = session.uploadTask(with: request, fromFile: URL(fileURLWithPath: chunk.filePath))
        task.taskDescription = Self.describe(chunk)
        task.resume()
    }

    /// What a task must remember across relaunches: blob, offset and try, in its description.
    static func describe(_ chunk: BackgroundChunkRequest) -> String {
        "\(chunk.blobSha256) \(chunk.offset) \(chunk.attempt)"
    }

    static func parse(_ description: String?) -> (blob: String, offset: UInt64, attempt: UInt32)? {
        guard let parts = description?.split(separator: " "), parts.count == 3,
              let offset = UInt64(parts[1]), let attempt = UInt32(parts[2]) else {
            return nil
        }
        return (String(parts[0]), offset, attempt)
    }

    public func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        bodies[dataTask.taskIdentifier, default: Data()].append(data)
        lock.unlock()
    }

    public func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        let body = bodies.removeValue(forKey: task.taskIdentifier) ?? Data()
        lock.unlock()
        guard let sent = Self.parse(task.taskDescription) else {
            return
        }
        if let urlError = error as? URLError, urlError.code == .cancelled {
            return
        }
        var status: UInt16 = 0
        if error == nil, let response = task.response as? HTTPURLResponse {
            status = UInt16(clamping: response.statusCode)
        }
        let step = try? backgroundUploadNext(
            vaultDir: vaultDir, blobSha256: sent.blob, offset: sent.offset,
            attempt: sent.attempt, status: status, body: body
        )
        if case .upload(let next)? = step {
            enqueue(next)
        }
    }

    /// The relay never redirects; anything that does (a captive portal) gets no request.
    public func urlSession(_ session: URLSession, task: URLSessionTask,
                           willPerformHTTPRedirection response: HTTPURLResponse,
                           newRequest request: URLRequest,
                           completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil)
    }

    public func urlSessionDidFinishEvents(forBackgroundURLSession session: URLSession) {
        lock.lock()
        let done = eventsDone
        eventsDone = nil
        lock.unlock()
        DispatchQueue.main.async {
            done?()
        }
    }
}
