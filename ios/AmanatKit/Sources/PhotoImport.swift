// Photos: what the camera or the photo picker hands over is put into a capture file with
// `complete` protection, imported with `importAttachmentFile` (the core encrypts it and shreds
// the file), and any leftover capture file is shredded here.
import Foundation

/// The capture folder and the import of one photo. Capture files live in Application
/// Support/capture (not Documents, excluded from backup, `complete` protection) under random names.
public final class PhotoImporter: @unchecked Sendable {
    private let dir: URL

    public init(dir: URL = PhotoImporter.defaultDirectory()) {
        self.dir = dir
    }

    /// Application Support/capture.
    public static func defaultDirectory() -> URL {
        let base = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        return base.appendingPathComponent("capture", isDirectory: true)
    }

    private func prepare() throws {
        try FileManager.default.createDirectory(
            at: dir, withIntermediateDirectories: true,
            attributes: [FileAttributeKey.protectionKey: FileProtectionType.complete]
        )
        var url = dir
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try url.setResourceValues(values)
    }

    /// A new capture file name (random, not derived from anything about the photo).
    public func newCaptureURL(extension ext: String = "jpg") -> URL {
        dir.appendingPathComponent(UUID().uuidString.lowercased() + "." + ext)
    }

    /// Imports camera output (`jpeg`, in memory) into `questionId` of `interviewId`: written to a
    /// capture file, then handed to the core, which encrypts it and shreds the file. The file is
    /// shredded here too if the core refuses it (no consent, wrong question, locked …).
    public func importPhoto(data: Data, mediaType: String, interviewId: String, questionId: String, vault: Vault) throws -> AttachmentInfo {
        try prepare()
        let url = newCaptureURL()
        guard FileManager.default.createFile(
            atPath: url.path, contents: data,
            attributes: [FileAttributeKey.protectionKey: FileProtectionType.complete]
        ) else {
            throw AmanatError.Storage(detail: "capture file")
        }
        return try importCaptured(url: url, mediaType: mediaType, interviewId: interviewId, questionId: questionId, vault: vault)
    }

    /// Imports a file the photo picker copied for the app (`loadFileRepresentation`): it is moved
    /// into the capture folder first, then imported as above.
    public func importPickedFile(at picked: URL, mediaType: String, interviewId: String, questionId: String, vault: Vault) throws -> AttachmentInfo {
        try prepare()
        let url = newCaptureURL(extension: picked.pathExtension.isEmpty ? "img" : picked.pathExtension)
        do {
            try FileManager.default.moveItem(at: picked, to: url)
        } catch {
            Self.shred(picked)
            throw AmanatError.Storage(detail: "capture file")
        }
        try? FileManager.default.setAttributes([FileAttributeKey.protectionKey: FileProtectionType.complete], ofItemAtPath: url.path)
        return try importCaptured(url: url, mediaType: mediaType, interviewId: interviewId, questionId: questionId, vault: vault)
    }

    private func importCaptured(url: URL, mediaType: String, interviewId: String, questionId: String, vault: Vault) throws -> AttachmentInfo {
        defer {
            // The core shreds the file once it has it; whatever is still there is shredded now.
            Self.shred(url)
        }
        return try vault.importAttachmentFile(interviewId: interviewId, questionId: questionId, mediaType: mediaType, sourcePath: url.path)
    }

    /// Shreds every capture file left over (the app was killed between shot and import).
    public func shredLeftovers() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else {
            return
        }
        for name in names {
            Self.shred(dir.appendingPathComponent(name))
        }
    }

    /// Overwrites `url` with zeros, flushes it, and deletes it (best effort on flash storage; the
    /// file's protection class key is also discarded with it).
    public static func shred(_ url: URL) {
        let fm = FileManager.default
        guard fm.fileExists(atPath: url.path) else {
            return
        }
        if let handle = try? FileHandle(forWritingTo: url) {
            let size = (try? fm.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
            let zeros = Data(count: 64 * 1024)
            var left = size
            while left > 0 {
                let n = min(left, zeros.count)
                handle.write(zeros.prefix(n))
                left -= n
            }
            handle.synchronizeFile()
            handle.closeFile()
        }
        try? fm.removeItem(at: url)
    }
}
