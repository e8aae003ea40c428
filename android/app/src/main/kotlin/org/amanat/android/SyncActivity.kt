// The sync screen: what the core says about sync (pending, wedged, last success, backoff,
// clashes), "sync now" with progress and a stop button.
package org.amanat.android

import android.content.Intent
import android.os.Bundle
import android.view.View
import android.widget.Button
import android.widget.CheckBox
import android.widget.LinearLayout
import android.widget.TextView
import org.amanat.core.AmanatException
import org.amanat.core.ClashChoice
import org.amanat.core.SyncClash
import org.amanat.core.SyncEntryKind
import org.amanat.core.SyncInterruption
import org.amanat.core.SyncObserver
import org.amanat.core.SyncPhase
import org.amanat.core.SyncProgress
import org.amanat.core.SyncReport
import org.amanat.core.SyncSession
import org.amanat.core.SyncStatus
import java.text.DateFormat
import java.util.Date

/**
 * Everything shown comes from `syncStatus()` and `clashes()`, read again after every action; the
 * screen decides nothing. "Sync now" makes a `SyncSession` and runs it on [ShellConfig.sync]
 * (never the main thread), showing the core's `SyncProgress`; "Stop" calls `SyncSession.cancel`
 * (the core stops at its next step boundary; nothing is lost). A transient failure (no
 * connection, 5xx, 429) is a sentence here, not an error: entries stay queued. Wedged entries
 * (refused for good by the relay) can be sent again (all) or discarded (one by one, the user's
 * explicit choice). Clashes show each device's value (survivor data, on this `FLAG_SECURE` screen
 * only) and are resolved by keeping one or clearing the field.
 */
class SyncActivity : SecureActivity() {
    private lateinit var enrolled: TextView
    private lateinit var openEnroll: Button
    private lateinit var pending: TextView
    private lateinit var last: TextView
    private lateinit var failures: TextView
    private lateinit var syncNow: Button
    private lateinit var cancel: Button
    private lateinit var progress: TextView
    private lateinit var result: TextView
    private lateinit var wedgedList: LinearLayout
    private lateinit var clashList: LinearLayout
    private lateinit var status: TextView

    /** The run in progress, if any (cancelled from the Stop button or when the screen goes). */
    @Volatile
    private var running: SyncSession? = null

    override fun onCreateScreen(savedInstanceState: Bundle?) {
        val col = Ui.column(this)
        col.addView(Ui.title(this, getString(R.string.sync_title), R.id.title))
        enrolled = Ui.text(this, "", R.id.sync_enrolled)
        openEnroll = Ui.button(this, getString(R.string.button_enroll_screen), R.id.open_enroll) {
            startActivity(Intent(this, EnrollActivity::class.java))
        }
        pending = Ui.text(this, "", R.id.sync_pending)
        last = Ui.text(this, "", R.id.sync_last)
        failures = Ui.text(this, "", R.id.sync_failures)
        val unmetered = CheckBox(this).apply {
            id = R.id.unmetered_only
            setText(R.string.sync_unmetered_only)
            isChecked = SyncScheduler.unmeteredOnly(this@SyncActivity)
            setOnCheckedChangeListener { _, on -> SyncScheduler.setUnmeteredOnly(this@SyncActivity, on) }
        }
        syncNow = Ui.button(this, getString(R.string.button_sync_now), R.id.sync_now) { syncNow() }
        cancel = Ui.button(this, getString(R.string.button_sync_cancel), R.id.sync_cancel) { running?.cancel() }
        cancel.isEnabled = false
        progress = Ui.text(this, "", R.id.sync_progress)
        result = Ui.text(this, "", R.id.sync_result)
        wedgedList = LinearLayout(this).apply {
            id = R.id.wedged_list
            orientation = LinearLayout.VERTICAL
        }
        clashList = LinearLayout(this).apply {
            id = R.id.clash_list
            orientation = LinearLayout.VERTICAL
        }
        status = Ui.text(this, "", R.id.status)
        listOf(enrolled, openEnroll, pending, last, failures, unmetered, syncNow, cancel, progress, result,
            wedgedList, clashList, status).forEach(col::addView)
        setContentView(Ui.scroll(this, col))
    }

    override fun onResume() {
        super.onResume()
        refresh()
    }

    override fun onDestroy() {
        running?.cancel()
        super.onDestroy()
    }

    /** Reads the status, the enrollment and the clashes from the core, and shows them. */
    private fun refresh() {
        io({
            val v = app.session.unlocked()
            Triple(v.syncStatus(), v.enrollment()?.deviceId, v.clashes())
        }) { r ->
            r.onSuccess { (s, deviceId, clashes) -> show(s, deviceId, clashes) }.onFailure(::fail)
        }
    }

