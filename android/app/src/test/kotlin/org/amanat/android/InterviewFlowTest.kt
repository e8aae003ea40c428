// The whole field flow through the real screens and the real core: passcode, new case, consent in
// Uzbek, the screening interview in Uzbek with a validation error shown in Uzbek, audio from a fake
// microphone streamed into the vault, a photo imported and its file shredded, submit, amend, panic
// wipe — FLAG_SECURE on every screen, nothing in the logs.
package org.amanat.android

import android.app.AlertDialog
import android.content.DialogInterface
import android.content.Intent
import android.content.res.Configuration
import android.net.Uri
import android.provider.MediaStore
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.RadioButton
import android.widget.CheckBox
import android.widget.TextView
import org.amanat.core.AmanatException
import org.amanat.core.AnswerReason
import org.amanat.core.AnswerValue
import org.amanat.core.ConsentScope
import org.amanat.core.InterviewStatus
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowAlertDialog
import org.robolectric.shadows.ShadowLog
import java.io.File
import java.util.Locale

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class InterviewFlowTest {
    private val audioBytes = 100_000
    private val marker = "MARKER-narrative-7f3a"

    private fun click(a: android.app.Activity, id: Int) {
        a.view<View>(id).performClick()
        idle()
    }

    private fun clickTag(a: android.app.Activity, tag: String) {
        a.tagged<View>(tag).performClick()
        idle()
    }

    private fun uz(shell: TestShell) = shell.app.createConfigurationContext(
        Configuration(shell.app.resources.configuration).apply { setLocale(Locale.forLanguageTag("uz")) },
    )

    @Test
    fun fieldFlowInUzbek() {
        val shell = TestShell(audio = { FakeAudioSource(audioBytes) })
        val uz = uz(shell)

        // Passcode → case list.
        val lock = launch(LockActivity::class.java).get()
        assertSecure(lock)
        lock.view<EditText>(R.id.passcode).setText(PASS)
        lock.view<EditText>(R.id.passcode_confirm).setText(PASS)
        click(lock, R.id.unlock)
        var list = launch(CaseListActivity::class.java, nextStarted(lock, CaseListActivity::class.java)).get()
        assertSecure(list)

        // New case: the case screen shows its code.
        click(list, R.id.new_case)
        val caseIntent = nextStarted(list, CaseActivity::class.java)
        val caseId = caseIntent.getStringExtra(CaseActivity.EXTRA_CASE_ID)!!
        val vault = shell.session.unlocked()
        val code = vault.getCase(caseId).code
        var case = launch(CaseActivity::class.java, caseIntent).get()
        assertSecure(case)
        assertEquals("Case $code", case.view<TextView>(R.id.title).text.toString())
        assertEquals("No consent recorded yet.", case.view<TextView>(R.id.consent_status).text.toString())

        // No interview without consent: the core says so, the screen shows it.
        click(case, R.id.start_interview)
        assertEquals("The person has not agreed to this.", case.view<TextView>(R.id.status).text.toString())

        // Consent in Uzbek: read-aloud text and scopes switch language; nothing ticked in advance.
        click(case, R.id.record_consent)
        val consentIntent = nextStarted(case, ConsentActivity::class.java)
        val consent = launch(ConsentActivity::class.java, consentIntent).get()
        assertSecure(consent)
        assertTrue(consent.view<TextView>(R.id.read_aloud).text.startsWith("I work for an organisation"))
        clickTag(consent, "language:uz")
        assertEquals(uz.getString(R.string.consent_prompt), consent.view<TextView>(R.id.read_aloud).text.toString())
        assertTrue(consent.view<TextView>(R.id.read_aloud).text.startsWith("Men ekspluatatsiyadan"))
        assertEquals("Suhbat savollariga javob berish", consent.tagged<CheckBox>("scope:INTERVIEW").text.toString())
        assertTrue(ConsentScope.values().none { consent.tagged<CheckBox>("scope:${it.name}").isChecked })
        click(consent, R.id.save_consent)
        assertEquals("Kamida bitta bandni belgilang.", consent.view<TextView>(R.id.status).text.toString())
        for (s in listOf("INTERVIEW", "AUDIO", "PHOTOS", "SHARE_CASEWORKERS")) consent.tagged<CheckBox>("scope:$s").isChecked = true
        click(consent, R.id.save_consent)
        assertTrue(consent.isFinishing)
        val recorded = vault.currentConsent(caseId)!!
        assertEquals("uz", recorded.language)
        assertEquals("worker-7", recorded.recordedBy)
        assertEquals(
            setOf(ConsentScope.INTERVIEW, ConsentScope.AUDIO, ConsentScope.PHOTOS, ConsentScope.SHARE_CASEWORKERS),
            recorded.scopes.toSet(),
        )

        // The interview starts in the consent's language.
        case = launch(CaseActivity::class.java, caseIntent).get()
        assertTrue(case.view<TextView>(R.id.consent_status).text.startsWith("Consent (version 1)"))
        click(case, R.id.start_interview)
        val formIntent = nextStarted(case, InterviewActivity::class.java)
        val interviewId = formIntent.getStringExtra(InterviewActivity.EXTRA_INTERVIEW_ID)!!
        var form = launch(InterviewActivity::class.java, formIntent).get()
        assertSecure(form)
        val template = vault.template(CaseActivity.TEMPLATE_ID, CaseActivity.TEMPLATE_VERSION, "uz")
        assertEquals(template.title, form.view<TextView>(R.id.title).text.toString())
        val hours = template.sections.flatMap { it.questions }.first { it.id == "hours_per_day" }
        assertEquals(hours.label, form.tagged<TextView>("label:hours_per_day").text.toString())
        assertEquals("Ruxsat etilgan: 0 dan 24 gacha.", form.tagged<TextView>("rule:hours_per_day").text.toString())
        assertEquals("Rozi (rozilik yozuvidan)", form.tagged<TextView>("input:consent_interview").text.toString())
        assertEquals("Rozi emas (rozilik yozuvidan)", form.tagged<TextView>("input:consent_share_legal").text.toString())
        assertEquals("Saqlash va toʻxtatish", form.view<Button>(R.id.save_draft).text.toString())

        // "Why we ask" opens on demand.
        val withWhy = template.sections.flatMap { it.questions }.first { it.whyWeAsk != null }
        assertEquals(View.GONE, form.tagged<View>("why:${withWhy.id}").visibility)
        clickTag(form, "why-button:${withWhy.id}")
        assertEquals(View.VISIBLE, form.tagged<View>("why:${withWhy.id}").visibility)
        assertEquals(withWhy.whyWeAsk, form.tagged<TextView>("why:${withWhy.id}").text.toString())

        // Skip logic from the core, live: the interpreter's language appears with "yes".
        assertEquals(View.GONE, form.tagged<View>("question:interpreter_language").visibility)
        assertEquals("Ha", form.tagged<RadioButton>("choice:interpreter_used:yes").text.toString())
        clickTag(form, "choice:interpreter_used:yes")
        assertEquals(View.VISIBLE, form.tagged<View>("question:interpreter_language").visibility)
        clickTag(form, "choice:interpreter_language:russian")

        // A value the core rejects: the error is shown under the question, in Uzbek; nothing stored.
        form.tagged<EditText>("input:hours_per_day").setText("30")
        form.tagged<EditText>("input:narrative").setText(marker)
        click(form, R.id.save_draft)
        assertFalse(form.isFinishing)
        val coreError = assertThrows(AmanatException.Answer::class.java) {
            vault.saveAnswers(interviewId, mapOf("hours_per_day" to AnswerValue.Integer(30L)))
        }
        assertEquals("hours_per_day", coreError.question)
        // The core's typed reason, with the template's limits, and its own Uzbek sentence.
        assertEquals(AnswerReason.OutOfRange(min = "0", max = "24"), coreError.reason)
        val shown = form.tagged<TextView>("error:hours_per_day")
        assertEquals(View.VISIBLE, shown.visibility)
        assertEquals("Qiymat ruxsat etilgan oraliqdan tashqarida. Ruxsat etilgan: 0 dan 24 gacha.", shown.text.toString())
        assertEquals(Messages.answerMessage(uz.resources, coreError), shown.text.toString())
        assertNotEquals(Messages.answerMessage(shell.app.resources, coreError), shown.text.toString())
        assertFalse(vault.getInterview(interviewId).answers.containsKey("narrative"))

        // Another rule, another sentence: coordinates where a district is asked (the core keeps
        // district names only).
        form.tagged<EditText>("input:hours_per_day").setText("14")
        form.tagged<EditText>("input:origin_location").setText("41.2995, 69.2401")
        click(form, R.id.save_draft)
        assertFalse(form.isFinishing)
        assertEquals(View.GONE, shown.visibility)
        val where = form.tagged<TextView>("error:origin_location")
        assertEquals(View.VISIBLE, where.visibility)
        assertEquals("Koordinatalarni emas, tumanni kiriting.", where.text.toString())
        assertEquals(AnswerReason.Coordinates, assertThrows(AmanatException.Answer::class.java) {
            vault.saveAnswers(interviewId, mapOf("origin_location" to AnswerValue.Location("41.2995, 69.2401")))
        }.reason)
        assertFalse(vault.getInterview(interviewId).answers.containsKey("hours_per_day"))
        form.tagged<EditText>("input:origin_location").setText("")

        // A number field with letters never reaches the core.
        form.tagged<EditText>("input:hours_per_day").setText("oʻn")
        click(form, R.id.save_draft)
        assertEquals("Son kiriting.", shown.text.toString())

        // Fixed: saved, and "save and pause" leaves the screen.
        form.tagged<EditText>("input:hours_per_day").setText("14")
        click(form, R.id.save_draft)
        assertEquals(View.GONE, shown.visibility)
        assertTrue(form.isFinishing)
        var stored = vault.getInterview(interviewId).answers
        assertEquals(AnswerValue.Integer(14L), stored["hours_per_day"])
        assertEquals(AnswerValue.YesNo(true), stored["interpreter_used"])
        assertEquals(AnswerValue.Text(marker), stored["narrative"])

        // Reopened: the stored answers are back in the fields.
        form = launch(InterviewActivity::class.java, formIntent).get()
        assertEquals("14", form.tagged<EditText>("input:hours_per_day").text.toString())
        assertTrue(form.tagged<RadioButton>("choice:interpreter_used:yes").isChecked)

        // Audio from the (fake) microphone, streamed into the vault.
        shadowOf(shell.app).grantPermissions(android.Manifest.permission.RECORD_AUDIO)
        assertEquals("Yozib olish", form.tagged<Button>("capture:narrative_audio").text.toString())
        clickTag(form, "capture:narrative_audio")
        assertEquals("Yozuv saqlandi (98 KB).", form.tagged<TextView>("attachment:narrative_audio").text.toString())
        stored = vault.getInterview(interviewId).answers
        val audio = stored["narrative_audio"] as AnswerValue.Attachment
        assertEquals("audio/wav", audio.mediaType)
        vault.openAttachment(audio.id).use { r -> assertArrayEquals(FakeAudioSource.bytes(audioBytes), r.readAll()) }

        // A photo: the camera app writes through the capture provider; the import shreds the file.
        clickTag(form, "capture:document_photo")
        val camera = shadowOf(form).nextStartedActivityForResult
        assertEquals(MediaStore.ACTION_IMAGE_CAPTURE, camera.intent.action)
        @Suppress("DEPRECATION")
        val out = camera.intent.getParcelableExtra<Uri>(MediaStore.EXTRA_OUTPUT)!!
        val jpeg = ByteArray(5000) { (it % 7).toByte() }
        shell.app.contentResolver.openOutputStream(out)!!.use { it.write(jpeg) }
        val shot = File(CaptureProvider.dir(shell.app), out.lastPathSegment!!)
        assertTrue(shot.exists())
        shadowOf(form).receiveResult(camera.intent, android.app.Activity.RESULT_OK, null)
        idle()
        assertFalse("source shredded", shot.exists())
        assertEquals("Surat saqlandi (5 KB).", form.tagged<TextView>("attachment:document_photo").text.toString())
        val photo = vault.getInterview(interviewId).answers["document_photo"] as AnswerValue.Attachment
        vault.openAttachment(photo.id).use { r -> assertArrayEquals(jpeg, r.readAll()) }

        // Submit: read-only afterwards.
        click(form, R.id.submit)
        assertEquals("Yuborildi. Endi oʻzgartirib boʻlmaydi; kerak boʻlsa, tuzating.", form.view<TextView>(R.id.status).text.toString())
        assertFalse(form.tagged<EditText>("input:hours_per_day").isEnabled)
        assertFalse(form.view<Button>(R.id.submit).isEnabled)
        assertEquals(InterviewStatus.SUBMITTED, vault.getInterview(interviewId).status)

        // Amend from the case screen: a new draft with the answers, submitted as version 2.
        case = launch(CaseActivity::class.java, caseIntent).get()
        clickTag(case, "amend:$interviewId")
        val amendIntent = nextStarted(case, InterviewActivity::class.java)
        val amendId = amendIntent.getStringExtra(InterviewActivity.EXTRA_INTERVIEW_ID)!!
        assertNotEquals(interviewId, amendId)
        form = launch(InterviewActivity::class.java, amendIntent).get()
        assertSecure(form)
        assertEquals("14", form.tagged<EditText>("input:hours_per_day").text.toString())
        clickTag(form, "choice:safe_now:no")
        click(form, R.id.submit)
        assertEquals(InterviewStatus.SUBMITTED, vault.getInterview(amendId).status)
        assertEquals(AnswerValue.Choice("no"), vault.getInterview(amendId).answers["safe_now"])
        assertEquals(2u, vault.verifyChain(amendId))
        case = launch(CaseActivity::class.java, caseIntent).get()
        assertThrows(AssertionError::class.java) { case.tagged<View>("amend:$interviewId") } // superseded
        assertNotNull(case.tagged<View>("amend:$amendId"))

        // Nothing of the survivor's answers or the passcode went to the log.
        for (entry in ShadowLog.getLogs()) {
            assertFalse(entry.msg.contains(marker))
            assertFalse(entry.msg.contains(PASS))
        }
        val notifications = shadowOf(shell.app.getSystemService(android.app.NotificationManager::class.java)).allNotifications
        assertTrue(notifications.isEmpty())

        // Panic wipe from the case list: confirm, everything gone, back to a first-run lock screen.
        list = launch(CaseListActivity::class.java).get()
        assertEquals(1, list.view<LinearLayout>(R.id.case_list).childCount)
        click(list, R.id.panic)
        val dialog = ShadowAlertDialog.getLatestAlertDialog() as AlertDialog
        assertEquals("Wipe everything now?", shadowOf(dialog).title.toString())
        dialog.getButton(DialogInterface.BUTTON_POSITIVE).performClick()
        idle()
        assertFalse(shell.session.exists())
        nextStarted(list, LockActivity::class.java)
        val after = launch(LockActivity::class.java).get()
        assertEquals("Choose a passcode", after.view<TextView>(R.id.title).text.toString())
        // Nothing left to open with the old passcode.
        assertThrows(AmanatException.NoVault::class.java) {
            org.amanat.core.Vault.open(shell.session.dir, shell.app.config.keyProvider).use { it.unlock(PASS) }
        }
        assertNull(CaptureProvider.dir(shell.app).listFiles()?.firstOrNull())
    }

    @Test
    fun panicWipeCanBeCancelled() {
        val shell = TestShell()
        shell.session.create(PASS)
        shell.session.unlocked().createCase()
        val list = launch(CaseListActivity::class.java).get()
        click(list, R.id.panic)
        val dialog = ShadowAlertDialog.getLatestAlertDialog() as AlertDialog
        dialog.getButton(DialogInterface.BUTTON_NEGATIVE).performClick()
        idle()
        assertTrue(shell.session.exists())
        assertEquals(1, shell.session.unlocked().listCases().size)
    }

    @Test
    fun recordingNeedsTheMicrophonePermissionAndAudioConsent() {
        val shell = TestShell()
        shell.session.create(PASS)
        val v = shell.session.unlocked()
        val c = v.createCase()
        v.recordConsent(c.id, "worker-7", "ru", listOf(ConsentScope.INTERVIEW))
        val iv = v.startInterview(c.id, CaseActivity.TEMPLATE_ID, CaseActivity.TEMPLATE_VERSION, "ru")
        val intent = Intent(shell.app, InterviewActivity::class.java).putExtra(InterviewActivity.EXTRA_INTERVIEW_ID, iv.id)
        val form = launch(InterviewActivity::class.java, intent).get()
        // Without audio consent the core hides the audio question.
        assertEquals(View.GONE, form.tagged<View>("question:narrative_audio").visibility)

        // Permission refused: no recording, a message in the interview's language (Russian).
        form.tagged<View>("capture:narrative_audio").performClick()
        idle()
        val request = shadowOf(form).lastRequestedPermission
        assertEquals(android.Manifest.permission.RECORD_AUDIO, request.requestedPermissions[0])
        form.onRequestPermissionsResult(request.requestCode, request.requestedPermissions, intArrayOf(android.content.pm.PackageManager.PERMISSION_DENIED))
        assertEquals("Для записи нужно разрешение на микрофон.", form.tagged<TextView>("attachment:narrative_audio").text.toString())

        // Permission granted but no audio consent: the core refuses before any byte; the source is closed.
        val source = FakeAudioSource(1000)
        shell.audio = { source }
        shadowOf(shell.app).grantPermissions(android.Manifest.permission.RECORD_AUDIO)
        form.tagged<View>("capture:narrative_audio").performClick()
        idle()
        assertEquals("Собеседник не дал на это согласия.", form.tagged<TextView>("attachment:narrative_audio").text.toString())
        assertFalse(source.started)
        assertTrue(source.closed)
        assertFalse(v.getInterview(iv.id).answers.containsKey("narrative_audio"))
    }

    @Test
    fun lockDuringARecordingLeavesNothingHalfWritten() {
        val shell = TestShell()
        shell.session.create(PASS)
        val v = shell.session.unlocked()
        val c = v.createCase()
        v.recordConsent(c.id, "worker-7", "en", listOf(ConsentScope.INTERVIEW, ConsentScope.AUDIO))
        val iv = v.startInterview(c.id, CaseActivity.TEMPLATE_ID, CaseActivity.TEMPLATE_VERSION, "en")
        val form = launch(InterviewActivity::class.java, Intent(shell.app, InterviewActivity::class.java).putExtra(InterviewActivity.EXTRA_INTERVIEW_ID, iv.id)).get()
        // The vault locks (auto-lock: the app went to the background) after the first chunk.
        val inner = FakeAudioSource(200_000)
        var chunks = 0
        shell.audio = {
            object : AudioSource by inner {
                override fun read(buffer: ByteArray): Int {
                    if (++chunks == 2) shell.session.lock()
                    return inner.read(buffer)
                }
            }
        }
        shadowOf(shell.app).grantPermissions(android.Manifest.permission.RECORD_AUDIO)
        form.tagged<View>("capture:narrative_audio").performClick()
        idle()
        assertEquals("The app is locked.", form.tagged<TextView>("attachment:narrative_audio").text.toString())
        assertTrue(inner.closed)
        shell.session.unlock(PASS)
        assertFalse(v.getInterview(iv.id).answers.containsKey("narrative_audio"))
    }

    @Test
    fun cancelledPhotoIsShredded() {
        val shell = TestShell()
        shell.session.create(PASS)
        val v = shell.session.unlocked()
        val c = v.createCase()
        v.recordConsent(c.id, "worker-7", "en", listOf(ConsentScope.INTERVIEW, ConsentScope.PHOTOS))
        val iv = v.startInterview(c.id, CaseActivity.TEMPLATE_ID, CaseActivity.TEMPLATE_VERSION, "en")
        val form = launch(InterviewActivity::class.java, Intent(shell.app, InterviewActivity::class.java).putExtra(InterviewActivity.EXTRA_INTERVIEW_ID, iv.id)).get()
        form.tagged<View>("capture:document_photo").performClick()
        idle()
        val camera = shadowOf(form).nextStartedActivityForResult
        @Suppress("DEPRECATION")
        val out = camera.intent.getParcelableExtra<Uri>(MediaStore.EXTRA_OUTPUT)!!
        shell.app.contentResolver.openOutputStream(out)!!.use { it.write(ByteArray(100)) }
        val shot = File(CaptureProvider.dir(shell.app), out.lastPathSegment!!)
        assertTrue(shot.exists())
        shadowOf(form).receiveResult(camera.intent, android.app.Activity.RESULT_CANCELED, null)
        idle()
        assertFalse(shot.exists())
        assertFalse(v.getInterview(iv.id).answers.containsKey("document_photo"))
        // The provider serves only names it makes, and never for reading.
        assertThrows(java.io.FileNotFoundException::class.java) {
            shell.app.contentResolver.openInputStream(out)
        }
        assertThrows(java.io.FileNotFoundException::class.java) {
            shell.app.contentResolver.openOutputStream(Uri.parse("content://${CaptureProvider.AUTHORITY}/..%2Fvault%2Fx"))
        }
    }
}
