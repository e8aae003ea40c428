// Change the passcode; set the emergency (duress) passcode. Both checks are the core's.
package org.amanat.android

import android.os.Bundle
import android.widget.EditText
import android.widget.TextView
import org.amanat.core.AmanatException

/**
 * Two forms: current + new passcode (twice) → `Vault.changePasscode`; current + emergency
 * passcode (twice) → `Vault.setDuressPasscode`. The only check here is that both copies match
 * (a typing check); length, the difference between the two passcodes and the current passcode
 * are judged by the core and its typed errors shown. A wrong current passcode counts as a failed
 * attempt in the core's backoff, like one on the lock screen. Fields are cleared as soon as they
 * are read.
 */
class PasscodeActivity : SecureActivity() {
    private lateinit var current: EditText
    private lateinit var fresh: EditText
    private lateinit var freshAgain: EditText
    private lateinit var changeStatus: TextView
    private lateinit var duressCurrent: EditText
    private lateinit var duress: EditText
    private lateinit var duressAgain: EditText
    private lateinit var duressStatus: TextView

    override fun onCreateScreen(savedInstanceState: Bundle?) {
        val col = Ui.column(this)
        col.addView(Ui.title(this, getString(R.string.passcode_title), R.id.title))
        col.addView(Ui.text(this, getString(R.string.passcode_change_title)))
        current = Ui.password(this, getString(R.string.passcode_current_hint), R.id.current_passcode)
        fresh = Ui.password(this, getString(R.string.passcode_new_hint), R.id.new_passcode)
        freshAgain = Ui.password(this, getString(R.string.passcode_new_confirm_hint), R.id.new_passcode_confirm)
        changeStatus = Ui.text(this, "", R.id.change_status)
        listOf(current, fresh, freshAgain).forEach(col::addView)
        col.addView(Ui.button(this, getString(R.string.button_change_passcode), R.id.change_passcode) { change() })
        col.addView(changeStatus)

        col.addView(Ui.text(this, getString(R.string.duress_title)))
        col.addView(Ui.text(this, getString(R.string.duress_explain)))
        duressCurrent = Ui.password(this, getString(R.string.passcode_current_hint), R.id.duress_current)
        duress = Ui.password(this, getString(R.string.duress_hint), R.id.duress_passcode)
        duressAgain = Ui.password(this, getString(R.string.duress_confirm_hint), R.id.duress_confirm)
        duressStatus = Ui.text(this, "", R.id.duress_status)
        listOf(duressCurrent, duress, duressAgain).forEach(col::addView)
        col.addView(Ui.button(this, getString(R.string.button_set_duress), R.id.set_duress) { setDuress() })
        col.addView(duressStatus)
        setContentView(Ui.scroll(this, col))
    }

    private fun take(e: EditText): String = e.text.toString().also { e.text.clear() }

    private fun change() {
        val cur = take(current)
        val new = take(fresh)
        val again = take(freshAgain)
        if (new != again) return changeStatus.setText(R.string.error_passcode_mismatch)
        io({ app.session.unlocked().changePasscode(cur, new) }) { r ->
            r.onSuccess { changeStatus.setText(R.string.passcode_changed) }
                .onFailure { show(changeStatus, it) }
        }
    }

    private fun setDuress() {
        val cur = take(duressCurrent)
        val code = take(duress)
        val again = take(duressAgain)
        if (code != again) return duressStatus.setText(R.string.error_passcode_mismatch)
        io({ app.session.unlocked().setDuressPasscode(cur, code) }) { r ->
            r.onSuccess { duressStatus.setText(R.string.duress_set) }
                .onFailure { show(duressStatus, it) }
        }
    }

    private fun show(where: TextView, e: Throwable) {
        when (e) {
            is AmanatException.Locked -> toLockScreen()
            // Here the passcode typed is the *current* one: say so rather than the lock screen's text.
            is AmanatException.WrongPasscode -> where.setText(R.string.error_wrong_current_passcode)
            else -> where.text = Messages.of(resources, e)
        }
    }
}
