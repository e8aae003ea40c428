// One case: its code, its current consent, its interviews (open a draft, amend a submitted one).
package org.amanat.android

import android.content.Intent
import android.os.Bundle
import android.widget.LinearLayout
import android.widget.TextView
import org.amanat.core.AmanatException
import org.amanat.core.Consent
import org.amanat.core.Interview
import org.amanat.core.InterviewStatus

/**
 * The case screen. The interview language is the one the consent was recorded in (the survivor's
 * language); the screening template is the built-in one.
 */
class CaseActivity : SecureActivity() {
    private lateinit var caseId: String
    private lateinit var title: TextView
    private lateinit var consentStatus: TextView
    private lateinit var interviews: LinearLayout
    private lateinit var status: TextView
    private var consent: Consent? = null

    override fun onCreateScreen(savedInstanceState: Bundle?) {
        caseId = intent.getStringExtra(EXTRA_CASE_ID) ?: return finish()
        val col = Ui.column(this)
        title = Ui.title(this, "", R.id.title)
        consentStatus = Ui.text(this, "", R.id.consent_status)
        interviews = LinearLayout(this).apply {
            id = R.id.interview_list
            orientation = LinearLayout.VERTICAL
        }
        status = Ui.text(this, "", R.id.status)
        col.addView(title)
        col.addView(consentStatus)
        col.addView(Ui.button(this, getString(R.string.button_consent), R.id.record_consent) {
            startActivity(Intent(this, ConsentActivity::class.java).putExtra(EXTRA_CASE_ID, caseId))
        })
        col.addView(Ui.button(this, getString(R.string.button_start_interview), R.id.start_interview) { startInterview() })
        col.addView(interviews)
        col.addView(status)
        setContentView(Ui.scroll(this, col))
    }

    override fun onResume() {
        super.onResume()
        io({
            val v = app.session.unlocked()
            Triple(v.getCase(caseId).code, v.currentConsent(caseId), v.listInterviews(caseId))
        }) { r ->
            r.onSuccess { (code, consent, list) -> show(code, consent, list) }.onFailure(::fail)
        }
    }

    private fun show(code: String, consent: Consent?, list: List<Interview>) {
        this.consent = consent
        title.text = getString(R.string.case_title, code)
        consentStatus.text = if (consent == null || consent.scopes.isEmpty()) {
            getString(R.string.consent_none)
        } else {
            val names = consent.scopes.joinToString(", ") { getString(Scopes.label(it)) }
            getString(R.string.consent_current, consent.version.toInt(), names)
        }
        interviews.removeAllViews()
        val amended = list.mapNotNull { it.amends }.toSet()
        for (iv in list) {
            val state = getString(
                if (iv.status == InterviewStatus.DRAFT) R.string.interview_status_draft else R.string.interview_status_submitted,
            )
            val label = if (iv.amendment == 0u) {
                getString(R.string.interview_item, state)
            } else {
                getString(R.string.interview_item_amendment, iv.amendment.toInt(), state)
            }
            interviews.addView(Ui.text(this, label))
            when {
                iv.status == InterviewStatus.DRAFT ->
                    interviews.addView(Ui.button(this, getString(R.string.button_open)) { openInterview(iv.id) }.apply { tag = "open:${iv.id}" })
                iv.id !in amended ->
                    interviews.addView(Ui.button(this, getString(R.string.button_amend)) { amend(iv.id) }.apply { tag = "amend:${iv.id}" })
            }
        }
    }

    private fun startInterview() {
        val language = consent?.language ?: resources.configuration.locales[0].language
        io({ app.session.unlocked().startInterview(caseId, TEMPLATE_ID, TEMPLATE_VERSION, language).id }) { r ->
            r.onSuccess(::openInterview).onFailure(::fail)
        }
    }

    private fun amend(id: String) {
        io({ app.session.unlocked().amendInterview(id).id }) { r -> r.onSuccess(::openInterview).onFailure(::fail) }
    }

    private fun openInterview(id: String) {
        startActivity(Intent(this, InterviewActivity::class.java).putExtra(InterviewActivity.EXTRA_INTERVIEW_ID, id))
    }

    private fun fail(e: Throwable) {
        if (e is AmanatException.Locked) return toLockScreen()
        status.text = Messages.of(resources, e)
    }

    companion object {
        /** Intent extra: the case id (32 hex digits; not survivor data). */
        const val EXTRA_CASE_ID = "org.amanat.android.CASE_ID"
        /** The built-in screening interview. */
        const val TEMPLATE_ID = "trafficking_screening"
        const val TEMPLATE_VERSION = 1u
    }
}
