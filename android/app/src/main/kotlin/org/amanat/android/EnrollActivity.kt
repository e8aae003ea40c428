// Connect this phone to the organisation: the enrollment code HQ handed out → `Vault.enroll`.
package org.amanat.android

import android.os.Bundle
import android.text.InputType
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import org.amanat.core.AmanatException

/**
 * The code as `amanat device enroll` prints it (pasted or typed), and the relay's address only
 * when the code names none (the core says `NoRelayUrl` then; a code that names one refuses any
 * other, `RelayUrlMismatch`). Everything is checked by the core — the code's signature, the
 * organisation the relay returns, the URL rule (https, or http to loopback only). One request,
 * through the app's [HttpsTransport], off the main thread. On success the screen closes to the
 * sync screen and the background job is scheduled.
 */
class EnrollActivity : SecureActivity() {
    private lateinit var code: EditText
    private lateinit var relay: EditText
    private lateinit var enroll: Button
    private lateinit var status: TextView

    override fun onCreateScreen(savedInstanceState: Bundle?) {
        val col = Ui.column(this)
        col.addView(Ui.title(this, getString(R.string.enroll_title), R.id.title))
        code = EditText(this).apply {
            id = R.id.enroll_code
            hint = getString(R.string.enroll_code_hint)
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE or InputType.TYPE_TEXT_FLAG_NO_SUGGESTIONS
            imeOptions = imeOptions or android.view.inputmethod.EditorInfo.IME_FLAG_NO_PERSONALIZED_LEARNING
        }
        relay = EditText(this).apply {
            id = R.id.enroll_relay
            hint = getString(R.string.enroll_relay_hint)
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI
            imeOptions = imeOptions or android.view.inputmethod.EditorInfo.IME_FLAG_NO_PERSONALIZED_LEARNING
        }
        enroll = Ui.button(this, getString(R.string.button_enroll), R.id.enroll) { enroll() }
        status = Ui.text(this, "", R.id.status)
        listOf(code, relay, enroll, status).forEach(col::addView)
        setContentView(Ui.scroll(this, col))
    }

    private fun enroll() {
        val c = code.text.toString().trim()
        val url = relay.text.toString().trim().ifEmpty { null }
        enroll.isEnabled = false
        val transport = app.config.transport()
        io({ app.session.unlocked().enroll(c, url, transport) }) { r ->
            enroll.isEnabled = true
            r.onSuccess { e ->
                code.text.clear()
                status.text = getString(R.string.enroll_done, e.deviceId)
                SyncScheduler.schedule(this)
                finish()
            }.onFailure { e ->
                if (e is AmanatException.Locked) toLockScreen() else status.text = Messages.of(resources, e)
            }
        }
    }
}
