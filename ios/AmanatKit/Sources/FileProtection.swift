// Data Protection classes of the app's files (ios/README.md, "File protection").
import Foundation

/// Every file of the vault gets `NSFileProtectionComplete`: unreadable while the phone is locked
/// (the keys are evicted from memory about 10 s after locking). The app's entitlement makes
/// `complete` the default for every file it creates, and this sets it again explicitly, since
/// files created by SQLite inherit the class of their directory only when it has one.
///
/// The exception the issue allows — `completeUntilFirstUserAuthentication` for outbox files that a
/// background upload must read while the phone is locked — is **not** used: the core keeps the
/// outbox inside the vault's database, sealed under the data key, which exists only in memory while
/// the vault is unlocked; so no sync can run while locked, whatever the file class, and lowering the
/// class would only weaken the at-rest protection. `FileProtection.outboxClass` documents the
/// decision in code.
public enum FileProtection {
    /// The class for the outbox: the same as everything else (see above).
    public static let outboxClass: FileProtectionType = .complete

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

    /// Sets `complete` on the folder and every file in it (WAL and shared-memory files included);
    /// failures are ignored here (the entitlement's default still applies).
    public static func protectVaultFiles(_ path: String) {
        let fm = FileManager.default
        let attributes = [FileAttributeKey.protectionKey: FileProtectionType.complete]
        try? fm.setAttributes(attributes, ofItemAtPath: path)
        guard let names = try? fm.subpathsOfDirectory(atPath: path) else {
            return
        }
        for name in names {
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
