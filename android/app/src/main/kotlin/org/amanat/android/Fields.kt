// One input per question type, built from the core's localized template. A field only turns the
// widget into an AnswerValue and back; validation and skip logic are the core's.
package org.amanat.android

import android.content.Context
import android.text.InputType
import android.view.View
import android.widget.Button
import android.widget.CheckBox
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.RadioButton
import android.widget.RadioGroup
import android.widget.TextView
import org.amanat.core.AnswerValue
import org.amanat.core.LocalizedQuestion
import org.amanat.core.QuestionType

/**
 * The input of one question. [value] is what would be sent to the core (null: unanswered, so the
 * question is skipped or paused); [show] puts a stored answer back; [onChange] fires when an
 * answer that can change the skip logic changes.
 */
abstract class QuestionField(val question: LocalizedQuestion, protected val context: Context) {
    /** The widget. */
    abstract val view: View

    /** Called after the user changes the answer. */
    var onChange: () -> Unit = {}

    /** The answer to send, or null if there is none; [NotANumber] for a number field holding text. */
    abstract fun value(): AnswerValue?

    /** Shows a stored answer (null clears). */
    abstract fun show(answer: AnswerValue?)

    /** Whether the shell sends this question's answer (consent and attachments are filled by the core). */
    open val sendsAnswer: Boolean = true

    /** Enables or disables input (a submitted interview is read-only). */
    open fun setEditable(editable: Boolean) {
        view.isEnabled = editable
    }

    companion object {
        /** The field for [q], by its type (every type of the template format). */
        fun create(q: LocalizedQuestion, c: Context, texts: Context): QuestionField = when (q.questionType) {
            QuestionType.TEXT -> TextField(q, c, InputType.TYPE_CLASS_TEXT) { AnswerValue.Text(it) }
            QuestionType.LONG_TEXT -> TextField(q, c, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE) { AnswerValue.Text(it) }
            QuestionType.DATE -> TextField(q, c, InputType.TYPE_CLASS_DATETIME or InputType.TYPE_DATETIME_VARIATION_DATE, texts.getString(R.string.hint_date)) { AnswerValue.Date(it) }
            QuestionType.LOCATION -> TextField(q, c, InputType.TYPE_CLASS_TEXT, texts.getString(R.string.hint_district)) { AnswerValue.Location(it) }
            QuestionType.INTEGER -> TextField(q, c, InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_FLAG_SIGNED) {
                AnswerValue.Integer(it.toLongOrNull() ?: throw NotANumber(q.id))
            }
            QuestionType.DECIMAL -> TextField(q, c, InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_FLAG_DECIMAL or InputType.TYPE_NUMBER_FLAG_SIGNED) {
                AnswerValue.Decimal(it.replace(',', '.').toDoubleOrNull()?.takeIf { d -> d.isFinite() } ?: throw NotANumber(q.id))
            }
            QuestionType.SINGLE_CHOICE -> SingleChoiceField(q, c)
            QuestionType.MULTIPLE_CHOICE -> MultipleChoiceField(q, c)
            QuestionType.YES_NO -> YesNoField(q, c, texts)
            QuestionType.CONSENT -> ConsentField(q, c, texts)
            QuestionType.AUDIO, QuestionType.PHOTO -> AttachmentField(q, c)
        }
    }
}

/** Free text, numbers, dates and districts: an EditText and a parser. */
class TextField(
    q: LocalizedQuestion,
    c: Context,
    inputType: Int,
    hint: String? = null,
    private val parse: (String) -> AnswerValue,
) : QuestionField(q, c) {
    private val edit = EditText(c).apply {
        this.inputType = inputType
        this.hint = hint
        tag = "input:${q.id}"
        // No keyboard learning of what a survivor says.
        imeOptions = imeOptions or android.view.inputmethod.EditorInfo.IME_FLAG_NO_PERSONALIZED_LEARNING
    }
    override val view: View = edit

    override fun value(): AnswerValue? = edit.text.toString().trim().takeIf { it.isNotEmpty() }?.let(parse)

    override fun show(answer: AnswerValue?) {
        edit.setText(
            when (answer) {
                is AnswerValue.Text -> answer.value
                is AnswerValue.Integer -> answer.value.toString()
                is AnswerValue.Decimal -> answer.value.toString()
                is AnswerValue.Date -> answer.value
                is AnswerValue.Location -> answer.district
                else -> ""
            },
        )
    }
}

/** One choice: radio buttons, one per template choice. */
class SingleChoiceField(q: LocalizedQuestion, c: Context) : QuestionField(q, c) {
    private val group = RadioGroup(c).apply { tag = "input:${q.id}" }
    private val buttons = q.choices.associate { choice ->
        choice.id to RadioButton(c).apply {
            id = View.generateViewId()
            text = choice.label
            tag = "choice:${q.id}:${choice.id}"
        }
    }
    override val view: View = group

