// Enrollment, the sync screen, the background job and the HttpsURLConnection transport, against
// the REAL relay scripts/test-android.sh starts on 127.0.0.1 (`amanat serve`, an `org init`
// organisation, envelopes over 6000 bytes refused) — the same relay setup as the binding tests
// (scripts/start-relay.sh). Enrollment codes come from `amanat device enroll`, run as HQ would.
package org.amanat.android

import android.app.job.JobInfo
import android.app.job.JobParameters
import android.app.job.JobScheduler
import android.os.Bundle
import android.os.PersistableBundle
import android.view.View
import android.widget.Button
import android.widget.CheckBox
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import org.amanat.core.AnswerValue
import org.amanat.core.ConsentScope
import org.amanat.core.HttpRequest
import org.amanat.core.HttpResponse
import org.amanat.core.InterviewStatus
import org.amanat.core.SyncInterruption
import org.amanat.core.Transport
import org.amanat.core.TransportErrorKind
import org.amanat.core.TransportFfiException
import org.amanat.core.Vault
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowLog
import java.io.File
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** The relay the test script started, and HQ's `amanat device enroll`. */
object Hq {
    private fun env(name: String): String = System.getenv(name)
        ?: throw AssertionError("$name is not set: run these tests through scripts/test-android.sh")

    val url: String get() = env("AMANAT_RELAY_URL")

    private fun device(vararg args: String): String {
        val p = ProcessBuilder(
            listOf(env("AMANAT_BIN"), "device") + args.toList() +
                listOf("--org", env("AMANAT_ORG_DIR"), "--passphrase-file", env("AMANAT_PASSPHRASE_FILE")),
        ).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        val out = p.inputStream.bufferedReader().readText()
        assertTrue("device ${args[0]} finished", p.waitFor(60, TimeUnit.SECONDS))
        assertEquals("device ${args[0]} failed", 0, p.exitValue())
        return out.trim()
    }

    /** A one-time code that names no relay (the screen then needs the address). */
    fun code(): String = device("enroll")

    /** A code with this relay's URL signed into it. */
    fun codeWithRelay(): String = device("enroll", "--relay", url)
}

/** A loopback TCP forwarder to the relay, to have a relay address that can die mid-test. */
class Forwarder(private val target: String) : AutoCloseable {
    private val server = belowEphemeralRange()
    private val sockets: MutableList<Socket> = Collections.synchronizedList(mutableListOf())
    val url: String get() = "http://127.0.0.1:${server.localPort}"

    init {
        val (host, port) = target.removePrefix("http://").split(":")
        Thread {
            while (!server.isClosed) {
                val client = try { server.accept() } catch (e: Exception) { break }
                val upstream = Socket(host, port.toInt())
                sockets += client
                sockets += upstream
                pipe(client, upstream)
                pipe(upstream, client)
            }
        }.apply { isDaemon = true }.start()
    }

    private fun pipe(from: Socket, to: Socket) = Thread {
        try {
            from.getInputStream().copyTo(to.getOutputStream())
        } catch (e: Exception) {
        } finally {
            try { to.shutdownOutput() } catch (e: Exception) {}
        }
    }.apply { isDaemon = true }.start()

    /** A listening port below the kernel's ephemeral range: once closed, connecting to it is
     *  refused for sure. (A freed ephemeral port can be handed to the connecting socket itself, a
     *  TCP self-connect, and the "dead relay" would answer.) */
    private fun belowEphemeralRange(): ServerSocket {
        val low = try {
            java.io.File("/proc/sys/net/ipv4/ip_local_port_range").readText().trim().split(Regex("\\s+"))[0].toInt()
        } catch (e: Exception) {
            32768
        }
        val random = java.util.Random()
        repeat(200) {
            val port = 10000 + random.nextInt(maxOf(1, low - 10000))
            try {
                return ServerSocket(port, 50, InetAddress.getLoopbackAddress())
            } catch (e: java.io.IOException) {
            }
        }
        return ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    }

    override fun close() {
        server.close()
        synchronized(sockets) { sockets.forEach { try { it.close() } catch (e: Exception) {} } }
    }
}

