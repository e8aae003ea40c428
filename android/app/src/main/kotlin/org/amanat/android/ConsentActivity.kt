// Consent, in the survivor's language: a text the worker reads aloud, one box per scope.
package org.amanat.android

import android.content.Context
import android.os.Bundle
import android.widget.CheckBox
import android.widget.LinearLayout
import android.widget.RadioButton
import android.widget.RadioGroup
import android.widget.TextView
import android.widget.Button
import org.amanat.core.AmanatException
import org.amanat.core.ConsentScope

/** The labels of the consent scopes (shell text: the core names scopes, the shell words them). */
object Scopes {
    /** String resource of [scope]'s label. */
    fun label(scope: ConsentScope): Int = when (scope) {
        ConsentScope.INTERVIEW -> R.string.scope_interview
        ConsentScope.AUDIO -> R.string.scope_audio
        ConsentScope.PHOTOS -> R.string.scope_photos
        ConsentScope.SHARE_CASEWORKERS -> R.string.scope_share_caseworkers
        ConsentScope.SHARE_LEGAL -> R.string.scope_share_legal
        ConsentScope.SHARE_LAW_ENFORCEMENT -> R.string.scope_share_law_enforcement
        ConsentScope.SHARE_RESEARCH -> R.string.scope_share_research
        ConsentScope.LEGAL_PROCEEDINGS -> R.string.scope_legal_proceedings
    }
}

/**
 * Records consent: the worker picks the person's language; the read-aloud text and every scope
 * label switch to it; the ticked scopes go to `recordConsent` with that language. Nothing is ticked
 * in advance.
 */
class ConsentActivity : SecureActivity() {
    private lateinit var caseId: String
    private lateinit var readAloudLabel: TextView
    private lateinit var prompt: TextView
    private lateinit var scopesLabel: TextView
    private lateinit var save: Button
    private lateinit var status: TextView
    private val boxes = LinkedHashMap<ConsentScope, CheckBox>()
    private var language = "en"

    override fun onCreateScreen(savedInstanceState: Bundle?) {
        caseId = intent.getStringExtra(CaseActivity.EXTRA_CASE_ID) ?: return finish()
        language = savedInstanceState?.getString(STATE_LANGUAGE) ?: resources.configuration.locales[0].language
        if (language !in LANGUAGES) language = "en"
        val col = Ui.column(this)
        col.addView(Ui.title(this, getString(R.string.consent_title), R.id.title))
        col.addView(Ui.text(this, getString(R.string.consent_language)))
        val group = RadioGroup(this).apply { id = R.id.language_group }
        for ((code, name) in LANGUAGES.zip(listOf(R.string.language_en, R.string.language_ru, R.string.language_uz))) {
            group.addView(RadioButton(this).apply {
                text = getString(name)
                tag = "language:$code"
                id = android.view.View.generateViewId()
                isChecked = code == language
                setOnClickListener { language = code; render() }
            })
        }
        col.addView(group)
        readAloudLabel = Ui.text(this)
        prompt = Ui.title(this, "", R.id.read_aloud)
        scopesLabel = Ui.text(this)
        col.addView(readAloudLabel)
        col.addView(prompt)
        col.addView(scopesLabel)
        val list = LinearLayout(this).apply {
            id = R.id.scope_list
            orientation = LinearLayout.VERTICAL
        }
        for (scope in ConsentScope.values()) {
            val box = CheckBox(this).apply { tag = "scope:${scope.name}" }
            boxes[scope] = box
            list.addView(box)
        }
        col.addView(list)
        save = Ui.button(this, "", R.id.save_consent) { saveConsent() }
        status = Ui.text(this, "", R.id.status)
        col.addView(save)
        col.addView(status)
        setContentView(Ui.scroll(this, col))
        render()
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        outState.putString(STATE_LANGUAGE, language)
    }

    /** Re-words the survivor-facing texts in [language]. */
    private fun render() {
        val c: Context = inLanguage(language)
        readAloudLabel.text = c.getString(R.string.consent_read_aloud)
        prompt.text = c.getString(R.string.consent_prompt)
        scopesLabel.text = c.getString(R.string.consent_scopes)
        for ((scope, box) in boxes) box.text = c.getString(Scopes.label(scope))
        save.text = c.getString(R.string.button_save_consent)
        status.text = ""
    }

    private fun saveConsent() {
        val scopes = boxes.filterValues { it.isChecked }.keys.toList()
        if (scopes.isEmpty()) {
            status.text = inLanguage(language).getString(R.string.error_no_scope)
            return
        }
        val lang = language
        io({ app.session.unlocked().recordConsent(caseId, app.config.workerId, lang, scopes) }) { r ->
            r.onSuccess { finish() }.onFailure { e ->
                if (e is AmanatException.Locked) toLockScreen() else status.text = Messages.of(inLanguage(lang).resources, e)
            }
        }
    }

    companion object {
        /** The languages of the shell and of the built-in template. */
        val LANGUAGES = listOf("en", "ru", "uz")
        private const val STATE_LANGUAGE = "language"
    }
}
