// Test support: the shell wired to the real core with fast KDF parameters, an in-memory
// wrapping key standing in for AndroidKeyStore, a fake microphone, and helpers to drive screens.
package org.amanat.android

import android.app.Activity
import android.content.Intent
import android.os.Looper
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.view.View
import android.view.ViewGroup
import android.view.WindowManager
import org.amanat.core.KdfParams
import org.amanat.core.Transport
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.robolectric.Robolectric
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.android.controller.ActivityController
import java.util.concurrent.Executor
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey

const val PASS = "246810"
const val DURESS = "135791"
val FAST = KdfParams(mKib = 256u, t = 1u, p = 1u)

/**
 * The JVM double of AndroidKeyStore: an AES-256 key in memory. [invalidate] makes every use throw
 * [KeyPermanentlyInvalidatedException], as AndroidKeyStore does once the screen lock is removed.
 */
class MemoryKeyStore : WrappingKeyStore {
    private var key: SecretKey? = null
    @Volatile var invalidated = false
    var created = 0

    override fun find(): SecretKey? {
        if (invalidated) throw KeyPermanentlyInvalidatedException()
        return key
    }

    override fun create(): SecretKey {
        if (invalidated) throw KeyPermanentlyInvalidatedException()
        created++
        return KeyGenerator.getInstance("AES").apply { init(256) }.generateKey().also { key = it }
    }

    override fun delete() {
        key = null
        invalidated = false // the alias is gone; a new key can be made
    }
}

/** A microphone that hands out [total] known bytes in chunks of [chunk], then ends. */
class FakeAudioSource(private val total: Int, private val chunk: Int = 10_000) : AudioSource {
    override val mediaType = "audio/wav"
    var started = false
    var closed = false
    private var sent = 0

    override fun start() {
        started = true
    }

    override fun read(buffer: ByteArray): Int {
        if (sent >= total) return -1
        val n = minOf(chunk, total - sent, buffer.size)
        for (i in 0 until n) buffer[i] = expected(sent + i)
        sent += n
        return n
    }

    override fun stop() {}

    override fun close() {
        closed = true
    }

    companion object {
        fun expected(i: Int): Byte = ((i * 31) % 251).toByte()
        fun bytes(total: Int) = ByteArray(total) { expected(it) }
    }
}

val direct = Executor { it.run() }

/** The app under test with its config replaced: real core, fast KDF, memory key, fake audio. */
class TestShell(
    val keys: MemoryKeyStore = MemoryKeyStore(),
    var audio: () -> AudioSource = { FakeAudioSource(100_000) },
    /** Runs sync sessions: inline by default; a real thread where a test cancels mid-run. */
    sync: Executor = direct,
    var transport: () -> Transport = { HttpsTransport() },
    longUploadMs: Long = 5_000,
) {
    val app: AmanatApp = RuntimeEnvironment.getApplication() as AmanatApp

    init {
        app.resetSession()
        app.config = ShellConfig(
            keyProvider = KeystoreKeyProvider(keys),
            kdfParams = FAST,
            audioSource = { audio() },
            io = direct,
            recorder = direct,
            workerId = "worker-7",
            transport = { transport() },
            sync = sync,
            longUploadMs = longUploadMs,
        )
    }

    val session get() = app.session
}

/** Runs what the screens posted to the main thread. */
fun idle() = shadowOf(Looper.getMainLooper()).idle()

/** Starts [cls] (created, started, resumed, visible) and runs its posted work. */
fun <T : Activity> launch(cls: Class<T>, intent: Intent? = null): ActivityController<T> {
    val c = if (intent == null) Robolectric.buildActivity(cls) else Robolectric.buildActivity(cls, intent)
    c.setup()
    idle()
    return c
}

/** The intent [a] started last, asserting it targets [cls]. */
fun <T : Activity> nextStarted(a: Activity, cls: Class<T>): Intent {
    val i = shadowOf(a).nextStartedActivity
    assertNotNull("no activity started by ${a.javaClass.simpleName}", i)
    assertEquals(cls.name, i.component?.className)
    return i
}

fun Activity.secureFlagSet(): Boolean = window.attributes.flags and WindowManager.LayoutParams.FLAG_SECURE != 0

fun assertSecure(a: Activity) = assertTrue("${a.javaClass.simpleName} lacks FLAG_SECURE", a.secureFlagSet())

/** The view with [tag] under the activity's content. */
fun <V : View> Activity.tagged(tag: String): V {
    val root = window.decorView
    @Suppress("UNCHECKED_CAST")
    return (root.findViewWithTag<View>(tag) ?: throw AssertionError("no view tagged $tag")) as V
}

/** All texts under [v] (for "nothing of X is shown" checks). */
fun allTexts(v: View): List<String> = when (v) {
    is android.widget.TextView -> listOf(v.text.toString())
    is ViewGroup -> (0 until v.childCount).flatMap { allTexts(v.getChildAt(it)) }
    else -> emptyList()
}

/** The view with [id], which must exist. */
fun <V : View> Activity.view(id: Int): V = findViewById<V>(id) ?: throw AssertionError("no view with id $id")
