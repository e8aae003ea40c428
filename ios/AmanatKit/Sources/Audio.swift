// Audio capture streamed straight into the vault: the microphone's samples go into an
// AttachmentWriter (encrypted as they arrive); no plaintext file ever exists, not even a temporary
// one (AVAudioRecorder would write one, hence AVAudioEngine).
import AVFoundation
import Foundation

/// Where recorded bytes come from. On a phone: `EngineAudioSource`. In tests: a fake that hands out
/// known bytes, so what reaches the vault can be compared.
public protocol AudioSource: AnyObject {
    /// MIME type of the byte stream (`audio/…`, checked by the core).
    var mediaType: String { get }

    /// Starts capturing; `sink` receives the stream's bytes in order, on any thread.
    func start(sink: @escaping (Data) -> Void) throws

    /// Stops capturing; no `sink` call starts after it returns.
    func stop()
}

/// Why a recording could not start.
public enum AudioFailure: Error, Equatable {
    /// The microphone or the audio session could not be used.
    case microphoneUnavailable
}

/// The microphone through `AVAudioEngine`: its input converted to 16 kHz mono 16-bit PCM in a WAV
/// stream whose header leaves the length open (0xFFFFFFFF), since the header is written before the
/// length is known and nothing is seeked back to — the same format as the Android shell. Needs the
/// microphone permission (asked by the interview screen first).
public final class EngineAudioSource: AudioSource {
    public let mediaType = "audio/wav"
    private let sampleRate: Double
    private let engine = AVAudioEngine()
    private let lock = NSLock()
    private var stopped = false

    public init(sampleRate: Double = 16_000) {
        self.sampleRate = sampleRate
    }

    public func start(sink: @escaping (Data) -> Void) throws {
        let session = AVAudioSession.sharedInstance()
        do {
            try session.setCategory(.record, mode: .default, options: [])
            try session.setActive(true)
        } catch {
            throw AudioFailure.microphoneUnavailable
        }
        let input = engine.inputNode
        let inputFormat = input.outputFormat(forBus: 0)
        guard inputFormat.sampleRate > 0,
              let target = AVAudioFormat(commonFormat: .pcmFormatInt16, sampleRate: sampleRate, channels: 1, interleaved: true),
              let converter = AVAudioConverter(from: inputFormat, to: target)
        else {
            throw AudioFailure.microphoneUnavailable
        }
        sink(Self.wavHeader(sampleRate: UInt32(sampleRate)))
        input.installTap(onBus: 0, bufferSize: 4096, format: inputFormat) { [weak self] buffer, _ in
            guard let self = self, !self.isStopped else {
                return
            }
            let capacity = AVAudioFrameCount(Double(buffer.frameLength) * self.sampleRate / inputFormat.sampleRate) + 16
            guard let out = AVAudioPCMBuffer(pcmFormat: target, frameCapacity: capacity) else {
                return
            }
            var given = false
            var error: NSError?
            _ = converter.convert(to: out, error: &error) { _, status in
                if given {
                    status.pointee = .noDataNow
                    return nil
                }
                given = true
                status.pointee = .haveData
                return buffer
            }
            guard error == nil, out.frameLength > 0, let samples = out.int16ChannelData else {
                return
            }
            sink(Data(bytes: samples[0], count: Int(out.frameLength) * 2))
        }
        engine.prepare()
        do {
            try engine.start()
        } catch {
            input.removeTap(onBus: 0)
            throw AudioFailure.microphoneUnavailable
        }
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    public func stop() {
        lock.lock()
        let already = stopped
        stopped = true
        lock.unlock()
        if already {
            return
        }
        engine.inputNode.removeTap(onBus: 0)
        engine.stop()
        try? AVAudioSession.sharedInstance().setActive(false, options: [.notifyOthersOnDeactivation])
    }

    /// RIFF/WAVE header for 16-bit mono PCM with open (0xFFFFFFFF) lengths.
    public static func wavHeader(sampleRate: UInt32) -> Data {
        var h = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { h.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { h.append(contentsOf: $0) } }
        h.append(contentsOf: Array("RIFF".utf8))
        u32(0xFFFF_FFFF)
        h.append(contentsOf: Array("WAVEfmt ".utf8))
        u32(16)
        u16(1)
        u16(1)
        u32(sampleRate)
        u32(sampleRate * 2)
        u16(2)
        u16(16)
        h.append(contentsOf: Array("data".utf8))
        u32(0xFFFF_FFFF)
        return h
    }
}

/// Pumps an `AudioSource` into an `AttachmentWriter` until `stop` is called, then finishes the
/// attachment (the core also records it as the question's answer). On any failure, or on `abort`,
/// the writer is aborted, so nothing half-written stays in the vault. Writes run on a serial queue
/// of their own, never on the audio thread; each chunk's bytes are cleared after the write.
public final class AudioRecorder: @unchecked Sendable {
    private let source: AudioSource
    private let writer: AttachmentWriter
    private let queue = DispatchQueue(label: "org.amanat.audio-writer", qos: .userInitiated)
    private var failure: Error?
    private var ended = false

    public init(source: AudioSource, writer: AttachmentWriter) {
        self.source = source
        self.writer = writer
    }

    /// Starts the source; a failure to start aborts the writer and is thrown.
    public func start() throws {
        do {
            try source.start { [weak self] chunk in
                self?.enqueue(chunk)
            }
        } catch {
            source.stop()
            let w: AttachmentWriter = writer
            queue.sync {
                ended = true
                w.abort()
            }
            throw error
        }
    }

    private func enqueue(_ chunk: Data) {
        let w: AttachmentWriter = writer
        queue.async {
            guard !self.ended, self.failure == nil else {
                return
            }
            var bytes = chunk
            do {
                try w.write(bytes: bytes)
            } catch {
                self.failure = error
                self.source.stop()
            }
            bytes.resetBytes(in: 0 ..< bytes.count)
        }
    }

    /// Ends the recording: `done` (main thread) gets the stored attachment, or the error that
    /// stopped it (the writer is then aborted).
    public func stop(done: @escaping (Result<AttachmentInfo, Error>) -> Void) {
        source.stop()
        let w: AttachmentWriter = writer
        queue.async {
            let result: Result<AttachmentInfo, Error>
            if self.ended {
                result = .failure(AmanatError.Closed(detail: "recording ended"))
            } else if let error = self.failure {
                w.abort()
                result = .failure(error)
            } else {
                result = Result<AttachmentInfo, Error>(catching: { try w.finish() })
                if case .failure = result {
                    w.abort()
                }
            }
            self.ended = true
            DispatchQueue.main.async {
                done(result)
            }
        }
    }

    /// Drops the recording (the vault is locking, the screen is closing): nothing is kept.
    public func abort() {
        source.stop()
        let w: AttachmentWriter = writer
        queue.async {
            if !self.ended {
                self.ended = true
                w.abort()
            }
        }
    }
}
