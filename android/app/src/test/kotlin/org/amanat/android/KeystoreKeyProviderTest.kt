// The Keystore key provider: wrap format and typed errors with the JVM double, the real
// AndroidKeyStore class as far as Robolectric goes, and the real core on top.
package org.amanat.android

import org.amanat.core.AmanatException
import org.amanat.core.KeyProviderErrorKind
import org.amanat.core.KeyProviderFfiException
import org.amanat.core.Vault
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import java.io.File

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class KeystoreKeyProviderTest {
    private val keys = MemoryKeyStore()
    private val provider = KeystoreKeyProvider(keys)

    @Test
    fun wrapsAndUnwraps() {
        val secret = ByteArray(48) { it.toByte() }
        val a = provider.wrap(secret)
        val b = provider.wrap(secret)
        assertEquals(1, keys.created) // created on first use only
        assertEquals(1 + 12 + 48 + 16, a.size)
        assertNotEquals(a.toList(), b.toList()) // fresh IV each time
        assertArrayEquals(secret, provider.unwrap(a))
        assertArrayEquals(secret, provider.unwrap(b))
    }

    @Test
    fun tamperedOrForeignBlobsAreRejected() {
        val w = provider.wrap(ByteArray(32))
        val flipped = w.copyOf().also { it[20] = (it[20].toInt() xor 1).toByte() }
        assertThrows(KeyProviderFfiException.Rejected::class.java) { provider.unwrap(flipped) }
        val otherVersion = w.copyOf().also { it[0] = 9 }
        assertThrows(KeyProviderFfiException.Rejected::class.java) { provider.unwrap(otherVersion) }
        assertThrows(KeyProviderFfiException.Rejected::class.java) { provider.unwrap(ByteArray(10)) }
        val other = KeystoreKeyProvider(MemoryKeyStore()).also { it.wrap(ByteArray(1)) }
        assertThrows(KeyProviderFfiException.Rejected::class.java) { other.unwrap(w) }
    }

    @Test
    fun destroyedKeyIsMissing() {
        val w = provider.wrap(ByteArray(32))
        provider.destroyKey()
        provider.destroyKey() // idempotent
        assertThrows(KeyProviderFfiException.KeyMissing::class.java) { provider.unwrap(w) }
    }

    @Test
    fun invalidatedKeyIsTypedKeyMissingNotACrash() {
        val w = provider.wrap(ByteArray(32))
        keys.invalidated = true
        assertThrows(KeyProviderFfiException.KeyMissing::class.java) { provider.unwrap(w) }
        assertThrows(KeyProviderFfiException.KeyMissing::class.java) { provider.wrap(ByteArray(32)) }
    }

    @Test
    fun invalidatedKeyThroughTheCoreIsKeyProviderKeyMissing() {
        val dir = File(RuntimeEnvironment.getApplication().filesDir, "v").path
        Vault.create(dir, PASS, provider, FAST).use { it.lock() }
        keys.invalidated = true
        Vault.open(dir, provider).use { v ->
            val e = assertThrows(AmanatException.KeyProvider::class.java) { v.unlock(PASS) }
            assertEquals(KeyProviderErrorKind.KEY_MISSING, e.kind)
            // Never counted as a wrong passcode.
            assertEquals(0u, v.unlockStatus().failedAttempts)
        }
    }

    @Test
    fun realAndroidKeystoreClassFailsTypedWhereThereIsNoKeystore() {
        // Robolectric has no AndroidKeyStore provider: the real class is exercised up to the
        // platform call, and the failure must come back typed (UNAVAILABLE), not as a crash.
        val real = AndroidKeystoreKey(strongBoxAvailable = true)
        val p = KeystoreKeyProvider(real)
        val e = assertThrows(KeyProviderFfiException::class.java) { p.wrap(ByteArray(32)) }
        assertTrue(e.toString(), e is KeyProviderFfiException.Unavailable)
        val dir = File(RuntimeEnvironment.getApplication().filesDir, "v2").path
        val ve = assertThrows(AmanatException.KeyProvider::class.java) { Vault.create(dir, PASS, p, FAST) }
        assertEquals(KeyProviderErrorKind.UNAVAILABLE, ve.kind)
        assertFalse(org.amanat.core.vaultExists(dir))
    }
}
