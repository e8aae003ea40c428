// Every typed answer-rejection reason of the core has its own sentence in each language (not one
// general "not accepted"), carrying the limits the core reports; and the sync errors are typed.
package org.amanat.android

import android.content.Context
import android.content.res.Configuration
import org.amanat.core.AmanatException
import org.amanat.core.AnswerReason
import org.amanat.core.QuestionType
import org.amanat.core.TransportErrorKind
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import java.util.Locale

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class MessagesTest {
    private val app = RuntimeEnvironment.getApplication()

    private fun inLocale(tag: String): Context =
        app.createConfigurationContext(Configuration(app.resources.configuration).apply { setLocale(Locale.forLanguageTag(tag)) })

    /** One of each reason the core can report (the FFI's `AnswerReason`). */
    private val reasons: List<AnswerReason> = listOf(
        AnswerReason.UnknownQuestion, AnswerReason.WrongType(QuestionType.INTEGER), AnswerReason.Empty,
        AnswerReason.TooShort(7uL), AnswerReason.TooLong(4321uL), AnswerReason.NotFinite,
        AnswerReason.OutOfRange("3", "17"), AnswerReason.InvalidDate, AnswerReason.UnknownChoice,
        AnswerReason.DuplicateChoice, AnswerReason.TooFewChoices(2uL), AnswerReason.TooManyChoices(5uL),
        AnswerReason.InvalidAttachmentId, AnswerReason.InvalidSha256, AnswerReason.WrongMediaType,
        AnswerReason.Coordinates, AnswerReason.Required, AnswerReason.NotRelevant,
        AnswerReason.ConsentViaRecord, AnswerReason.NotAttachmentQuestion,
    )

    private fun answer(r: AnswerReason) = AmanatException.Answer("q1", r, "q1: ENGLISH DETAIL")

    @Test
    fun everyAnswerReasonHasItsOwnSentenceWithItsLimitsInEachLanguage() {
        for (lang in listOf("en", "ru", "uz")) {
            val res = inLocale(lang).resources
            val texts = reasons.associateWith { Messages.answerMessage(res, answer(it)) }
            // The four attachment reasons share one sentence (a shell bug, not the interviewer's);
            // every other reason has its own.
            assertEquals(lang, reasons.size - 3, texts.values.toSet().size)
            texts.values.forEach { assertFalse(lang, it.contains("ENGLISH") || it.contains("q1")) }
            assertTrue(texts.getValue(AnswerReason.TooShort(7uL)).contains("7"))
            assertTrue(texts.getValue(AnswerReason.TooLong(4321uL)).contains("4321"))
            assertTrue(texts.getValue(AnswerReason.TooFewChoices(2uL)).contains("2"))
            assertTrue(texts.getValue(AnswerReason.TooManyChoices(5uL)).contains("5"))
            val range = texts.getValue(AnswerReason.OutOfRange("3", "17"))
            assertTrue(range, range.contains("3") && range.contains("17"))
            // One-sided limits: the sentence without numbers.
            assertFalse(Messages.answerMessage(res, answer(AnswerReason.OutOfRange(null, "17"))).contains("17"))
        }
        assertEquals("Kamida 7 ta belgi yozing.", Messages.answerMessage(inLocale("uz").resources, answer(AnswerReason.TooShort(7uL))))
        assertEquals("Write at least 7 characters.", Messages.answerMessage(inLocale("en").resources, answer(AnswerReason.TooShort(7uL))))
    }

    @Test
    fun syncAndEnrollmentErrorsAreTypedSentences() {
        val res = inLocale("en").resources
        assertEquals("No connection to the server. Try again later.",
            Messages.of(res, AmanatException.Transport(TransportErrorKind.TIMEOUT, "detail")))
        assertEquals("The server address must start with https://.",
            Messages.of(res, AmanatException.Transport(TransportErrorKind.INSECURE_URL, "detail")))
        assertEquals("The server refused (code_used).", Messages.of(res, AmanatException.Rejected(409u, "code_used", "detail")))
        assertEquals("This difference was already resolved.", Messages.of(res, AmanatException.NotFound("clash", "detail")))
        assertEquals("The emergency passcode must differ from the passcode.", Messages.of(res, AmanatException.DuressConflict("detail")))
        assertEquals("Bu telefon hali tashkilotga ulanmagan.", Messages.of(inLocale("uz").resources, AmanatException.NotEnrolled("detail")))
    }
}
