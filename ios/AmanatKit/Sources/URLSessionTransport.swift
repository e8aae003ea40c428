// The shell's HTTP stack for sync: the generated foreign trait `Transport` over URLSession.
import Foundation

/// Moves one signed request to the relay and blocks until its answer (the core calls `send` on the
/// syncing thread, never the main thread). An ephemeral session: no cookies, no cache, no
/// credential storage, nothing written to disk. Redirects are not followed (the signature covers
/// the path). Non-2xx answers are returned as responses; only "no answer" is an error, typed as the
/// core expects. Bodies and URLs are never logged.
///
/// The core has already checked the URL (`https://`, or plain `http://` to loopback only) before
/// this sees the request.
public final class URLSessionTransport: Transport, @unchecked Sendable {
    private let timeout: TimeInterval
    private let session: URLSession

    /// `timeout`: per request, connecting and receiving (the built-in Rust client uses 30 s).
    public init(timeout: TimeInterval = 30) {
        self.timeout = timeout
        let config = URLSessionConfiguration.ephemeral
        config.httpCookieAcceptPolicy = .never
        config.httpShouldSetCookies = false
        config.httpCookieStorage = nil
        config.urlCache = nil
        config.urlCredentialStorage = nil
        config.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = timeout * 4
        config.waitsForConnectivity = false
        config.tlsMinimumSupportedProtocolVersion = .TLSv12
        // The session keeps its delegate alive until invalidated: a small separate object, so
        // the transport itself can be freed (deinit invalidates the session).
        session = URLSession(configuration: config, delegate: NoRedirects(), delegateQueue: nil)
    }

    deinit {
        session.invalidateAndCancel()
    }

    public func send(request: HttpRequest) throws -> HttpResponse {
        guard let url = URL(string: request.url) else {
            throw TransportFfiError.Other(reason: "invalid URL")
        }
        var req = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalAndRemoteCacheData, timeoutInterval: timeout)
        req.httpMethod = request.method
        for header in request.headers {
            req.setValue(header.value, forHTTPHeaderField: header.name)
        }
        if !request.body.isEmpty {
            req.httpBody = request.body
        }
        let done = DispatchSemaphore(value: 0)
        var outcome: Result<HttpResponse, TransportFfiError> = .failure(.Timeout)
        let task = session.dataTask(with: req) { data, response, error in
            if let error = error {
                outcome = .failure(Self.classify(error))
            } else if let http = response as? HTTPURLResponse {
                outcome = .success(Self.response(http, body: data ?? Data()))
            } else {
                outcome = .failure(.Protocol)
            }
            done.signal()
        }
        task.resume()
        // The session's own timeouts end the task; this is a last guard against a stuck callback.
        if done.wait(timeout: .now() + timeout * 5) == .timedOut {
            task.cancel()
            throw TransportFfiError.Timeout
        }
        return try outcome.get()
    }

    static func response(_ http: HTTPURLResponse, body: Data) -> HttpResponse {
        var headers: [HttpHeader] = []
        for (name, value) in http.allHeaderFields {
            headers.append(HttpHeader(name: String(describing: name).lowercased(), value: String(describing: value)))
        }
        return HttpResponse(status: UInt16(clamping: http.statusCode), headers: headers, body: body)
    }

    /// URLSession's error codes as the core's transport failure kinds.
    static func classify(_ error: Error) -> TransportFfiError {
        let ns = error as NSError
        guard ns.domain == NSURLErrorDomain else {
            return .Other(reason: "non-URL error")
        }
        switch ns.code {
        case NSURLErrorTimedOut:
            return .Timeout
        case NSURLErrorCannotFindHost, NSURLErrorCannotConnectToHost, NSURLErrorNotConnectedToInternet,
             NSURLErrorDNSLookupFailed, NSURLErrorInternationalRoamingOff, NSURLErrorDataNotAllowed,
             NSURLErrorCallIsActive:
            return .Connect
        case NSURLErrorSecureConnectionFailed, NSURLErrorServerCertificateHasBadDate,
             NSURLErrorServerCertificateUntrusted, NSURLErrorServerCertificateHasUnknownRoot,
             NSURLErrorServerCertificateNotYetValid, NSURLErrorClientCertificateRejected,
             NSURLErrorClientCertificateRequired, NSURLErrorAppTransportSecurityRequiresSecureConnection:
            return .Tls
        case NSURLErrorNetworkConnectionLost, NSURLErrorResourceUnavailable:
            return .Io
        case NSURLErrorBadServerResponse, NSURLErrorCannotParseResponse, NSURLErrorDataLengthExceedsMaximum,
             NSURLErrorCannotDecodeRawData, NSURLErrorCannotDecodeContentData:
            return .Protocol
        default:
            return .Other(reason: "URL error \(ns.code)")
        }
    }
}

/// Refuses every redirect: the answer to the signed request is the 3xx itself.
final class NoRedirects: NSObject, URLSessionTaskDelegate {
    func urlSession(_ session: URLSession, task: URLSessionTask,
                    willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest,
                    completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil)
    }
}