    init {
        buttons.values.forEach(group::addView)
        group.setOnCheckedChangeListener { _, _ -> onChange() }
    }

    override fun value(): AnswerValue? =
        buttons.entries.firstOrNull { it.value.isChecked }?.let { AnswerValue.Choice(it.key) }

    override fun show(answer: AnswerValue?) {
        val chosen = (answer as? AnswerValue.Choice)?.value
        val b = buttons[chosen]
        if (b != null) group.check(b.id) else group.clearCheck()
    }

    override fun setEditable(editable: Boolean) {
        buttons.values.forEach { it.isEnabled = editable }
    }
}

/** Several choices: one checkbox per template choice. */
class MultipleChoiceField(q: LocalizedQuestion, c: Context) : QuestionField(q, c) {
    private val column = LinearLayout(c).apply {
        orientation = LinearLayout.VERTICAL
        tag = "input:${q.id}"
    }
    private val boxes = q.choices.associate { choice ->
        choice.id to CheckBox(c).apply {
            text = choice.label
            tag = "choice:${q.id}:${choice.id}"
        }
    }
    override val view: View = column

    init {
        boxes.values.forEach { box ->
            column.addView(box)
            box.setOnCheckedChangeListener { _, _ -> onChange() }
        }
    }

    override fun value(): AnswerValue? =
        boxes.filterValues { it.isChecked }.keys.toList().takeIf { it.isNotEmpty() }?.let { AnswerValue.Choices(it) }

    override fun show(answer: AnswerValue?) {
        val chosen = (answer as? AnswerValue.Choices)?.values.orEmpty().toSet()
        boxes.forEach { (id, box) -> box.isChecked = id in chosen }
    }

    override fun setEditable(editable: Boolean) {
        boxes.values.forEach { it.isEnabled = editable }
    }
}

/** Yes / no, in the interview's language. */
class YesNoField(q: LocalizedQuestion, c: Context, texts: Context) : QuestionField(q, c) {
    private val yes = RadioButton(c).apply {
        id = View.generateViewId()
        text = texts.getString(R.string.answer_yes)
        tag = "choice:${q.id}:yes"
    }
    private val no = RadioButton(c).apply {
        id = View.generateViewId()
        text = texts.getString(R.string.answer_no)
        tag = "choice:${q.id}:no"
    }
    private val group = RadioGroup(c).apply {
        orientation = RadioGroup.HORIZONTAL
        tag = "input:${q.id}"
        addView(yes)
        addView(no)
    }
    override val view: View = group

    init {
        group.setOnCheckedChangeListener { _, _ -> onChange() }
    }

    override fun value(): AnswerValue? = when {
        yes.isChecked -> AnswerValue.YesNo(true)
        no.isChecked -> AnswerValue.YesNo(false)
        else -> null
    }

    override fun show(answer: AnswerValue?) {
        when ((answer as? AnswerValue.YesNo)?.value) {
            true -> group.check(yes.id)
            false -> group.check(no.id)
            null -> group.clearCheck()
        }
    }

    override fun setEditable(editable: Boolean) {
        yes.isEnabled = editable
        no.isEnabled = editable
    }
}

/** A consent question: read-only, the core fills it from the consent record. */
class ConsentField(q: LocalizedQuestion, c: Context, private val texts: Context) : QuestionField(q, c) {
    private val label = TextView(c).apply { tag = "input:${q.id}" }
    override val view: View = label
    override val sendsAnswer: Boolean = false

    override fun value(): AnswerValue? = null

    override fun show(answer: AnswerValue?) {
        label.text = texts.getString(
            if ((answer as? AnswerValue.Consent)?.value == true) R.string.consent_answer_given else R.string.consent_answer_not_given,
        )
    }

    override fun setEditable(editable: Boolean) {}
}

/**
 * Audio and photo: a capture button (the screen decides what it does) and the stored size. The
 * answer is written by the core when the capture is finished or imported.
 */
class AttachmentField(q: LocalizedQuestion, c: Context) : QuestionField(q, c) {
    /** The capture button (record/stop, or take a photo). */
    val button = Button(c).apply { tag = "capture:${q.id}" }

    /** What was stored. */
    val state = TextView(c).apply { tag = "attachment:${q.id}" }
    private val column = LinearLayout(c).apply {
        orientation = LinearLayout.VERTICAL
        addView(button)
        addView(state)
    }
    override val view: View = column
    override val sendsAnswer: Boolean = false

    override fun value(): AnswerValue? = null

    override fun show(answer: AnswerValue?) {}

    override fun setEditable(editable: Boolean) {
        button.isEnabled = editable
    }
}
