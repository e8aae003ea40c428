// Vault lifecycle from Kotlin: lock, wrong passcode, duress, wipe, failing providers, damaged
// files, and one vault used from many threads.
package org.amanat.tests

import org.amanat.core.*
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.Test
import kotlin.test.assertFailsWith
import java.io.File
import java.nio.file.Files
import java.util.concurrent.Callable
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

class VaultTest {
    @Test
    fun lockAndWrongPasscode() = Fixture().use { f ->
        f.vault.createCase()
        f.vault.lock()
        assertFalse(f.vault.isUnlocked())
        val locked = assertFailsWith<AmanatException.Locked> { f.vault.listCases() }
        assertEquals("locked", locked.code())
        Vault.open(f.dir, f.provider).use { v ->
            val e = assertFailsWith<AmanatException.WrongPasscode> { v.unlock("000000") }
            assertEquals(1u, e.failedAttempts)
            assertEquals(1003u + 1u, e.numericCode())
            assertEquals(1u, v.unlockStatus().failedAttempts)
            v.unlock(PASS)
            assertEquals(1, v.listCases().size)
            assertEquals(0u, v.unlockStatus().failedAttempts)
        }
        assertTrue(f.provider.calls.get() > 0, "the Kotlin provider was used")
    }

    @Test
    fun duressPasscodeLeavesAnEmptyVault() = Fixture().use { f ->
        val v = f.vault
        v.createCase()
        v.setDuressPasscode(PASS, DURESS)
        assertFailsWith<AmanatException.DuressConflict> { v.setDuressPasscode(PASS, PASS) }
        v.lock()
        v.unlock(DURESS)
        assertTrue(v.isUnlocked())
        assertTrue(v.listCases().isEmpty())
        v.lock()
        assertFailsWith<AmanatException.WrongPasscode> { v.unlock(PASS) }
        v.unlock(DURESS)
    }

    @Test
    fun changePasscodeAndPanicWipe() = Fixture().use { f ->
        val v = f.vault
        assertFailsWith<AmanatException.PasscodeTooShort> { v.changePasscode(PASS, "12") }
            .also { assertEquals(minPasscodeChars(), it.minChars) }
        v.changePasscode(PASS, "97531864")
        v.lock()
        assertFailsWith<AmanatException.WrongPasscode> { v.unlock(PASS) }
        v.unlock("97531864")
        v.panicWipe()
        assertFalse(vaultExists(f.dir))
        assertFailsWith<AmanatException.NoVault> { Vault.open(f.dir, f.provider) }
        assertTrue(defaultKdfParams().mKib >= 65536u)
    }

    @Test
    fun failingProvidersAreTypedExceptions() {
        val tmp = Files.createTempDirectory("amanat-kt").toFile()
        try {
            val dir = File(tmp, "v").path
            val e = assertFailsWith<AmanatException.KeyProvider> {
                Vault.create(dir, PASS, UnavailableKeyProvider(), FAST)
            }
            assertEquals(KeyProviderErrorKind.UNAVAILABLE, e.kind)
            assertEquals("key_provider", e.code())
            val crash = assertFailsWith<AmanatException.KeyProvider> {
                Vault.create(dir, PASS, CrashingKeyProvider(), FAST)
            }
            assertEquals(KeyProviderErrorKind.UNAVAILABLE, crash.kind)
            assertFalse(vaultExists(dir))

            // A vault whose platform key is gone (reinstall): KeyMissing, not a wrong passcode.
            val provider = AesGcmKeyProvider()
            Vault.create(dir, PASS, provider, FAST).use { it.lock() }
            provider.destroyKey()
            Vault.open(dir, provider).use { v ->
                val missing = assertFailsWith<AmanatException.KeyProvider> { v.unlock(PASS) }
                assertEquals(KeyProviderErrorKind.KEY_MISSING, missing.kind)
                assertEquals(0u, v.unlockStatus().failedAttempts)
            }
        } finally {
            tmp.deleteRecursively()
        }
    }

    @Test
    fun corruptedDatabaseIsATypedException() = Fixture().use { f ->
        f.vault.createCase()
        f.vault.lock()
        File(f.dir, "vault.db").writeBytes(ByteArray(8192) { 0x5A })
        File(f.dir, "vault.db-wal").delete()
        Vault.open(f.dir, f.provider).use { v ->
            val e = assertFailsWith<AmanatException> { v.unlock(PASS) }
            assertTrue(e.code() in setOf("corrupt", "integrity", "storage"), e.code())
        }
    }

    @Test
    fun oneVaultManyThreads() = Fixture().use { f ->
        val v = f.vault
        val pool = Executors.newFixedThreadPool(8)
        try {
            val jobs = (0 until 8).map {
                Callable {
                    repeat(5) {
                        val c = v.createCase()
                        v.setCaseField(c.id, "status", "open")
                        assertEquals("open", v.getCase(c.id).fields["status"]?.value)
                        v.listCases()
                        v.isUnlocked()
                    }
                }
            }
            pool.invokeAll(jobs).forEach { it.get() }
        } finally {
            pool.shutdown()
            pool.awaitTermination(30, TimeUnit.SECONDS)
        }
        assertEquals(40, v.listCases().size)
        v.verifyAudit()
        // Lock from one thread while others read: they get Locked, never a crash.
        val readers = Executors.newFixedThreadPool(4)
        try {
            val futures = (0 until 4).map {
                readers.submit(Callable {
                    var outcomes = 0
                    repeat(20) {
                        try { v.listCases() } catch (e: AmanatException.Locked) { }
                        outcomes++
                    }
                    outcomes
                })
            }
            v.lock()
            futures.forEach { assertEquals(20, it.get()) }
        } finally {
            readers.shutdown()
        }
    }
}
