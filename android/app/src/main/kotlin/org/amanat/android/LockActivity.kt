// The lock screen: choose a passcode (first run) or unlock. Attempts and waits come from the core's
// persisted counter; a duress passcode looks exactly like a correct one.
package org.amanat.android

import android.content.Intent
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import org.amanat.core.AmanatException
import org.amanat.core.KeyProviderErrorKind
import org.amanat.core.UnlockStatus

/**
 * First run: passcode + repeat → `Vault.create`. Later: passcode → `unlock`. The screen shows the
 * core's failed-attempt count and, while the core's backoff runs, a countdown with the button
 * disabled (the core refuses early attempts anyway). A duress passcode takes the same path and
 * shows the same next screen — the shell cannot tell and does not try. If the platform key is
 * gone (`KeyProvider` error, kind `KEY_MISSING`) the data cannot be opened: the screen says so and
 * offers the wipe.
 */
class LockActivity : SecureActivity() {
    override val needsUnlockedVault: Boolean = false

    private lateinit var title: TextView
    private lateinit var passcode: EditText
    private lateinit var confirm: EditText
    private lateinit var unlock: Button
    private lateinit var status: TextView
    private lateinit var wipe: Button
    private val ticker = Handler(Looper.getMainLooper())
    private var retryAtMs: Long? = null
    private var setup = false

    override fun onCreateScreen(savedInstanceState: Bundle?) {
        val col = Ui.column(this)
        title = Ui.title(this, "", R.id.title)
        passcode = Ui.password(this, getString(R.string.passcode_hint), R.id.passcode)
        confirm = Ui.password(this, getString(R.string.passcode_confirm_hint), R.id.passcode_confirm)
        unlock = Ui.button(this, "", R.id.unlock) { submit() }
        status = Ui.text(this, "", R.id.status)
        wipe = Ui.button(this, getString(R.string.button_wipe), R.id.wipe) { wipeUnopenable() }
        listOf(title, passcode, confirm, unlock, status, wipe).forEach(col::addView)
        setContentView(Ui.scroll(this, col))
    }

    override fun onResume() {
        super.onResume()
        refresh()
    }

    override fun onPause() {
        super.onPause()
        ticker.removeCallbacksAndMessages(null)
    }

    private fun refresh() {
        io({
            val session = app.session
            when {
                session.isUnlocked() -> null
                !session.exists() -> Pair(true, null)
                else -> Pair(false, session.status())
            }
        }) { r ->
            r.onSuccess { state ->
                if (state == null) return@onSuccess openCases()
                setup = state.first
                wipe.visibility = View.GONE
                title.setText(if (setup) R.string.lock_title_setup else R.string.lock_title_unlock)
                confirm.visibility = if (setup) View.VISIBLE else View.GONE
                unlock.setText(if (setup) R.string.button_create else R.string.button_unlock)
                state.second?.let(::showStatus) ?: status.setText("")
            }.onFailure(::showError)
        }
    }

    private fun showStatus(s: UnlockStatus) {
        if (s.failedAttempts > 0u) status.text = getString(R.string.status_wrong_passcode, s.failedAttempts.toInt())
        waitUntil(s.retryAtMs?.toLong())
    }

    /** Disables the button until [atMs] (the core's retry time), counting down each second. */
    private fun waitUntil(atMs: Long?) {
        retryAtMs = atMs
        ticker.removeCallbacksAndMessages(null)
        tick()
    }

    private fun tick() {
        val at = retryAtMs
        val left = if (at == null) 0L else at - System.currentTimeMillis()
        if (left <= 0) {
            unlock.isEnabled = true
            return
        }
        unlock.isEnabled = false
        status.text = getString(R.string.status_wait, (left + 999) / 1000)
        ticker.postDelayed(::tick, 1000)
    }

    private fun submit() {
        // The passcode leaves the view at once; the core zeroizes its own copy.
        val code = passcode.text.toString()
        val again = confirm.text.toString()
        passcode.text.clear()
        confirm.text.clear()
        if (setup && code != again) {
            status.setText(R.string.error_passcode_mismatch)
            return
        }
        unlock.isEnabled = false
        val creating = setup
        io({ if (creating) app.session.create(code) else app.session.unlock(code) }) { r ->
            r.onSuccess {
                app.onUnlocked()
                openCases()
            }.onFailure(::showError)
        }
    }

    private fun showError(e: Throwable) {
        unlock.isEnabled = true
        status.text = Messages.of(resources, e)
        when (e) {
            is AmanatException.WrongPasscode -> waitUntil(e.retryAtMs?.toLong())
            is AmanatException.Backoff -> waitUntil(e.retryAtMs.toLong())
            is AmanatException.KeyProvider -> if (e.kind == KeyProviderErrorKind.KEY_MISSING) {
                unlock.isEnabled = false
                wipe.visibility = View.VISIBLE
            }
            else -> {}
        }
    }

    private fun wipeUnopenable() {
        io({ app.session.wipeUnopenable() }) { r ->
            app.resetSession()
            r.onFailure(::showError).onSuccess { refresh() }
        }
    }

    private fun openCases() {
        startActivity(Intent(this, CaseListActivity::class.java).addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_CLEAR_TASK))
        finish()
    }
}
