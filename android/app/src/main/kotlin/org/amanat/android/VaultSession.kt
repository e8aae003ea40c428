// The one vault of the app, opened lazily, shared by every screen.
package org.amanat.android

import org.amanat.core.AmanatException
import org.amanat.core.KdfParams
import org.amanat.core.KeyProvider
import org.amanat.core.UnlockStatus
import org.amanat.core.Vault
import org.amanat.core.vaultExists
import org.amanat.core.wipeVault

/**
 * The vault in [dir] as the screens see it: created or opened once, unlocked by the lock screen,
 * locked on background, wiped by the panic action. It holds no rule of its own; every decision
 * (backoff, duress, what a wipe destroys) is the core's. All methods block: call them off the
 * main thread.
 */
class VaultSession(
    /** Folder of the vault (credential-protected storage). */
    val dir: String,
    private val keyProvider: KeyProvider,
    private val kdfParams: KdfParams,
) : AutoCloseable {
    @Volatile
    private var vault: Vault? = null

    /** Whether a vault exists, i.e. the lock screen asks for the passcode rather than a new one. */
    fun exists(): Boolean = vaultExists(dir)

    /** Creates the vault with [passcode]; it is unlocked afterwards. */
    @Synchronized
    fun create(passcode: String) {
        close()
        vault = Vault.create(dir, passcode, keyProvider, kdfParams)
    }

    @Synchronized
    private fun opened(): Vault = vault ?: Vault.open(dir, keyProvider).also { vault = it }

    /** Tries [passcode]; a duress passcode succeeds the same way (the core wipes behind it). */
    fun unlock(passcode: String) = opened().unlock(passcode)

    /** Failed attempts and the earliest time of the next one, from the core's persisted counter. */
    fun status(): UnlockStatus = opened().unlockStatus()

    /** Whether the vault is open for use right now. */
    fun isUnlocked(): Boolean = vault?.isUnlocked() == true

    /** The unlocked vault, or `Locked` (another screen or the auto-lock locked it). */
    fun unlocked(): Vault {
        val v = vault
        if (v == null || !v.isUnlocked()) throw AmanatException.Locked("locked")
        return v
    }

    /** Locks: the core forgets the keys. */
    fun lock() {
        vault?.lock()
    }

    /** Panic wipe: the platform key and the key slots first, so nothing can be decrypted any more. */
    @Synchronized
    fun panicWipe() {
        val v = vault
        if (v != null) v.panicWipe() else wipeVault(dir, keyProvider)
        close()
    }

    /** Wipes a vault that cannot be opened (its platform key is gone). */
    @Synchronized
    fun wipeUnopenable() {
        close()
        wipeVault(dir, keyProvider)
    }

    /** Frees the native vault object. */
    @Synchronized
    override fun close() {
        vault?.destroy()
        vault = null
    }
}
