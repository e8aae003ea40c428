// Data Protection classes of the app's files (ios/README.md, "File protection").
import Foundation

/// Every file of the vault gets `NSFileProtectionComplete`: unreadable while the phone is locked
/// (the keys are evicted from memory about 10 s after locking). The app's entitlement makes
/// `complete` the default for every file it creates, and this sets it again explicitly, since
/// files created by SQLite inherit the class of their directory only when it has one.
///
/// One exception, the one the issue allows: the background upload folder (`<vault>/uploads`, the
/// core's `sync::background`) gets `completeUntilFirstUserAuthentication`, because the system's
/// uploader reads its chunk files while the phone is locked. It holds only what the relay receives
/// anyway — attachment ciphertext (age, to the consented groups) and signed requests, no survivor
/// data, no key — and a panic wipe removes it with the vault.
public enum FileProtection {
    /// The class of the background upload folder (see above).
    public static let uploadsClass: FileProtectionType = .completeUntilFirstUserAuthentication

    /// Gives the upload folder (named by the core: `backgroundUploadsDir`) and its files
    /// `uploadsClass`.
    public static func protectUploads(_ vaultPath: String) {
        let fm = FileManager.default
        let folder = backgroundUploadsDir(vaultDir: vaultPath)
        let attributes = [FileAttributeKey.protectionKey: uploadsClass]
        try? fm.setAttributes(attributes, ofItemAtPath: folder)
        for name in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] {
            try? fm.setAttributes(attributes, ofItemAtPath: (folder as NSString).appendingPathComponent(name))
        }
    }

    /// Creates the vault's folder with `complete` protection, excluded from backups.
    public static func prepareVaultDirectory(_ path: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(
            atPath: path, withIntermediateDirectories: true,
            attributes: [FileAttributeKey.protectionKey: FileProtectionType.complete]
        )
        var url = URL(fileURLWithPath: path, isDirectory: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try url.setResourceValues(values)
    }

    /// Sets `complete` on the folder and every file in it (WAL and shared-memory files included),
    /// except the background upload folder (`protectUploads`);
    /// failures are ignored here (the entitlement's default still applies).
    public static func protectVaultFiles(_ path: String) {
        let fm = FileManager.default
        let attributes = [FileAttributeKey.protectionKey: FileProtectionType.complete]
        try? fm.setAttributes(attributes, ofItemAtPath: path)
        guard let names = try? fm.subpathsOfDirectory(atPath: path) else {
            return
        }
        let uploads = (backgroundUploadsDir(vaultDir: path) as NSString).lastPathComponent
        for name in names where name != uploads && !name.hasPrefix(uploads + "/") {
            let full = (path as NSString).appendingPathComponent(name)
            try? fm.setAttributes(attributes, ofItemAtPath: full)
        }
    }

    /// The vault folder: Application Support/vault, never Documents (which the Files app and
    /// iTunes file sharing can reach).
    public static func vaultDirectory() -> String {
        let base = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        return base.appendingPathComponent("vault", isDirectory: true).path
    }
}
