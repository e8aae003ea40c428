// The generic renderer: one widget per question type (including DATE, which the built-in
// screening template does not use), each turning its input into the AnswerValue the core expects
// and back.
package org.amanat.android

import android.widget.CheckBox
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.RadioButton
import android.widget.RadioGroup
import android.widget.TextView
import org.amanat.core.AnswerValue
import org.amanat.core.Constraints
import org.amanat.core.LocalizedChoice
import org.amanat.core.LocalizedQuestion
import org.amanat.core.QuestionType
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class FormFieldsTest {
    private val ctx = RuntimeEnvironment.getApplication()
    private val choices = listOf(LocalizedChoice("a", "Alpha"), LocalizedChoice("b", "Beta"))

    private fun q(type: QuestionType, id: String = "q") =
        LocalizedQuestion(id, type, "Label", null, null, false, false, choices, Constraints.Unconstrained, null)

    private fun field(type: QuestionType) = QuestionField.create(q(type), ctx, ctx)

    @Test
    fun everyQuestionTypeHasAWidget() {
        for (type in QuestionType.values()) {
            val f = field(type)
            assertEquals(type, f.question.questionType)
            assertNull("$type starts unanswered", f.value())
        }
    }

    @Test
    fun textLikeFieldsRoundTrip() {
        val cases = mapOf(
            QuestionType.TEXT to AnswerValue.Text("some words"),
            QuestionType.LONG_TEXT to AnswerValue.Text("line one\nline two"),
            QuestionType.INTEGER to AnswerValue.Integer(-12L),
            QuestionType.DECIMAL to AnswerValue.Decimal(2.5),
            QuestionType.DATE to AnswerValue.Date("2024-02-29"),
            QuestionType.LOCATION to AnswerValue.Location("Yunusobod"),
        )
        for ((type, value) in cases) {
            val f = field(type)
            assertTrue(f.view is EditText)
            f.show(value)
            assertEquals(value, f.value())
            f.show(null)
            assertNull(f.value())
        }
        // A decimal typed with a comma, as Russian and Uzbek keyboards do.
        val d = field(QuestionType.DECIMAL)
        (d.view as EditText).setText("3,75")
        assertEquals(AnswerValue.Decimal(3.75), d.value())
        // Letters in a number field: the shell's own "not a number", never sent.
        val i = field(QuestionType.INTEGER)
        (i.view as EditText).setText("ten")
        assertEquals("q", assertThrows(NotANumber::class.java) { i.value() }.question)
        (d.view as EditText).setText("NaN")
        assertThrows(NotANumber::class.java) { d.value() }
    }

    @Test
    fun choiceFieldsRoundTripAndReportChanges() {
        var changes = 0
        val single = field(QuestionType.SINGLE_CHOICE).apply { onChange = { changes++ } }
        val group = single.view as RadioGroup
        assertEquals(listOf("Alpha", "Beta"), (0 until group.childCount).map { (group.getChildAt(it) as RadioButton).text.toString() })
        (group.getChildAt(1) as RadioButton).performClick()
        assertEquals(AnswerValue.Choice("b"), single.value())
        assertTrue(changes > 0)
        single.show(AnswerValue.Choice("a"))
        assertEquals(AnswerValue.Choice("a"), single.value())

        val multi = field(QuestionType.MULTIPLE_CHOICE)
        val boxes = multi.view as LinearLayout
        (boxes.getChildAt(0) as CheckBox).isChecked = true
        (boxes.getChildAt(1) as CheckBox).isChecked = true
        assertEquals(AnswerValue.Choices(listOf("a", "b")), multi.value())
        multi.show(AnswerValue.Choices(listOf("b")))
        assertEquals(AnswerValue.Choices(listOf("b")), multi.value())

        val yn = field(QuestionType.YES_NO)
        yn.show(AnswerValue.YesNo(false))
        assertEquals(AnswerValue.YesNo(false), yn.value())
        yn.show(AnswerValue.YesNo(true))
        assertEquals(AnswerValue.YesNo(true), yn.value())
        yn.setEditable(false)
        assertFalse(((yn.view as RadioGroup).getChildAt(0)).isEnabled)
    }

    @Test
    fun consentAndAttachmentsAreNeverSentByTheShell() {
        val consent = field(QuestionType.CONSENT)
        consent.show(AnswerValue.Consent(true))
        assertEquals("Agreed (from the consent record)", (consent.view as TextView).text.toString())
        assertFalse(consent.sendsAnswer)
        assertNull(consent.value())
        for (t in listOf(QuestionType.AUDIO, QuestionType.PHOTO)) {
            val f = field(t)
            assertTrue(f is AttachmentField)
            assertFalse(f.sendsAnswer)
        }
    }
}
