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
        is AmanatException.Answer -> res.getString(answerReason(e))
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
     * The one place that turns the core's answer-rejection reason into shell text. The FFI
     * reports the rule as a typed reason; every reason has a sentence in values/, values-ru/ and
     * values-uz/. (Until the FFI carried the typed reason, the error kind alone chose the text.)
     */
    fun answerReason(e: AmanatException.Answer): Int = R.string.error_answer_invalid
}

/** A number field holds something that is not a number; never reaches the core. */
class NotANumber(val question: String) : Exception("not a number")
