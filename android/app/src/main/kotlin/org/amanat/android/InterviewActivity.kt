// The interview form, rendered from the core's localized template: every question type, the core's
// skip logic, "why we ask", skip/pause, the core's validation errors in the interview's language,
// audio streamed into the vault, photos imported and shredded.
package org.amanat.android

import android.Manifest
import android.content.ActivityNotFoundException
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.os.Bundle
import android.provider.MediaStore
import android.view.View
import android.widget.Button
import android.widget.LinearLayout
import android.widget.TextView
import org.amanat.core.AmanatException
import org.amanat.core.AnswerValue
import org.amanat.core.Constraints
import org.amanat.core.Interview
import org.amanat.core.InterviewStatus
import org.amanat.core.LocalizedQuestion
import org.amanat.core.LocalizedTemplate
import java.io.File

/**
 * One interview (draft or submitted). Everything it shows comes from the core at load time:
 * the template in the interview's language, the stored answers, the visible questions. Texts of the
 * shell itself (buttons, errors) are in the interview's language too, since the screen may be
 * turned towards the survivor.
 */
class InterviewActivity : SecureActivity() {
    private lateinit var interviewId: String
    private lateinit var form: LinearLayout
    private lateinit var status: TextView
    private lateinit var saveButton: Button
    private lateinit var submitButton: Button
    private lateinit var texts: Context
    private var interview: Interview? = null
    private val fields = LinkedHashMap<String, QuestionField>()
    private val containers = HashMap<String, View>()
    private val errors = HashMap<String, TextView>()
    private val skipButtons = ArrayList<Button>()
    private var visible: Set<String> = emptySet()
    private var recorder: AudioRecorder? = null
    private var pendingPhoto: Pair<String, String>? = null // question id, capture file name
    private var pendingAudioQuestion: String? = null

    override fun onCreateScreen(savedInstanceState: Bundle?) {
        interviewId = intent.getStringExtra(EXTRA_INTERVIEW_ID) ?: return finish()
        savedInstanceState?.getStringArray(STATE_PHOTO)?.let { if (it.size == 2) pendingPhoto = it[0] to it[1] }
        texts = this
        form = LinearLayout(this).apply {
            id = R.id.form
            orientation = LinearLayout.VERTICAL
        }
        status = Ui.text(this, "", R.id.status)
        saveButton = Ui.button(this, "", R.id.save_draft) { save(thenSubmit = false, thenClose = true) }
        submitButton = Ui.button(this, "", R.id.submit) { save(thenSubmit = true, thenClose = false) }
        val col = Ui.column(this)
        col.addView(form)
        col.addView(status)
        col.addView(saveButton)
        col.addView(submitButton)
        setContentView(Ui.scroll(this, col))
        load()
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        pendingPhoto?.let { outState.putStringArray(STATE_PHOTO, arrayOf(it.first, it.second)) }
    }

    override fun onDestroy() {
        recorder?.stop()
        super.onDestroy()
    }

    private fun load() {
        io({
            val v = app.session.unlocked()
            val iv = v.getInterview(interviewId)
            Triple(iv, v.template(iv.templateId, iv.templateVersion, iv.language), v.visibleQuestions(interviewId).toSet())
        }) { r -> r.onSuccess { (iv, t, vis) -> render(iv, t, vis) }.onFailure(::fail) }
    }

    private fun render(iv: Interview, template: LocalizedTemplate, vis: Set<String>) {
        interview = iv
        texts = inLanguage(iv.language)
        saveButton.text = texts.getString(R.string.button_save_draft)
        submitButton.text = texts.getString(R.string.button_submit)
        form.removeAllViews()
        fields.clear()
        containers.clear()
        errors.clear()
        skipButtons.clear()
        form.addView(Ui.title(this, template.title, R.id.title))
        for (section in template.sections) {
            form.addView(Ui.title(this, section.title))
            section.description?.let { form.addView(Ui.text(this, it)) }
            for (q in section.questions) form.addView(questionView(q))
        }
        for ((id, f) in fields) f.show(iv.answers[id])
        showAttachments(iv)
        applyVisibility(vis)
        setEditable(iv.status == InterviewStatus.DRAFT)
        if (iv.status != InterviewStatus.DRAFT) status.text = texts.getString(R.string.interview_submitted)
    }

