// Call sequences that once crashed the JVM or leaked platform text (issue 10, items 2 and 9).
//
// uniffi 0.32's generated `lower()` clones the handle of a Rust object passed as an argument
// without checking that the object was destroyed: `softwareKeyProvider(path)`, `close()`, then
// `Vault.open(dir, it)` was a use-after-free (SIGSEGV in `Arc::clone`). The API therefore never
// takes a Rust object as an argument (see docs/API.md, "Known upstream issues"); these tests
// hold that rule and show what each object does after `destroy()`/`close()`.
package org.amanat.tests

import org.amanat.core.*
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.Test
import kotlin.test.assertFailsWith
import java.io.File
import java.lang.reflect.Modifier
import java.nio.file.Files

/** A shell provider with a lifecycle of its own: after close() it refuses to work. */
class ClosableKeyProvider : KeyProvider, AutoCloseable {
    private val inner = AesGcmKeyProvider()
    @Volatile private var closed = false
    private fun check() { if (closed) throw IllegalStateException("provider closed") }
    override fun wrap(plaintext: ByteArray): ByteArray { check(); return inner.wrap(plaintext) }
    override fun unwrap(wrapped: ByteArray): ByteArray { check(); return inner.unwrap(wrapped) }
    override fun destroyKey() { check(); inner.destroyKey() }
    override fun close() { closed = true }
}

/** A provider whose platform message carries a marker that must never reach an error. */
class ChattyKeyProvider : KeyProvider {
    override fun wrap(plaintext: ByteArray): ByteArray = throw KeyProviderFfiException.Unavailable(MARKER)
    override fun unwrap(wrapped: ByteArray): ByteArray = throw KeyProviderFfiException.Unavailable(MARKER)
    override fun destroyKey() = throw KeyProviderFfiException.Unavailable(MARKER)
    companion object { const val MARKER = "PLATFORM-TEXT-4e1d /data/user/0/secret-alias" }
}

class HardeningTest {
    private fun tmp() = Files.createTempDirectory("amanat-kt").toFile()

    /** Every class of the generated package, loaded from the compiled classes directory. */
    private fun generatedClasses(): List<Class<*>> {
        val root = File(Vault::class.java.protectionDomain.codeSource.location.toURI())
        val pkg = File(root, "org/amanat/core")
        return pkg.listFiles()!!.filter { it.name.endsWith(".class") }
            .map { Class.forName("org.amanat.core." + it.name.removeSuffix(".class")) }
    }

    @Test
    fun noCallTakesARustObjectAsAnArgument() {
        val classes = generatedClasses()
        // Rust objects: the generated classes that hold a handle (Vault, the attachment
        // streams, and KeyProviderImpl, a Rust implementation of the KeyProvider trait).
        val rustObjects = classes.filter {
            Disposable::class.java.isAssignableFrom(it) && !it.isInterface
        }
        assertTrue(rustObjects.contains(Vault::class.java), "scan found the Rust objects")
        // Traits the shell implements (KeyProvider) are fine as arguments only if no call can
        // hand the shell a Rust implementation of them (`<Trait>Impl`).
        val shellTraits = rustObjects.mapNotNull { o ->
            o.interfaces.firstOrNull { it.simpleName + "Impl" == o.simpleName }
        }
        val ownInterfaces = rustObjects.flatMap { it.interfaces.toList() }
            .filter { it != Disposable::class.java && it != AutoCloseable::class.java && it !in shellTraits }
        val forbiddenArgs = rustObjects + ownInterfaces
        val forbiddenReturns = shellTraits + rustObjects.filter { o -> shellTraits.any { it.isAssignableFrom(o) } }
        // The public API: the objects' methods, their companions (constructors) and the free
        // functions (file facade); not the FfiConverter objects, which are plumbing.
        val api = rustObjects + classes.filter { it.name.endsWith("\$Companion") } +
            Class.forName("org.amanat.core.Amanat_ffiKt")
        val offenders = mutableListOf<String>()
        var checked = 0
        for (c in api) for (m in c.declaredMethods) {
            if (!Modifier.isPublic(m.modifiers) || m.isSynthetic) continue
            checked++
            m.parameterTypes.filter { it in forbiddenArgs }
                .forEach { offenders += "${c.simpleName}.${m.name} takes ${it.simpleName}" }
            if (m.returnType in forbiddenReturns)
                offenders += "${c.simpleName}.${m.name} returns ${m.returnType.simpleName}"
        }
        assertTrue(checked > 40, "scanned the API ($checked methods)")
        assertEquals(emptyList<String>(), offenders)
    }

