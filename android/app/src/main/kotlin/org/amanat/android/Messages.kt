// What the screens say about a failure, in the language of the screen, keyed on the core's typed
// errors (never on their English `detail`, which is for logs and never shown).
package org.amanat.android

import android.content.res.Resources
import org.amanat.core.AmanatException
import org.amanat.core.KeyProviderErrorKind

/** Maps the core's typed errors to shell text. */
object Messages {
    /** The sentence for [e] in the language of [res]. */
    fun of(res: Resources, e: Throwable): String = when (e) {
        is AmanatException.WrongPasscode -> res.getString(R.string.status_wrong_passcode, e.failedAttempts.toInt())
        is AmanatException.Backoff -> res.getString(R.string.status_wait, e.retryAfterSecs.toLong())
        is AmanatException.PasscodeTooShort -> res.getString(R.string.error_passcode_too_short, e.minChars.toInt())
        is AmanatException.KeyProvider -> when (e.kind) {
            KeyProviderErrorKind.KEY_MISSING -> res.getString(R.string.status_key_missing)
            else -> res.getString(R.string.status_key_unavailable)
        }
        is AmanatException.Answer -> answerMessage(res, e)
        is AmanatException.ConsentMissing -> res.getString(R.string.error_consent_missing)
        is AmanatException.InterviewSubmitted -> res.getString(R.string.error_interview_submitted)
        is AmanatException.TooLarge -> res.getString(R.string.error_too_large)
        is AmanatException.Locked -> res.getString(R.string.error_locked)
        is AmanatException.Integrity, is AmanatException.ChainBroken, is AmanatException.AuditBroken ->
            res.getString(R.string.error_tampered)
        is AmanatException -> res.getString(R.string.error_generic, e.code())
        is NotANumber -> res.getString(R.string.error_not_a_number)
        else -> res.getString(R.string.error_generic, "shell")
    }

    /**
     * The one place that turns the core's answer rejection into shell text, in the language of
     * [res]. Every rule the core can report has a sentence in values/, values-ru/ and values-uz/
     * (`error_answer_*`). The FFI of this build reports the rule only as English text (`reason`),
     * which is never shown, so every rejection gets the general sentence; once the FFI carries
     * the typed reason enum, this becomes one `when` over it, each branch choosing its
     * `error_answer_*` sentence (with the limits the reason carries).
     */
    fun answerMessage(res: Resources, e: AmanatException.Answer): String =
        res.getString(R.string.error_answer_invalid)
}

/** A number field holds something that is not a number; never reaches the core. */
class NotANumber(val question: String) : Exception("not a number")
