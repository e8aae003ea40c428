// The case list: case codes only (no names: identity fields stay behind the case screen).
package org.amanat.android

import android.content.Intent
import android.os.Bundle
import android.widget.LinearLayout
import android.widget.TextView

/** Lists the cases by code (newest first, as the core returns them); new case, lock, panic wipe. */
class CaseListActivity : SecureActivity() {
    private lateinit var list: LinearLayout
    private lateinit var status: TextView

    override fun onCreateScreen(savedInstanceState: Bundle?) {
        val col = Ui.column(this)
        col.addView(Ui.title(this, getString(R.string.cases_title), R.id.title))
        col.addView(Ui.button(this, getString(R.string.button_new_case), R.id.new_case) { newCase() })
        list = LinearLayout(this).apply {
            id = R.id.case_list
            orientation = LinearLayout.VERTICAL
        }
        col.addView(list)
        status = Ui.text(this, "", R.id.status)
        col.addView(status)
        col.addView(Ui.button(this, getString(R.string.button_sync_screen), R.id.sync_screen) {
            startActivity(Intent(this, SyncActivity::class.java))
        })
        col.addView(Ui.button(this, getString(R.string.button_passcode_screen), R.id.passcode_screen) {
            startActivity(Intent(this, PasscodeActivity::class.java))
        })
        col.addView(Ui.button(this, getString(R.string.button_lock), R.id.lock) { lockNow() })
        col.addView(Ui.button(this, getString(R.string.button_panic), R.id.panic) { confirmPanicWipe() })
        setContentView(Ui.scroll(this, col))
    }

    override fun onResume() {
        super.onResume()
        io({ app.session.unlocked().listCases().map { it.id to it.code } }) { r ->
            r.onSuccess { cases ->
                list.removeAllViews()
                if (cases.isEmpty()) list.addView(Ui.text(this, getString(R.string.cases_empty)))
                for ((id, code) in cases) {
                    list.addView(Ui.button(this, code) { openCase(id) }.apply { tag = "case:$code" })
                }
            }.onFailure(::fail)
        }
    }

    private fun newCase() {
        io({ app.session.unlocked().createCase().id }) { r -> r.onSuccess(::openCase).onFailure(::fail) }
    }

    private fun openCase(id: String) {
        startActivity(Intent(this, CaseActivity::class.java).putExtra(CaseActivity.EXTRA_CASE_ID, id))
    }

    private fun fail(e: Throwable) {
        if (e is org.amanat.core.AmanatException.Locked) return toLockScreen()
        status.text = Messages.of(resources, e)
    }
}
