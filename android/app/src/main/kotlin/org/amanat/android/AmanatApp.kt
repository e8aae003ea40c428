// The application: one vault session per process, the platform pieces the screens use, and the
// auto-lock when the app leaves the screen.
package org.amanat.android

import android.app.Activity
import android.app.Application
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.os.SystemClock
import org.amanat.core.KdfParams
import org.amanat.core.KeyProvider
import org.amanat.core.Transport
import org.amanat.core.defaultKdfParams
import java.io.File
import java.util.concurrent.Executor
import java.util.concurrent.Executors

/**
 * The platform pieces the shell uses, in one place so JVM tests can swap them: the key provider
 * (Keystore on a phone, a double in tests), the KDF cost (production cost on a phone), where
 * audio comes from, and the executors that keep blocking core calls off the main thread.
 */
class ShellConfig(
    /** Wraps the vault key; created once per process. */
    val keyProvider: KeyProvider,
    /** Argon2id cost of a new vault's passcode slot. */
    val kdfParams: KdfParams,
    /** A fresh audio source for each recording. */
    val audioSource: () -> AudioSource,
    /** Runs core calls (they block: Argon2id takes a noticeable fraction of a second). */
    val io: Executor,
    /** Runs a recording (a long loop, so it does not hold up [io]). */
    val recorder: Executor,
    /** The field worker's id written into consent records (set at enrollment; a placeholder until then). */
    val workerId: String,
    /** The HTTP stack handed to the core for enrollment and sync ([HttpsTransport] on a phone). */
    val transport: () -> Transport = { HttpsTransport() },
    /** Runs sync sessions (minutes long, so they hold up neither [io] nor the main thread). */
    val sync: Executor = Executors.newSingleThreadExecutor(),
    /** How long attachments must have been uploading before the job shows its notification. */
    val longUploadMs: Long = 5_000,
)

/** The application object: holds the [VaultSession] and locks it when no activity is visible. */
class AmanatApp : Application() {
    /** Replaced by tests before the first screen uses it. */
    lateinit var config: ShellConfig

    private var sessionOrNull: VaultSession? = null

    /** The vault session, created on first use from [config]. */
    val session: VaultSession
        get() = sessionOrNull ?: VaultSession(vaultDir().path, config.keyProvider, config.kdfParams)
            .also { sessionOrNull = it }

    private var started = 0
    private var excursionUntil = 0L
    private val main by lazy { Handler(Looper.getMainLooper()) }
    private val lockNow = Runnable { sessionOrNull?.lock() }

    override fun onCreate() {
        super.onCreate()
        config = ShellConfig(
            keyProvider = KeystoreKeyProvider(AndroidKeystoreKey(strongBoxAvailable = AndroidKeystoreKey.hasStrongBox(this))),
            kdfParams = defaultKdfParams(),
            audioSource = { AudioRecordSource() },
            io = Executors.newSingleThreadExecutor(),
            recorder = Executors.newSingleThreadExecutor(),
            workerId = "worker",
        )
        registerActivityLifecycleCallbacks(AutoLock())
        SyncJobService.createChannel(this)
        // A photo shot that was never imported (the process died in between) is shredded now.
        CaptureProvider.dir(this).listFiles()?.forEach(CaptureProvider::discard)
    }

    /**
     * Lets the app go to the background for at most [ms] without locking at once — for the camera
     * app, which has to come in front to take a photo. The vault still locks when the time is up;
     * coming back cancels the timer.
     */
    fun allowExcursion(ms: Long) {
        excursionUntil = SystemClock.elapsedRealtime() + ms
    }

    /**
     * The vault's folder: `filesDir` is credential-protected storage (readable only after the
     * user has unlocked the phone once since boot) and excluded from backup by the manifest's
     * rules. Never the device-protected storage.
     */
    fun vaultDir(): File = File(filesDir, "vault")

    /**
     * Called by the lock screen after every unlock: (re)schedules the background sync job, which
     * can only do its work while the vault is unlocked (the key is in memory only then).
     */
    fun onUnlocked() {
        SyncScheduler.schedule(this)
    }

    /** Drops the session (after a wipe), so the next use opens whatever is on disk. */
    fun resetSession() {
        sessionOrNull?.close()
        sessionOrNull = null
    }

    /**
     * Locks the vault when the last visible activity stops — the app went to the background, the
     * screen went off, or another app came on top — unless it is only a rotation. Coming back then
     * goes through the lock screen ([SecureActivity.onStart]).
     */
    private inner class AutoLock : ActivityLifecycleCallbacks {
        override fun onActivityStarted(activity: Activity) {
            started++
            main.removeCallbacks(lockNow)
            excursionUntil = 0L
        }

        override fun onActivityStopped(activity: Activity) {
            started--
            if (started <= 0 && !activity.isChangingConfigurations) {
                started = 0
                val grace = excursionUntil - SystemClock.elapsedRealtime()
                if (grace > 0) main.postDelayed(lockNow, grace) else lockNow.run()
            }
        }

        override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) {}
        override fun onActivityResumed(activity: Activity) {}
        override fun onActivityPaused(activity: Activity) {}
        override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) {}
        override fun onActivityDestroyed(activity: Activity) {}
    }
}