    private fun show(s: SyncStatus, deviceId: String?, clashes: List<SyncClash>) {
        enrolled.text = if (deviceId != null) getString(R.string.sync_enrolled, deviceId) else getString(R.string.sync_not_enrolled)
        openEnroll.visibility = if (s.enrolled) View.GONE else View.VISIBLE
        syncNow.isEnabled = s.enrolled && running == null
        pending.text = getString(R.string.sync_pending, s.pending.toLong())
        last.text = s.lastSuccessMs?.let { getString(R.string.sync_last, time(it.toLong())) } ?: getString(R.string.sync_last_never)
        if (s.consecutiveFailures > 0u) {
            failures.visibility = View.VISIBLE
            failures.text = getString(R.string.sync_failures, s.consecutiveFailures.toInt(),
                s.nextAttemptMs?.let { time(it.toLong()) } ?: "—")
        } else {
            failures.visibility = View.GONE
            failures.text = ""
        }

        wedgedList.removeAllViews()
        if (s.wedged.isNotEmpty()) {
            wedgedList.addView(Ui.text(this, getString(R.string.sync_wedged_title)))
            for (w in s.wedged) {
                // The reason is the relay's stable code (`envelope_too_large`, `http_413` …), never data.
                wedgedList.addView(Ui.text(this, getString(R.string.sync_wedged_entry, kind(w.kind), w.seq.toString(), w.reason))
                    .apply { tag = "wedged:${w.seq}" })
                wedgedList.addView(Ui.button(this, getString(R.string.button_discard_wedged)) { discard(w.seq) }
                    .apply { tag = "discard:${w.seq}" })
            }
            wedgedList.addView(Ui.button(this, getString(R.string.button_retry_wedged), R.id.retry_wedged) { retryWedged() })
        }

        clashList.removeAllViews()
        if (clashes.isNotEmpty()) clashList.addView(Ui.text(this, getString(R.string.sync_clashes_title)))
        for (c in clashes) {
            clashList.addView(Ui.text(this, c.field).apply { tag = "clash:${c.id}" })
            c.values.forEachIndexed { i, v ->
                val shown = v.value ?: getString(R.string.clash_empty_value)
                clashList.addView(Ui.button(this, getString(R.string.button_keep_value, shown)) {
                    resolve(c.id, ClashChoice.Keep(i.toUInt()))
                }.apply { tag = "keep:${c.id}:$i" })
            }
            clashList.addView(Ui.button(this, getString(R.string.button_clear_value)) { resolve(c.id, ClashChoice.Clear) }
                .apply { tag = "clear:${c.id}" })
        }
    }

    private fun time(ms: Long): String =
        DateFormat.getDateTimeInstance(DateFormat.SHORT, DateFormat.SHORT, resources.configuration.locales[0]).format(Date(ms))

    private fun kind(k: SyncEntryKind): String = getString(when (k) {
        SyncEntryKind.CASE -> R.string.kind_case
        SyncEntryKind.IDENTITY -> R.string.kind_identity
        SyncEntryKind.CONSENT -> R.string.kind_consent
        SyncEntryKind.INTERVIEW -> R.string.kind_interview
        SyncEntryKind.AUDIT -> R.string.kind_audit
        SyncEntryKind.WITHDRAWAL -> R.string.kind_withdrawal
        SyncEntryKind.ATTACHMENT -> R.string.kind_attachment
        SyncEntryKind.DEVICE -> R.string.kind_device
    })

    private fun syncNow() {
        if (running != null) return
        val session = try {
            app.session.unlocked().syncSession(app.config.transport())
        } catch (e: Exception) {
            return fail(e)
        }
        running = session
        syncNow.isEnabled = false
        cancel.isEnabled = true
        progress.setText(R.string.sync_running)
        result.text = ""
        val observer = object : SyncObserver {
            override fun onProgress(progress: SyncProgress) {
                // Called on the syncing thread: hand the numbers to the main thread.
                onMain { showProgress(progress) }
            }
        }
        app.config.sync.execute {
            val r = try {
                Result.success(session.run(observer))
            } catch (e: Exception) {
                Result.failure(e)
            }
            onMain { finished(session, r) }
        }
    }

    private fun showProgress(p: SyncProgress) {
        if (running == null) return
        val res = when (p.phase) {
            SyncPhase.PREPARE -> R.string.sync_phase_prepare
            SyncPhase.PUSH -> R.string.sync_phase_push
            SyncPhase.UPLOAD -> R.string.sync_phase_upload
            SyncPhase.PULL -> R.string.sync_phase_pull
            SyncPhase.DOWNLOAD -> R.string.sync_phase_download
        }
        progress.text = getString(res, p.done.toLong(), p.total.toLong())
    }

    private fun finished(session: SyncSession, r: Result<SyncReport>) {
        running = null
        session.destroy()
        cancel.isEnabled = false
        progress.text = ""
        r.onSuccess { result.text = describe(it) }.onFailure { e ->
            if (e is AmanatException.Revoked) {
                // The core wiped the vault: show the wiped state (the lock screen, as for a new phone).
                app.resetSession()
                return toLockScreen()
            }
            result.text = Messages.of(resources, e)
        }
        refresh()
    }

    private fun describe(r: SyncReport): String = when (val i = r.interrupted) {
        null -> getString(R.string.sync_done, r.pushed.toLong(), r.pulled.toLong())
        is SyncInterruption.Cancelled -> getString(R.string.sync_cancelled)
        is SyncInterruption.Transport -> getString(R.string.sync_interrupted_network)
        is SyncInterruption.Server -> getString(R.string.sync_interrupted_server, i.status.toInt())
        is SyncInterruption.RateLimited -> getString(R.string.sync_interrupted_busy)
    }

    private fun retryWedged() {
        io({ app.session.unlocked().retryWedged() }) { r -> r.onSuccess { refresh() }.onFailure(::fail) }
    }

    private fun discard(seq: ULong) {
        io({ app.session.unlocked().discardWedged(seq) }) { r -> r.onSuccess { refresh() }.onFailure(::fail) }
    }

    private fun resolve(clashId: String, choice: ClashChoice) {
        io({ app.session.unlocked().resolveClash(clashId, choice) }) { r ->
            r.onFailure(::fail)
            refresh()
        }
    }

    private fun fail(e: Throwable) {
        if (e is AmanatException.Locked) return toLockScreen()
        status.text = Messages.of(resources, e)
    }
}
