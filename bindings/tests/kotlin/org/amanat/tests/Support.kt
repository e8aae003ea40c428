// Test support: an AES-GCM key provider held in memory (what an Android Keystore provider does,
// minus the hardware), providers that fail, and the vault fixture.
package org.amanat.tests

import org.amanat.core.*
import java.io.File
import java.nio.file.Files
import java.security.SecureRandom
import java.util.concurrent.atomic.AtomicInteger
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

val FAST = KdfParams(mKib = 256u, t = 1u, p = 1u)
const val PASS = "246810"
const val DURESS = "135791"
const val TEMPLATE = "trafficking_screening"

/** AES-256-GCM under a javax.crypto key kept in memory; random 96-bit IV per wrap. */
class AesGcmKeyProvider : KeyProvider {
    private val lock = Any()
    private var key: SecretKey? = null
    private val random = SecureRandom()
    val calls = AtomicInteger()

    private fun cipher(mode: Int, k: SecretKey, iv: ByteArray): Cipher =
        Cipher.getInstance("AES/GCM/NoPadding").apply {
            init(mode, k, GCMParameterSpec(128, iv))
            updateAAD("amanat/test-provider".toByteArray())
        }

    override fun wrap(plaintext: ByteArray): ByteArray {
        calls.incrementAndGet()
        val k = synchronized(lock) {
            key ?: KeyGenerator.getInstance("AES").apply { init(256) }.generateKey().also { key = it }
        }
        val iv = ByteArray(12).also { random.nextBytes(it) }
        return iv + cipher(Cipher.ENCRYPT_MODE, k, iv).doFinal(plaintext)
    }

    override fun unwrap(wrapped: ByteArray): ByteArray {
        calls.incrementAndGet()
        val k = synchronized(lock) { key } ?: throw KeyProviderFfiException.KeyMissing()
        if (wrapped.size < 12 + 16) throw KeyProviderFfiException.Rejected()
        try {
            return cipher(Cipher.DECRYPT_MODE, k, wrapped.copyOfRange(0, 12))
                .doFinal(wrapped, 12, wrapped.size - 12)
        } catch (e: AEADBadTagException) {
            throw KeyProviderFfiException.Rejected()
        }
    }

    override fun destroyKey() {
        synchronized(lock) { key = null }
    }
}

/** A keystore that is unavailable: throws the declared, typed exception. */
class UnavailableKeyProvider : KeyProvider {
    override fun wrap(plaintext: ByteArray): ByteArray =
        throw KeyProviderFfiException.Unavailable("keystore locked")
    override fun unwrap(wrapped: ByteArray): ByteArray =
        throw KeyProviderFfiException.Unavailable("keystore locked")
    override fun destroyKey() {}
}

/** A buggy provider: throws an undeclared exception (must still come back typed). */
class CrashingKeyProvider : KeyProvider {
    override fun wrap(plaintext: ByteArray): ByteArray = throw IllegalStateException("boom")
    override fun unwrap(wrapped: ByteArray): ByteArray = throw IllegalStateException("boom")
    override fun destroyKey() {}
}

class Fixture : AutoCloseable {
    val tmp: File = Files.createTempDirectory("amanat-kt").toFile()
    val dir: String = File(tmp, "vault").path
    val provider = AesGcmKeyProvider()
    val vault: Vault = Vault.create(dir, PASS, provider, FAST)

    override fun close() {
        vault.destroy()
        tmp.deleteRecursively()
    }
}

fun choice(id: String) = AnswerValue.Choice(id)

fun caseWithConsent(v: Vault, vararg scopes: ConsentScope): Case {
    val case = v.createCase()
    v.recordConsent(case.id, "worker-17", "ru", scopes.toList())
    return case
}
