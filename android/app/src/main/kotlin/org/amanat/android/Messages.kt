// What the screens say about a failure, in the language of the screen, keyed on the core's typed
// errors (never on their English `detail`, which is for logs and never shown).
package org.amanat.android

import android.content.res.Resources
import org.amanat.core.AmanatException
import org.amanat.core.AnswerReason
import org.amanat.core.KeyProviderErrorKind
import org.amanat.core.TransportErrorKind

/** Maps the core's typed errors to shell text. */
object Messages {
    /** The sentence for [e] in the language of [res]. */
    fun of(res: Resources, e: Throwable): String = when (e) {
        is AmanatException.WrongPasscode -> res.getString(R.string.status_wrong_passcode, e.failedAttempts.toInt())
        is AmanatException.Backoff -> res.getString(R.string.status_wait, e.retryAfterSecs.toLong())
        is AmanatException.PasscodeTooShort -> res.getString(R.string.error_passcode_too_short, e.minChars.toInt())
        is AmanatException.DuressConflict -> res.getString(R.string.error_duress_conflict)
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
        is AmanatException.NotEnrolled -> res.getString(R.string.error_not_enrolled)
        is AmanatException.AlreadyEnrolled -> res.getString(R.string.error_already_enrolled)
        is AmanatException.BadEnrollmentCode -> res.getString(R.string.error_bad_enrollment_code)
        is AmanatException.InvalidRelayUrl -> res.getString(R.string.error_invalid_relay_url)
        is AmanatException.NoRelayUrl -> res.getString(R.string.error_no_relay_url)
        is AmanatException.RelayUrlMismatch -> res.getString(R.string.error_relay_url_mismatch)
        is AmanatException.OrgMismatch -> res.getString(R.string.error_org_mismatch)
        // The relay's code is a stable `[a-z0-9_]` identifier (`code_used` …), never data.
        is AmanatException.Rejected -> res.getString(R.string.error_rejected, e.relayCode)
        is AmanatException.UnexpectedResponse -> res.getString(R.string.error_unexpected_response)
        is AmanatException.Transport -> when (e.kind) {
            TransportErrorKind.INSECURE_URL -> res.getString(R.string.error_insecure_url)
            TransportErrorKind.INVALID_URL -> res.getString(R.string.error_invalid_relay_url)
            else -> res.getString(R.string.error_no_connection)
        }
        is AmanatException.Revoked -> res.getString(R.string.error_revoked)
        is AmanatException.NotFound -> if (e.what == "clash") res.getString(R.string.error_clash_gone)
            else res.getString(R.string.error_generic, e.code())
        is AmanatException -> res.getString(R.string.error_generic, e.code())
        is NotANumber -> res.getString(R.string.error_not_a_number)
        else -> res.getString(R.string.error_generic, "shell")
    }

    /**
     * The one place that turns the core's answer rejection into shell text, in the language of
     * [res]: one sentence per typed reason the core reports (`AnswerReason`), with the limits it
     * carries. The core's English `detail` is never shown. The `when` is exhaustive, so a reason
     * added to the core fails this build until it has its sentence.
     */
    fun answerMessage(res: Resources, e: AmanatException.Answer): String = when (val r = e.reason) {
        is AnswerReason.UnknownQuestion -> res.getString(R.string.error_answer_unknown_question)
        is AnswerReason.WrongType -> res.getString(R.string.error_answer_wrong_type)
        is AnswerReason.Empty -> res.getString(R.string.error_answer_empty)
        is AnswerReason.TooShort -> res.getString(R.string.error_answer_too_short, r.minChars.toInt())
        is AnswerReason.TooLong -> res.getString(R.string.error_answer_too_long, r.maxChars.toInt())
        is AnswerReason.NotFinite -> res.getString(R.string.error_answer_not_finite)
        is AnswerReason.OutOfRange -> {
            val min = r.min
            val max = r.max
            if (min != null && max != null) {
                res.getString(R.string.error_answer_out_of_range) + " " + res.getString(R.string.allowed_range, min, max)
            } else {
                res.getString(R.string.error_answer_out_of_range)
            }
        }
        is AnswerReason.InvalidDate -> res.getString(R.string.error_answer_bad_date)
        is AnswerReason.UnknownChoice -> res.getString(R.string.error_answer_unknown_choice)
        is AnswerReason.DuplicateChoice -> res.getString(R.string.error_answer_duplicate_choice)
        is AnswerReason.TooFewChoices -> res.getString(R.string.error_answer_too_few_choices, r.minChoices.toInt())
        is AnswerReason.TooManyChoices -> res.getString(R.string.error_answer_too_many_choices, r.maxChoices.toInt())
        is AnswerReason.InvalidAttachmentId, is AnswerReason.InvalidSha256, is AnswerReason.WrongMediaType,
        is AnswerReason.NotAttachmentQuestion -> res.getString(R.string.error_answer_attachment)
        is AnswerReason.Coordinates -> res.getString(R.string.error_answer_coordinates)
        is AnswerReason.Required -> res.getString(R.string.error_answer_required)
        is AnswerReason.NotRelevant -> res.getString(R.string.error_answer_not_visible)
        is AnswerReason.ConsentViaRecord -> res.getString(R.string.error_answer_consent)
    }
}

/** A number field holds something that is not a number; never reaches the core. */
class NotANumber(val question: String) : Exception("not a number")
