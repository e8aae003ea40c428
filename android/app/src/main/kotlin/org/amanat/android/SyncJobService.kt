// Background sync: one JobScheduler job (framework API, no WorkManager) that runs one sync session
// of the core while the vault is unlocked.
package org.amanat.android

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.job.JobInfo
import android.app.job.JobParameters
import android.app.job.JobScheduler
import android.app.job.JobService
import android.content.ComponentName
import android.content.Context
import android.os.Build
import android.os.Handler
import android.os.Looper
import android.os.SystemClock
import org.amanat.core.SyncObserver
import org.amanat.core.SyncPhase
import org.amanat.core.SyncProgress
import org.amanat.core.SyncReport
import org.amanat.core.SyncSession

/**
 * Schedules the sync job. One job id: scheduling again replaces the pending job.
 *
 * - Network: any network by default; "only on Wi-Fi" (a setting on the sync screen, kept in the
 *   app's private preferences — not survivor data) makes it `NETWORK_TYPE_UNMETERED`.
 * - Backoff: exponential from 30 s (the framework doubles it up to its 5 h cap) whenever a run
 *   ends transiently (no connection, relay 5xx/429) or the system stops the job.
 * - Persisted across reboots (`RECEIVE_BOOT_COMPLETED`). After a reboot the vault is locked, so
 *   the job skips (see [SyncJobService]) until the next unlock schedules it again.
 */
object SyncScheduler {
    const val JOB_ID = 7301
    const val INITIAL_BACKOFF_MS = 30_000L
    private const val PREFS = "sync"
    private const val KEY_UNMETERED = "unmetered_only"

    fun unmeteredOnly(context: Context): Boolean =
        context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).getBoolean(KEY_UNMETERED, false)

    /** Stores the "only on Wi-Fi" setting and reschedules with it. */
    fun setUnmeteredOnly(context: Context, on: Boolean) {
        context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).edit().putBoolean(KEY_UNMETERED, on).apply()
        schedule(context)
    }

    /** The job as it is scheduled (a function so tests can compare). */
    fun jobInfo(context: Context): JobInfo =
        JobInfo.Builder(JOB_ID, ComponentName(context, SyncJobService::class.java))
            .setRequiredNetworkType(
                if (unmeteredOnly(context)) JobInfo.NETWORK_TYPE_UNMETERED else JobInfo.NETWORK_TYPE_ANY,
            )
            .setBackoffCriteria(INITIAL_BACKOFF_MS, JobInfo.BACKOFF_POLICY_EXPONENTIAL)
            .setPersisted(true)
            .build()

    /** Schedules (or replaces) the sync job. */
    fun schedule(context: Context) {
        context.getSystemService(JobScheduler::class.java)?.schedule(jobInfo(context))
    }
}

/**
 * Runs one sync session of the core per job, on [ShellConfig.sync] (never the main thread).
 *
 * - **Locked vault**: the key is in memory only while the vault is unlocked, and the app locks
 *   it as soon as it leaves the screen. A job that starts while the vault is locked does nothing
 *   and finishes without asking to be rescheduled (`jobFinished(params, false)` is implied by
 *   returning `false`); the next unlock schedules it again ([AmanatApp.onUnlocked]). In practice
 *   the job therefore syncs while the app is in use (and during the camera's grace period), not
 *   when the phone is in a pocket.
 * - **Outcome**: a run that completes finishes the job; a transient interruption (no connection,
 *   5xx, 429) asks for a reschedule, so JobScheduler's exponential backoff applies; an error no
 *   retry fixes (not enrolled, refused, revoked, locked mid-run) finishes it without reschedule.
 * - **`onStopJob`** (constraints lost, quota, timeout, user): cancels the session — the core stops
 *   at its next step boundary, nothing half-written — and asks for a reschedule.
 * - **Long uploads**: when attachments have been uploading for [ShellConfig.longUploadMs], the job
 *   attaches a notification to itself with `JobService.setNotification` (Android 14+, the
 *   framework's own way to tie a notification to a running job; no separate foreground service).
 *   It says only "Sending encrypted files" — no case, no name, no count — and is hidden on the
 *   lock screen (`VISIBILITY_SECRET`). Below Android 14 there is no notification: the upload runs
 *   inside the job's normal window, and an upload cut short resumes from the relay's offset on
 *   the next run (the core's resumable blob API).
 */