    @Test
    fun keyFileVaultLifecycle() {
        val tmp = tmp()
        try {
            val dir = File(tmp, "vault").path
            val key = File(tmp, "device.key").path
            Vault.createWithKeyFile(dir, PASS, key, FAST).use { it.createCase() }
            Vault.openWithKeyFile(dir, key).use { v ->
                v.unlock(PASS)
                assertEquals(1, v.listCases().size)
            }
            File(key).delete()
            Vault.openWithKeyFile(dir, key).use { v ->
                val e = assertFailsWith<AmanatException.KeyProvider> { v.unlock(PASS) }
                assertEquals(KeyProviderErrorKind.KEY_MISSING, e.kind)
            }
            wipeVaultWithKeyFile(dir, key)
            assertFalse(vaultExists(dir))
        } finally {
            tmp.deleteRecursively()
        }
    }

    @Test
    fun closedShellProviderPassedToEveryCallIsATypedError() {
        val tmp = tmp()
        try {
            val dir = File(tmp, "vault").path
            val kp = ClosableKeyProvider()
            Vault.create(dir, PASS, kp, FAST).use { it.createCase() }
            kp.close()
            // open() does not call the provider; unlock() does, and gets a typed error.
            Vault.open(dir, kp).use { v ->
                val e = assertFailsWith<AmanatException.KeyProvider> { v.unlock(PASS) }
                assertEquals(KeyProviderErrorKind.UNAVAILABLE, e.kind)
                assertEquals(0u, v.unlockStatus().failedAttempts, "not counted as a wrong passcode")
            }
            val other = File(tmp, "other").path
            val created = assertFailsWith<AmanatException.KeyProvider> { Vault.create(other, PASS, kp, FAST) }
            assertEquals(KeyProviderErrorKind.UNAVAILABLE, created.kind)
            assertFalse(vaultExists(other))
            // A wipe goes on without the platform key (it only makes the data unreadable sooner).
            runCatching { wipeVault(dir, kp) }.exceptionOrNull()?.let {
                assertTrue(it is AmanatException, "typed: $it")
            }
        } finally {
            tmp.deleteRecursively()
        }
    }

    @Test
    fun everyRustObjectAfterDestroyThrowsInsteadOfCrashing() {
        val tmp = tmp()
        try {
            val v = Vault.createWithKeyFile(File(tmp, "vault").path, PASS, File(tmp, "k").path, FAST)
            val case = caseWithConsent(v, ConsentScope.INTERVIEW, ConsentScope.AUDIO)
            val i = v.startInterview(case.id, TEMPLATE, 1u, "en")
            val w = v.openAttachmentWriter(i.id, "narrative_audio", "audio/ogg", null)
            w.write(ByteArray(1000) { it.toByte() })
            val info = v.openAttachmentWriter(i.id, "narrative_audio", "audio/ogg", null)
                .use { it.write(byteArrayOf(1, 2, 3)); it.finish() }
            val r = v.openAttachment(info.id)

            w.destroy()
            assertFailsWith<IllegalStateException> { w.write(byteArrayOf(1)) }
            r.close()
            assertFailsWith<IllegalStateException> { r.readAll() }
            v.destroy()
            assertFailsWith<IllegalStateException> { v.listCases() }
            // destroy() twice is harmless.
            v.destroy(); w.destroy(); r.destroy()
        } finally {
            tmp.deleteRecursively()
        }
    }

    @Test
    fun platformTextNeverReachesTheError() {
        val tmp = tmp()
        try {
            val e = assertFailsWith<AmanatException.KeyProvider> {
                Vault.create(File(tmp, "vault").path, PASS, ChattyKeyProvider(), FAST)
            }
            assertEquals(KeyProviderErrorKind.UNAVAILABLE, e.kind)
            for (text in listOf(e.detail, e.message ?: "", e.toString())) {
                assertFalse(text.contains("PLATFORM-TEXT"), text)
                assertFalse(text.contains("secret-alias"), text)
            }
        } finally {
            tmp.deleteRecursively()
        }
    }
}