    private fun questionView(q: LocalizedQuestion): View {
        val box = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            tag = "question:${q.id}"
            setPadding(0, Ui.dp(context, 12), 0, 0)
        }
        val label = if (q.required) "${q.label} (${texts.getString(R.string.required_mark)})" else q.label
        box.addView(Ui.text(this, label).apply { tag = "label:${q.id}" })
        q.hint?.let { box.addView(Ui.text(this, it).apply { tag = "hint:${q.id}" }) }
        constraintText(q)?.let { box.addView(Ui.text(this, it).apply { tag = "rule:${q.id}" }) }
        q.whyWeAsk?.let { why ->
            val whyText = Ui.text(this, why).apply {
                tag = "why:${q.id}"
                visibility = View.GONE
            }
            box.addView(Ui.button(this, texts.getString(R.string.button_why)) {
                whyText.visibility = if (whyText.visibility == View.VISIBLE) View.GONE else View.VISIBLE
            }.apply { tag = "why-button:${q.id}" })
            box.addView(whyText)
        }
        val field = QuestionField.create(q, this, texts)
        field.onChange = ::refreshVisibility
        box.addView(field.view)
        if (field is AttachmentField) wireCapture(field)
        if (field.sendsAnswer) {
            val skipButton = Ui.button(this, texts.getString(R.string.button_skip)) { skip(field) }.apply { tag = "skip:${q.id}" }
            skipButtons.add(skipButton)
            box.addView(skipButton)
        }
        val error = Ui.text(this).apply {
            tag = "error:${q.id}"
            visibility = View.GONE
            setTextColor(0xFFB00020.toInt())
        }
        box.addView(error)
        fields[q.id] = field
        containers[q.id] = box
        errors[q.id] = error
        return box
    }

    /** The limits the template states, for immediate guidance (the core still checks them). */
    private fun constraintText(q: LocalizedQuestion): String? = when (val c = q.constraints) {
        is Constraints.IntegerRange -> if (c.min != null || c.max != null) {
            texts.getString(R.string.allowed_range, c.min?.toString() ?: "…", c.max?.toString() ?: "…")
        } else null
        is Constraints.DecimalRange -> if (c.min != null || c.max != null) {
            texts.getString(R.string.allowed_range, c.min?.toString() ?: "…", c.max?.toString() ?: "…")
        } else null
        is Constraints.DateRange -> if (c.min != null || c.max != null) {
            texts.getString(R.string.allowed_range, c.min ?: "…", c.max ?: "…")
        } else null
        is Constraints.Length -> c.maxLength?.let { texts.getString(R.string.allowed_length, it.toInt()) }
        else -> null
    }

    private fun skip(field: QuestionField) {
        field.show(null)
        errors[field.question.id]?.apply {
            text = texts.getString(R.string.skipped)
            visibility = View.VISIBLE
        }
        refreshVisibility()
    }

    /** The answers on screen merged over the stored ones (a number that does not parse throws). */
    private fun collect(lenient: Boolean): Map<String, AnswerValue> {
        val batch = LinkedHashMap<String, AnswerValue>()
        for ((id, f) in fields) {
            if (!f.sendsAnswer || id !in visible) continue
            val v = try {
                f.value()
            } catch (e: NotANumber) {
                if (lenient) null else throw e
            }
            if (v != null) batch[id] = v
        }
        return batch
    }

    /** Asks the core which questions the answers on screen make visible (skip logic is the core's). */
    private fun refreshVisibility() {
        val iv = interview ?: return
        val answers = iv.answers + collect(lenient = true)
        io({ app.session.unlocked().visibleQuestionsFor(iv.templateId, iv.templateVersion, answers).toSet() }) { r ->
            r.onSuccess(::applyVisibility).onFailure(::fail)
        }
    }

    private fun applyVisibility(vis: Set<String>) {
        visible = vis
        for ((id, box) in containers) box.visibility = if (id in vis) View.VISIBLE else View.GONE
    }

    private fun setEditable(editable: Boolean) {
        fields.values.forEach { it.setEditable(editable) }
        skipButtons.forEach { it.isEnabled = editable }
        saveButton.isEnabled = editable
        submitButton.isEnabled = editable
    }

    private fun clearErrors() {
        errors.values.forEach { it.visibility = View.GONE }
    }

    private fun save(thenSubmit: Boolean, thenClose: Boolean) {
        clearErrors()
        val batch = try {
            collect(lenient = false)
        } catch (e: NotANumber) {
            return showAnswerError(e.question, Messages.of(texts.resources, e))
        }
        saveButton.isEnabled = false
        submitButton.isEnabled = false
        io({
            val v = app.session.unlocked()
            var iv = v.saveAnswers(interviewId, batch)
            if (thenSubmit) iv = v.submitInterview(interviewId)
            iv to v.visibleQuestions(interviewId).toSet()
        }) { r ->
            r.onSuccess { (iv, vis) ->
                interview = iv
                applyVisibility(vis)
                for ((id, f) in fields) if (f.sendsAnswer) f.show(iv.answers[id])
                if (iv.status == InterviewStatus.SUBMITTED) {
                    setEditable(false)
                    status.text = texts.getString(R.string.interview_submitted)
                } else {
                    setEditable(true)
                    status.text = texts.getString(R.string.saved)
                    if (thenClose) finish()
                }
            }.onFailure { e ->
                setEditable(interview?.status == InterviewStatus.DRAFT)
                fail(e)
            }
        }
    }

    private fun showAnswerError(question: String, message: String) {
        val view = errors[question]
        if (view == null) {
            status.text = message
            return
        }
        view.text = message
        view.visibility = View.VISIBLE
        containers[question]?.let { box -> box.parent?.requestChildFocus(box, box) }
    }

    private fun fail(e: Throwable) {
        when (e) {
            is AmanatException.Locked -> toLockScreen()
            is AmanatException.Answer -> showAnswerError(e.question, Messages.of(texts.resources, e))
            else -> status.text = Messages.of(texts.resources, e)
        }
    }

    // ---- attachments ----

    private fun showAttachments(iv: Interview) {
        for ((id, f) in fields) {
            if (f !is AttachmentField) continue
            val a = iv.answers[id] as? AnswerValue.Attachment
            f.state.text = ""
            if (a != null) {
                io({ app.session.unlocked().attachmentInfo(a.id).size.toLong() }) { r ->
                    r.onSuccess { size -> f.state.text = savedText(f.question, size) }
                }
            }
        }
    }

    private fun savedText(q: LocalizedQuestion, size: Long): String = texts.getString(
        if (q.questionType == org.amanat.core.QuestionType.AUDIO) R.string.audio_saved else R.string.photo_saved,
        ((size + 1023) / 1024).toInt(),
    )

    private fun wireCapture(field: AttachmentField) {
        if (field.question.questionType == org.amanat.core.QuestionType.AUDIO) {
            field.button.text = texts.getString(R.string.button_record_audio)
            field.button.setOnClickListener { if (recorder == null) startRecording(field) else recorder?.stop() }
        } else {
            field.button.text = texts.getString(R.string.button_take_photo)
            field.button.setOnClickListener { takePhoto(field) }
        }
    }

    private fun startRecording(field: AttachmentField) {
        if (checkSelfPermission(Manifest.permission.RECORD_AUDIO) != PackageManager.PERMISSION_GRANTED) {
            pendingAudioQuestion = field.question.id
            requestPermissions(arrayOf(Manifest.permission.RECORD_AUDIO), REQUEST_AUDIO)
            return
        }
        val source = app.config.audioSource()
        val qid = field.question.id
        io({ app.session.unlocked().openAttachmentWriter(interviewId, qid, source.mediaType, null) }) { r ->
            r.onFailure { e ->
                source.close()
                field.state.text = Messages.of(texts.resources, e)
            }.onSuccess { writer ->
                val rec = AudioRecorder(source, writer)
                recorder = rec
                field.button.text = texts.getString(R.string.button_stop_audio)
                field.state.text = texts.getString(R.string.recording)
                app.config.recorder.execute {
                    val result = try {
                        Result.success(rec.run())
                    } catch (e: Exception) {
                        Result.failure(e)
                    }
                    onMain {
                        recorder = null
                        field.button.text = texts.getString(R.string.button_record_audio)
                        result.onSuccess { info ->
                            field.state.text = savedText(field.question, info.size.toLong())
                            reloadAnswers()
                        }.onFailure { e -> field.state.text = Messages.of(texts.resources, e) }
                    }
                }
            }
        }
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        if (requestCode != REQUEST_AUDIO) return
        val qid = pendingAudioQuestion ?: return
        pendingAudioQuestion = null
        val field = fields[qid] as? AttachmentField ?: return
        if (grantResults.isNotEmpty() && grantResults[0] == PackageManager.PERMISSION_GRANTED) {
            startRecording(field)
        } else {
            field.state.text = texts.getString(R.string.error_permission_audio)
        }
    }

    private fun takePhoto(field: AttachmentField) {
        val name = CaptureProvider.newName()
        val intent = Intent(MediaStore.ACTION_IMAGE_CAPTURE)
            .putExtra(MediaStore.EXTRA_OUTPUT, CaptureProvider.uri(name))
            .addFlags(Intent.FLAG_GRANT_WRITE_URI_PERMISSION)
        pendingPhoto = field.question.id to name
        try {
            app.allowExcursion(CAMERA_GRACE_MS)
            startActivityForResult(intent, REQUEST_PHOTO)
        } catch (e: ActivityNotFoundException) {
            pendingPhoto = null
            field.state.text = Messages.of(texts.resources, e)
        }
    }

    @Deprecated("framework API; androidx's result API is not used")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        if (requestCode != REQUEST_PHOTO) return
        val (qid, name) = pendingPhoto ?: return
        pendingPhoto = null
        val file = File(CaptureProvider.dir(this), name)
        if (resultCode != RESULT_OK || file.length() == 0L) {
            CaptureProvider.discard(file)
            return
        }
        importPhoto(qid, file)
    }

    /** Imports a captured photo; the core encrypts it and shreds [file]. */
    internal fun importPhoto(qid: String, file: File) {
        val field = fields[qid] as? AttachmentField
        io({ app.session.unlocked().importAttachmentFile(interviewId, qid, "image/jpeg", file.path) }) { r ->
            r.onSuccess { info ->
                if (field != null) field.state.text = savedText(field.question, info.size.toLong())
                reloadAnswers()
            }.onFailure { e ->
                CaptureProvider.discard(file)
                if (field != null) field.state.text = Messages.of(texts.resources, e) else fail(e)
            }
        }
    }

    private fun reloadAnswers() {
        io({ app.session.unlocked().getInterview(interviewId) }) { r -> r.onSuccess { interview = it } }
    }

    companion object {
        /** Intent extra: the interview id. */
        const val EXTRA_INTERVIEW_ID = "org.amanat.android.INTERVIEW_ID"
        private const val STATE_PHOTO = "pending_photo"
        private const val REQUEST_AUDIO = 1
        private const val REQUEST_PHOTO = 2
        /** How long the vault stays unlocked while the camera app is in front. */
        private const val CAMERA_GRACE_MS = 120_000L
    }
}