class SyncJobService : JobService() {
    private val main = Handler(Looper.getMainLooper())

    @Volatile
    private var running: SyncSession? = null

    /** The last run's report (tests read it; it holds counts only). */
    @Volatile
    var lastReport: SyncReport? = null
        private set

    /** The notification attached to the job, if a long upload asked for one (tests read it). */
    @Volatile
    var uploadNotification: Notification? = null
        private set

    override fun onStartJob(params: JobParameters): Boolean {
        val app = application as AmanatApp
        val vault = try {
            app.session.unlocked()
        } catch (e: Exception) {
            return false // locked: skip; the next unlock schedules the job again
        }
        val session = vault.syncSession(app.config.transport())
        running = session
        val observer = LongUploadObserver(app.config.longUploadMs) { main.post { showUploadNotification(params) } }
        app.config.sync.execute {
            val result = try {
                Result.success(session.run(observer))
            } catch (e: Exception) {
                Result.failure(e)
            }
            main.post { finished(params, session, result) }
        }
        return true
    }

    private fun finished(params: JobParameters, session: SyncSession, result: Result<SyncReport>) {
        val stopped = session.isCancelled()
        if (running === session) running = null
        session.destroy()
        result.onSuccess { lastReport = it }
        // After onStopJob the framework has already ended the job: no jobFinished then.
        if (stopped) return
        val transient = result.getOrNull()?.interrupted != null
        jobFinished(params, transient)
    }

    override fun onStopJob(params: JobParameters): Boolean {
        running?.cancel()
        return true
    }

    private fun showUploadNotification(params: JobParameters) {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.UPSIDE_DOWN_CAKE || running == null) return
        val n = uploadNotification(this)
        uploadNotification = n
        setNotification(params, NOTIFICATION_ID, n, JOB_END_NOTIFICATION_POLICY_REMOVE)
    }

    /** Calls [onLong] once, when the upload phase has lasted [thresholdMs]. */
    private class LongUploadObserver(private val thresholdMs: Long, private val onLong: () -> Unit) : SyncObserver {
        private var uploadSince = -1L
        private var shown = false

        override fun onProgress(progress: SyncProgress) {
            if (progress.phase != SyncPhase.UPLOAD || shown) return
            val now = SystemClock.elapsedRealtime()
            if (uploadSince < 0) uploadSince = now
            if (now - uploadSince >= thresholdMs) {
                shown = true
                onLong()
            }
        }
    }

    companion object {
        const val CHANNEL_ID = "sync"
        const val NOTIFICATION_ID = 7302

        /** The low-importance channel of the upload notification (Android 8+). */
        fun createChannel(context: Context) {
            val channel = NotificationChannel(
                CHANNEL_ID,
                context.getString(R.string.notification_channel_sync),
                NotificationManager.IMPORTANCE_LOW,
            ).apply {
                lockscreenVisibility = Notification.VISIBILITY_SECRET
                setShowBadge(false)
            }
            context.getSystemService(NotificationManager::class.java)?.createNotificationChannel(channel)
        }

        /** The notification: one generic sentence, nothing about cases or people. */
        fun uploadNotification(context: Context): Notification =
            Notification.Builder(context, CHANNEL_ID)
                .setSmallIcon(android.R.drawable.stat_sys_upload)
                .setContentTitle(context.getString(R.string.notification_upload))
                .setVisibility(Notification.VISIBILITY_SECRET)
                .setCategory(Notification.CATEGORY_PROGRESS)
                .setOngoing(true)
                .setOnlyAlertOnce(true)
                .setProgress(0, 0, true)
                .build()
    }
}