/** A transport that lets the test hold the run inside its first request. */
class GateTransport(private val inner: Transport = HttpsTransport()) : Transport {
    val entered = CountDownLatch(1)
    val release = CountDownLatch(1)
    val calls = AtomicInteger()

    override fun send(request: HttpRequest): HttpResponse {
        calls.incrementAndGet()
        entered.countDown()
        release.await(30, TimeUnit.SECONDS)
        return inner.send(request)
    }
}

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class SyncScreenTest {
    private val tmp: File = Files.createTempDirectory("amanat-android-sync").toFile()

    @After
    fun cleanup() {
        tmp.deleteRecursively()
    }

    private fun click(a: android.app.Activity, id: Int) {
        a.view<View>(id).performClick()
        idle()
    }

    private fun clickTag(a: android.app.Activity, tag: String) {
        a.tagged<View>(tag).performClick()
        idle()
    }

    private fun text(a: android.app.Activity, id: Int) = a.view<TextView>(id).text.toString()

    /** Runs the main looper until [done] (work on other threads posts back to it). */
    private fun waitFor(what: String, done: () -> Boolean) {
        val until = System.currentTimeMillis() + 30_000
        while (true) {
            idle()
            if (done()) return
            if (System.currentTimeMillis() > until) throw AssertionError("timed out waiting for $what")
            Thread.sleep(20)
        }
    }

    /** A shell with an unlocked vault enrolled at [relayUrl] through the app's transport. */
    private fun enrolledShell(shell: TestShell = TestShell(), relayUrl: String = Hq.url): TestShell {
        shell.session.create(PASS)
        shell.session.unlocked().enroll(Hq.code(), relayUrl, HttpsTransport())
        return shell
    }

    /** A case with consent and a submitted screening interview, written through the core. */
    private fun caseWithSubmittedInterview(v: Vault): Pair<String, String> {
        val case = v.createCase()
        v.recordConsent(case.id, "worker-7", "uz", listOf(ConsentScope.INTERVIEW, ConsentScope.SHARE_CASEWORKERS))
        val iv = v.startInterview(case.id, CaseActivity.TEMPLATE_ID, CaseActivity.TEMPLATE_VERSION, "uz")
        v.saveAnswers(iv.id, mapOf("hours_per_day" to AnswerValue.Integer(14L)))
        v.submitInterview(iv.id)
        return case.id to iv.id
    }

    private fun jobParams(): JobParameters = JobParameters(
        null, null, SyncScheduler.JOB_ID, PersistableBundle(), Bundle(), null, 0,
        false, false, false, null, null, null,
    )

    @Test
    fun enrollOnTheScreenThenACaseAndASubmittedInterviewGoUp() {
        val shell = TestShell()
        shell.session.create(PASS)
        var sync = launch(SyncActivity::class.java).get()
        assertSecure(sync)
        assertEquals("Not connected to the organisation.", text(sync, R.id.sync_enrolled))
        assertFalse(sync.view<Button>(R.id.sync_now).isEnabled)
        click(sync, R.id.open_enroll)
        val enroll = launch(EnrollActivity::class.java, nextStarted(sync, EnrollActivity::class.java)).get()
        assertSecure(enroll)

        // The core's typed refusals, each in the shell's words; nothing enrolled.
        fun attempt(code: String, url: String): String {
            enroll.view<EditText>(R.id.enroll_code).setText(code)
            enroll.view<EditText>(R.id.enroll_relay).setText(url)
            click(enroll, R.id.enroll)
            return text(enroll, R.id.status)
        }
        assertEquals("This is not a valid enrollment code.", attempt("not a code", Hq.url))
        val code = Hq.code()
        assertEquals("The code names no server: enter the server address.", attempt(code, ""))
        assertEquals("The server address must start with https://.", attempt(code, "http://192.0.2.1:8443"))
        assertEquals("The server address differs from the one in the code. Nothing was sent.",
            attempt(Hq.codeWithRelay(), "http://127.0.0.1:9"))
        assertNull(shell.session.unlocked().enrollment())
        assertFalse(enroll.isFinishing)

        // The real code and the relay: enrolled, screen closes, the job is scheduled.
        attempt(code, Hq.url)
        assertTrue(text(enroll, R.id.status), enroll.isFinishing)
        val e = shell.session.unlocked().enrollment()!!
        assertEquals(Hq.url, e.relayUrl)
        assertNotNull(shell.app.getSystemService(JobScheduler::class.java)!!.getPendingJob(SyncScheduler.JOB_ID))
        // Enrolling again is refused by the core before any request, and shown.
        assertEquals("This phone is already connected.", attempt(Hq.code(), Hq.url))

        // A second device (as the team member the case is shared with) to see what arrived.
        val other = Vault.createWithKeyFile(File(tmp, "b").path, PASS, File(tmp, "b.key").path, FAST)
        val eb = other.enroll(Hq.codeWithRelay(), null, null)
        val vault = shell.session.unlocked()
        val (caseId, interviewId) = caseWithSubmittedInterview(vault)
        vault.shareCase(caseId, eb.signingPublicKey, eb.ageRecipient)
        other.shareCase(caseId, e.signingPublicKey, e.ageRecipient)
        val queued = vault.syncStatus().pending
        assertTrue("$queued", queued >= 4uL)

        sync = launch(SyncActivity::class.java).get()
        assertEquals("Connected as device ${e.deviceId}.", text(sync, R.id.sync_enrolled))
        assertEquals(View.GONE, sync.view<View>(R.id.open_enroll).visibility)
        assertEquals("Waiting to be sent: $queued", text(sync, R.id.sync_pending))
        assertEquals("Never synced yet.", text(sync, R.id.sync_last))
        click(sync, R.id.sync_now)
        assertEquals("Done: $queued sent, 0 received.", text(sync, R.id.sync_result))
        assertEquals("Waiting to be sent: 0", text(sync, R.id.sync_pending))
        assertTrue(text(sync, R.id.sync_last).startsWith("Last sync: "))
        assertEquals(0uL, vault.syncStatus().pending)
        assertNotNull(vault.syncStatus().lastSuccessMs)

        // The relay really has them: the other device pulls the case and the submitted interview.
        val r = other.sync(null, null)
        assertNull("$r", r.interrupted)
        assertEquals(vault.getCase(caseId).code, other.getCase(caseId).code)
        assertEquals(InterviewStatus.SUBMITTED, other.getInterview(interviewId).status)
        assertEquals(AnswerValue.Integer(14L), other.getInterview(interviewId).answers["hours_per_day"])
        other.destroy()
        // Nothing about the sync went to the log.
        assertTrue(ShadowLog.getLogs().none { it.msg?.contains(caseId) == true || it.msg?.contains(Hq.url) == true })
    }

    @Test
    fun aDeadRelayIsATransientFailureOnTheScreenNotACrash() {
        val forwarder = Forwarder(Hq.url)
        val shell = enrolledShell(relayUrl = forwarder.url)
        val vault = shell.session.unlocked()
        vault.createCase()
        val queued = vault.syncStatus().pending
        // The relay's address goes dead: connection refused at the transport.
        forwarder.close()
        val dead = assertThrows(TransportFfiException.Connect::class.java) {
            HttpsTransport().send(HttpRequest("GET", "${forwarder.url}/v1/health", "/v1/health", emptyList(), ByteArray(0)))
        }
        assertNotNull(dead)

        val sync = launch(SyncActivity::class.java).get()
        assertEquals(View.GONE, sync.view<View>(R.id.sync_failures).visibility)
        click(sync, R.id.sync_now)
        assertEquals("No connection to the server. Nothing was lost; it will try again.", text(sync, R.id.sync_result))
        assertEquals("Waiting to be sent: $queued", text(sync, R.id.sync_pending))
        // The core's backoff: one failure in a row, and when it says to try again.
        assertEquals(View.VISIBLE, sync.view<View>(R.id.sync_failures).visibility)
        assertTrue(text(sync, R.id.sync_failures), text(sync, R.id.sync_failures).startsWith("Failed attempts in a row: 1. Next attempt: "))
        assertEquals(1u, vault.syncStatus().consecutiveFailures)
        assertTrue(sync.view<Button>(R.id.sync_now).isEnabled)
        // The same through the job: a transient failure asks JobScheduler for its backoff.
        val service = Robolectric.buildService(SyncJobService::class.java).create().get()
        assertTrue(service.onStartJob(jobParams()))
        idle()
        assertEquals(SyncInterruption.Transport(TransportErrorKind.CONNECT), service.lastReport?.interrupted)
        assertTrue(shadowOf(service).isJobFinished)
        assertTrue("reschedule with backoff", shadowOf(service).isRescheduleNeeded)
    }

    @Test
    fun wedgedEntriesAreShownAndCanBeRetriedAndDiscarded() {
        val shell = enrolledShell()
        val vault = shell.session.unlocked()
        val big = vault.createCase()
        // Over the relay's 6000-byte envelope limit (set by the test script), as the binding tests do.
        vault.setCaseField(big.id, "notes", "x".repeat(4000))
        vault.setCaseField(big.id, "history", "y".repeat(4000))
        val sync = launch(SyncActivity::class.java).get()
        click(sync, R.id.sync_now)
        val wedged = vault.syncStatus().wedged
        assertEquals(3, wedged.size)
        assertEquals("Waiting to be sent: 3", text(sync, R.id.sync_pending))
        for (w in wedged) {
            assertEquals("Case (no. ${w.seq}): envelope_too_large", sync.tagged<TextView>("wedged:${w.seq}").text.toString())
        }
        // Nothing of the case's content on screen.
        assertTrue(allTexts(sync.window.decorView).none { it.contains("xxxx") || it.contains("yyyy") })

        // Send again: the marks go; the next run refuses them again.
        click(sync, R.id.retry_wedged)
        assertEquals(0, vault.syncStatus().wedged.size)
        assertEquals(0, sync.view<LinearLayout>(R.id.wedged_list).childCount)
        click(sync, R.id.sync_now)
        val again = vault.syncStatus().wedged
        assertEquals(3, again.size)
        // Discard, one by one: gone from the screen and from the outbox.
        for (w in again) clickTag(sync, "discard:${w.seq}")
        assertEquals(0, vault.syncStatus().wedged.size)
        assertEquals(0uL, vault.syncStatus().pending)
        assertEquals("Waiting to be sent: 0", text(sync, R.id.sync_pending))
        assertEquals(0, sync.view<LinearLayout>(R.id.wedged_list).childCount)
    }

    @Test
    fun syncNowShowsProgressAndStopCancelsTheSession() {
        val gate = GateTransport()
        val worker = Executors.newSingleThreadExecutor()
        val shell = enrolledShell(TestShell(sync = worker, transport = { gate }))
        val vault = shell.session.unlocked()
        caseWithSubmittedInterview(vault)
        val sync = launch(SyncActivity::class.java).get()
        click(sync, R.id.sync_now)
        assertTrue("the run reached the relay", gate.entered.await(30, TimeUnit.SECONDS))
        waitFor("progress") { Regex("(Preparing|Sending) \\d+ of \\d+").matches(text(sync, R.id.sync_progress)) }
        assertFalse("one run at a time", sync.view<Button>(R.id.sync_now).isEnabled)
        assertTrue(sync.view<Button>(R.id.sync_cancel).isEnabled)
        click(sync, R.id.sync_cancel)
        gate.release.countDown()
        waitFor("the run to end") { text(sync, R.id.sync_result).isNotEmpty() }
        assertEquals("Stopped. Nothing was lost; the rest goes next time.", text(sync, R.id.sync_result))
        assertFalse(sync.view<Button>(R.id.sync_cancel).isEnabled)
        assertTrue(sync.view<Button>(R.id.sync_now).isEnabled)
        // The next run sends whatever is left.
        val left = vault.syncStatus().pending
        assertNull(vault.sync(HttpsTransport(), null).interrupted)
        assertEquals(0uL, vault.syncStatus().pending)
        assertTrue(left >= 0uL)
        worker.shutdown()
    }

    @Test
    fun theJobIsScheduledWithANetworkConstraintAndBackoffAndRunsOneSession() {
        val shell = TestShell()
        shell.session.create(PASS)
        shell.session.lock()
        // Unlocking on the lock screen schedules the job.
        val lock = launch(LockActivity::class.java).get()
        lock.view<EditText>(R.id.passcode).setText(PASS)
        click(lock, R.id.unlock)
        val js = shell.app.getSystemService(JobScheduler::class.java)!!
        var job = js.getPendingJob(SyncScheduler.JOB_ID)!!
        assertEquals(SyncJobService::class.java.name, job.service.className)
        assertEquals(JobInfo.NETWORK_TYPE_ANY, job.networkType)
        assertEquals(JobInfo.BACKOFF_POLICY_EXPONENTIAL, job.backoffPolicy)
        assertEquals(30_000L, job.initialBackoffMillis)
        assertTrue(job.isPersisted)
        // "Only on Wi-Fi" on the sync screen reschedules it unmetered-only.
        val sync = launch(SyncActivity::class.java).get()
        sync.view<CheckBox>(R.id.unmetered_only).performClick()
        job = js.getPendingJob(SyncScheduler.JOB_ID)!!
        assertEquals(JobInfo.NETWORK_TYPE_UNMETERED, job.networkType)
        assertEquals(JobInfo.BACKOFF_POLICY_EXPONENTIAL, job.backoffPolicy)
        sync.view<CheckBox>(R.id.unmetered_only).performClick()
        assertEquals(JobInfo.NETWORK_TYPE_ANY, js.getPendingJob(SyncScheduler.JOB_ID)!!.networkType)

        // Not enrolled: an error no retry fixes — finished, no reschedule.
        var service = Robolectric.buildService(SyncJobService::class.java).create().get()
        assertTrue(service.onStartJob(jobParams()))
        idle()
        assertTrue(shadowOf(service).isJobFinished)
        assertFalse(shadowOf(service).isRescheduleNeeded)
        assertNull(service.lastReport)

        // Enrolled, with a case and a submitted interview: the job's run sends them.
        val vault = shell.session.unlocked()
        vault.enroll(Hq.code(), Hq.url, HttpsTransport())
        caseWithSubmittedInterview(vault)
        val queued = vault.syncStatus().pending
        service = Robolectric.buildService(SyncJobService::class.java).create().get()
        assertTrue(service.onStartJob(jobParams()))
        idle()
        val report = service.lastReport!!
        assertNull("$report", report.interrupted)
        assertEquals(queued, report.pushed)
        assertEquals(0uL, vault.syncStatus().pending)
        assertTrue(shadowOf(service).isJobFinished)
        assertFalse(shadowOf(service).isRescheduleNeeded)
        assertNull("no upload, no notification", service.uploadNotification)

        // Locked: the key is not in memory, so the job does nothing and asks for nothing.
        shell.session.lock()
        service = Robolectric.buildService(SyncJobService::class.java).create().get()
        assertFalse(service.onStartJob(jobParams()))
        idle()
        assertNull(service.lastReport)
    }

    @Test
    fun onStopJobCancelsTheRunningSession() {
        val gate = GateTransport()
        val worker = Executors.newSingleThreadExecutor()
        val shell = enrolledShell(TestShell(sync = worker, transport = { gate }))
        caseWithSubmittedInterview(shell.session.unlocked())
        val service = Robolectric.buildService(SyncJobService::class.java).create().get()
        val params = jobParams()
        assertTrue(service.onStartJob(params))
        assertTrue(gate.entered.await(30, TimeUnit.SECONDS))
        // The system stops the job (constraint lost, quota …): cancel, and ask for a reschedule.
        assertTrue(service.onStopJob(params))
        gate.release.countDown()
        waitFor("the cancelled run") { service.lastReport != null }
        assertEquals(SyncInterruption.Cancelled, service.lastReport!!.interrupted)
        // The framework ended the job already: no jobFinished after onStopJob.
        assertFalse(shadowOf(service).isJobFinished)
        worker.shutdown()
    }

    @Test
    fun aLongAttachmentUploadGetsAGenericNotification() {
        val shell = enrolledShell(TestShell(longUploadMs = 0))
        val vault = shell.session.unlocked()
        val case = vault.createCase()
        vault.recordConsent(case.id, "worker-7", "uz", listOf(ConsentScope.INTERVIEW, ConsentScope.AUDIO, ConsentScope.SHARE_CASEWORKERS))
        val iv = vault.startInterview(case.id, CaseActivity.TEMPLATE_ID, CaseActivity.TEMPLATE_VERSION, "uz")
        val w = vault.openAttachmentWriter(iv.id, "narrative_audio", "audio/wav", null)
        w.write(FakeAudioSource.bytes(200_000))
        w.finish()
        assertTrue(vault.getInterview(iv.id).answers["narrative_audio"] is AnswerValue.Attachment)
        vault.submitInterview(iv.id)

        val service = Robolectric.buildService(SyncJobService::class.java).create().get()
        assertTrue(service.onStartJob(jobParams()))
        idle()
        assertNull("${service.lastReport}", service.lastReport?.interrupted)
        assertEquals(0uL, vault.syncStatus().pending)
        val n = service.uploadNotification
        assertNotNull("the upload phase attached the notification", n)
        n!!
        assertEquals(SyncJobService.CHANNEL_ID, n.channelId)
        assertEquals(android.app.Notification.VISIBILITY_SECRET, n.visibility)
        val shown = listOfNotNull(
            n.extras.getCharSequence(android.app.Notification.EXTRA_TITLE),
            n.extras.getCharSequence(android.app.Notification.EXTRA_TEXT),
        ).map { it.toString() }
        assertEquals(listOf("Sending encrypted files"), shown)
        assertNull(n.publicVersion)
    }
    @Test
    fun aClashIsShownWithBothValuesAndResolvedFromTheScreen() {
        val shell = enrolledShell()
        val a = shell.session.unlocked()
        val ea = a.enrollment()!!
        val b = Vault.createWithKeyFile(File(tmp, "b").path, PASS, File(tmp, "b.key").path, FAST)
        val eb = b.enroll(Hq.codeWithRelay(), null, null)
        val case = a.createCase()
        a.recordConsent(case.id, "worker-7", "ru", listOf(ConsentScope.INTERVIEW))
        a.shareCase(case.id, eb.signingPublicKey, eb.ageRecipient)
        b.shareCase(case.id, ea.signingPublicKey, ea.ageRecipient)
        a.sync(HttpsTransport(), null)
        b.sync(null, null)
        // Offline on both, the same field.
        a.setCaseField(case.id, "district", "north")
        b.setCaseField(case.id, "district", "south")
        b.sync(null, null)

        val sync = launch(SyncActivity::class.java).get()
        assertEquals(0, sync.view<LinearLayout>(R.id.clash_list).childCount)
        click(sync, R.id.sync_now)
        val clash = a.clashes().single()
        assertEquals("district", sync.tagged<TextView>("clash:${clash.id}").text.toString())
        val keep = clash.values.indices.associate { i ->
            sync.tagged<Button>("keep:${clash.id}:$i").text.toString() to i
        }
        assertEquals(setOf("Keep: north", "Keep: south"), keep.keys)
        // Keep B's value: the clash is gone on this device, the field holds it, and it travels.
        clickTag(sync, "keep:${clash.id}:${keep.getValue("Keep: south")}")
        assertEquals(emptyList<Any>(), a.clashes())
        assertEquals(0, sync.view<LinearLayout>(R.id.clash_list).childCount)
        assertEquals("south", a.getCase(case.id).fields["district"]?.value)
        click(sync, R.id.sync_now)
        b.sync(null, null)
        assertEquals(emptyList<Any>(), b.clashes())
        assertEquals("south", b.getCase(case.id).fields["district"]?.value)
        b.destroy()
    }
}
