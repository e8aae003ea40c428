// Sync through the bindings against the real relay that scripts/test-bindings.sh starts on
// 127.0.0.1 (`amanat serve`, an `org init` organisation); enrollment codes come from
// `amanat device enroll`, run here as a process, as HQ would hand them out.
package org.amanat.tests

import org.amanat.core.*
import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest as JdkRequest
import java.net.http.HttpResponse as JdkResponse
import java.nio.file.Files
import java.time.Duration
import java.util.Collections
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import kotlin.test.*
import org.junit.jupiter.api.Test

/** The relay the test script started, and HQ's `device enroll`. */
object Relay {
    private fun env(name: String): String = System.getenv(name)
        ?: error("$name is not set: run the binding tests through scripts/test-bindings.sh")

    val url: String get() = env("AMANAT_RELAY_URL")

    /** Runs `amanat device <args>` as HQ would and returns its one line of JSON. */
    private fun hq(vararg args: String): String {
        val p = ProcessBuilder(
            listOf(env("AMANAT_BIN"), "device") + args.toList() +
                listOf("--org", env("AMANAT_ORG_DIR"), "--passphrase-file", env("AMANAT_PASSPHRASE_FILE")),
        ).redirectErrorStream(false).start()
        val out = p.inputStream.bufferedReader().readText()
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "device ${args[0]} finished")
        assertEquals(0, p.exitValue(), "device ${args[0]} failed")
        return out.trim()
    }

    /** A fresh one-time enrollment code, exactly as `amanat device enroll` prints it. */
    fun enrollmentCode(): String = hq("enroll")

    /** A code with this relay's URL signed into it (`amanat device enroll --relay URL`). */
    fun enrollmentCodeWithRelay(): String = hq("enroll", "--relay", url)

    /** Revokes `deviceId`: `amanat device revoke`, then POST to the relay (not device-signed). */
    fun revoke(deviceId: String) {
        val revocation = hq("revoke", deviceId)
        val resp = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build().send(
            JdkRequest.newBuilder(URI.create("$url/v1/revocations"))
                .header("content-type", "application/json")
                .POST(JdkRequest.BodyPublishers.ofString(revocation)).build(),
            JdkResponse.BodyHandlers.ofString(),
        )
        assertEquals(200, resp.statusCode(), resp.body())
    }
}

/** Records every progress report (on the syncing thread). */
class RecordingObserver : SyncObserver {
    val seen: MutableList<SyncProgress> = Collections.synchronizedList(mutableListOf())
    override fun onProgress(progress: SyncProgress) { seen += progress }
    fun phases(): List<SyncPhase> = synchronized(seen) { seen.map { it.phase }.distinct() }
}

/** A shell transport on the JDK's own HTTP client (what OkHttp / URLSession would be). */
class JdkTransport : Transport {
    val calls = AtomicInteger()
    private val client = HttpClient.newBuilder()
        .connectTimeout(Duration.ofSeconds(10))
        .followRedirects(HttpClient.Redirect.NEVER)
        .version(HttpClient.Version.HTTP_1_1)
        .build()

    override fun send(request: HttpRequest): HttpResponse {
        calls.incrementAndGet()
        val b = JdkRequest.newBuilder(URI.create(request.url)).timeout(Duration.ofSeconds(20))
        // The JDK client sets content-length itself and refuses to be told.
        request.headers.filter { !it.name.equals("content-length", true) }
            .forEach { b.header(it.name, it.value) }
        b.method(request.method,
            if (request.body.isEmpty()) JdkRequest.BodyPublishers.noBody()
            else JdkRequest.BodyPublishers.ofByteArray(request.body))
        val r = try {
            client.send(b.build(), JdkResponse.BodyHandlers.ofByteArray())
        } catch (e: java.net.ConnectException) {
            throw TransportFfiException.Connect()
        } catch (e: java.net.http.HttpTimeoutException) {
            throw TransportFfiException.Timeout()
        }
        val headers = r.headers().map().flatMap { (k, vs) -> vs.map { HttpHeader(k, it) } }
        return HttpResponse(r.statusCode().toUShort(), headers, r.body())
    }
}

/** A shell transport with a bug: throws an undeclared exception whose text quotes data. */
class ThrowingTransport : Transport {
    val calls = AtomicInteger()
    override fun send(request: HttpRequest): HttpResponse {
        calls.incrementAndGet()
        throw IllegalStateException("SECRET-IN-TRANSPORT ${request.url}")
    }
}

/** A shell transport that reports a declared, typed failure. */
class TimingOutTransport : Transport {
    override fun send(request: HttpRequest): HttpResponse = throw TransportFfiException.Timeout()
}

/** A shell observer with a bug. */
class ThrowingObserver : SyncObserver {
    val calls = AtomicInteger()
    override fun onProgress(progress: SyncProgress) {
        calls.incrementAndGet()
        throw RuntimeException("observer bug")
    }
}

class SyncTest {
    private val tmp: File = Files.createTempDirectory("amanat-kt-sync").toFile()

    private fun device(name: String): Vault =
        Vault.createWithKeyFile(File(tmp, name).path, PASS, File(tmp, "$name.key").path, FAST)

    private fun enrolled(name: String, transport: Transport? = null): Pair<Vault, Enrollment> {
        val v = device(name)
        return v to v.enroll(Relay.enrollmentCode(), Relay.url, transport)
    }

    private fun <T> cleanup(body: () -> T): T = try { body() } finally { tmp.deleteRecursively() }

    @Test
    fun twoDevicesShareACaseWriteOnOneAndReadOnTheOther() = cleanup {
        val (a, ea) = enrolled("a")
        val (b, eb) = enrolled("b")
        assertEquals(ea.orgFingerprint, eb.orgFingerprint)
        assertEquals(DeviceRole.FIELD, ea.role)
        assertEquals(Relay.url, ea.relayUrl)
        assertEquals(ea, a.enrollment())
        assertNotEquals(ea.deviceId, eb.deviceId)

        val case = caseWithConsent(a, ConsentScope.INTERVIEW)
        a.setCaseField(case.id, "status", "open")
        // A shares the case with B; B registers A (phase 1: the caller vouches for the keys).
        val team = a.shareCase(case.id, eb.signingPublicKey, eb.ageRecipient)
        assertEquals(eb.deviceId, team.deviceId)
        assertEquals(listOf(case.id), team.cases)
        b.shareCase(case.id, ea.signingPublicKey, ea.ageRecipient)

        val before = a.syncStatus()
        // Case, consent, field change, and the audit entries of those actions (to HQ only).
        val queued = before.pending
        assertTrue(queued >= 3uL, "$before")
        assertTrue(before.enrolled)
        assertNull(before.lastSuccessMs)
        assertEquals(emptyList<WedgedEntry>(), before.wedged)

        val observer = RecordingObserver()
        val ra = a.sync(null, observer)
        assertNull(ra.interrupted, "$ra")
        assertEquals(queued, ra.pushed)
        assertEquals(0uL, ra.pending)
        assertTrue(ra.bytesUp > 0uL && ra.bytesDown > 0uL)
        // The observer saw the phases in order, and the byte counts only grow.
        assertEquals(listOf(SyncPhase.PREPARE, SyncPhase.PUSH, SyncPhase.PULL), observer.phases())
        val ups = observer.seen.map { it.bytesUp }
        assertEquals(ups.sorted(), ups)
        // The push pass reported every queued entry done (a second pass, for attachment
        // entries whose blob just completed, has nothing to do here).
        assertTrue(observer.seen.any { it.phase == SyncPhase.PUSH && it.done == queued && it.total == queued },
            "${observer.seen}")
        val after = a.syncStatus()
        assertEquals(0uL, after.pending)
        assertNotNull(after.lastSuccessMs)

        // B pulls, verifies and applies: the case, its consent and the field are there.
        val rb = b.sync(null, null)
        assertNull(rb.interrupted, "$rb")
        assertEquals(3uL, rb.pulled, "case, consent, field; audit entries go to HQ only")
        assertEquals(0uL, rb.quarantined)
        val onB = b.getCase(case.id)
        assertEquals(case.code, onB.code)
        assertEquals("open", onB.fields["status"]?.value)
        assertEquals(emptyList<QuarantinedEnvelope>(), b.quarantined())

        // B writes; A reads it after both synced.
        b.setCaseField(case.id, "next_step", "referral")
        val bQueued = b.syncStatus().pending
        assertEquals(bQueued, b.sync(null, null).pushed)
        val ra2 = a.sync(null, null)
        assertEquals(1uL, ra2.pulled, "$ra2")
        val onA = a.getCase(case.id)
        assertEquals("referral", onA.fields["next_step"]?.value)
        assertEquals("open", onA.fields["status"]?.value)
        // Idempotent: nothing new on a second run.
        assertEquals(0uL, b.sync(null, null).pulled)
        a.destroy(); b.destroy()
    }

    @Test
    fun aSameFieldEditOnTwoDevicesIsAClashListedOnBothAndResolvedOnce() = cleanup {
        val (a, ea) = enrolled("a")
        val (b, eb) = enrolled("b")
        val case = caseWithConsent(a, ConsentScope.INTERVIEW)
        a.shareCase(case.id, eb.signingPublicKey, eb.ageRecipient)
        b.shareCase(case.id, ea.signingPublicKey, ea.ageRecipient)
        a.sync(null, null)
        b.sync(null, null)
        assertEquals(emptyList<SyncClash>(), a.clashes())

        // Offline on both, the same field: neither saw the other's value.
        a.setCaseField(case.id, "district", "north")
        b.setCaseField(case.id, "district", "south")
        a.sync(null, null)
        assertEquals(1uL, b.sync(null, null).clashes)
        assertEquals(1uL, a.sync(null, null).clashes)
        val onA = a.clashes()
        val onB = b.clashes()
        assertEquals(1, onA.size, "$onA")
        assertEquals(onA, onB, "the same clash, same id, on both devices")
        val clash = onA[0]
        assertEquals(case.id, clash.caseId)
        assertEquals(ClashedRecord.CASE, clash.record)
        assertEquals("district", clash.field)
        assertEquals(setOf("north", "south"), clash.values.map { it.value }.toSet())
        assertEquals(setOf(ea.deviceId, eb.deviceId), clash.values.map { it.author }.toSet())

        // A bad index and a stale id are typed and change nothing.
        val bad = assertFailsWith<AmanatException.InvalidInput> {
            a.resolveClash(clash.id, ClashChoice.Keep(7u))
        }
        assertEquals("choice", bad.field)
        val stale = assertFailsWith<AmanatException.NotFound> {
            a.resolveClash("not-a-clash", ClashChoice.Clear)
        }
        assertEquals("clash", stale.what)

        // Resolved on B with a new value; after both sync the clash is gone everywhere.
        b.resolveClash(clash.id, ClashChoice.Value("east"))
        assertEquals(emptyList<SyncClash>(), b.clashes())
        b.sync(null, null)
        a.sync(null, null)
        assertEquals(emptyList<SyncClash>(), a.clashes())
        assertEquals("east", a.getCase(case.id).fields["district"]?.value)
        assertEquals("east", b.getCase(case.id).fields["district"]?.value)
        a.destroy(); b.destroy()
    }

    @Test
    fun aShellTransportCarriesEnrollmentAndSync() = cleanup {
        val jdk = JdkTransport()
        val (a, _) = enrolled("a", jdk)
        assertEquals(1, jdk.calls.get(), "enrollment went through the shell's transport")
        caseWithConsent(a, ConsentScope.INTERVIEW)
        val queued = a.syncStatus().pending
        val r = a.sync(jdk, null)
        assertNull(r.interrupted, "$r")
        assertEquals(queued, r.pushed)
        assertTrue(jdk.calls.get() >= 3, "push and pull went through it too")
        a.destroy()
    }

    @Test
    fun cancelBeforeSyncIsACancelledInterruptionAndNothingIsLost() = cleanup {
        val (a, _) = enrolled("a")
        caseWithConsent(a, ConsentScope.INTERVIEW)
        val queued = a.syncStatus().pending
        val session = a.syncSession(null)
        assertFalse(session.isCancelled())
        session.cancel()
        assertTrue(session.isCancelled())
        val r = session.run(RecordingObserver())
        assertEquals(SyncInterruption.Cancelled, r.interrupted)
        assertNull(r.retryAfterMs, "a cancelled run asks for no wait")
        assertEquals(0uL, r.pushed)
        assertEquals(queued, r.pending)
        // A cancelled session stays cancelled.
        assertEquals(SyncInterruption.Cancelled, session.run(null).interrupted)
        assertEquals(queued, a.syncStatus().pending)
        assertNull(a.syncStatus().lastSuccessMs, "an interrupted run is not a success")
        // Nothing lost: the next run sends everything.
        val again = a.sync(null, null)
        assertEquals(queued, again.pushed)
        assertEquals(0uL, again.pending)
        session.destroy()
        assertFailsWith<IllegalStateException> { session.cancel() }
        a.destroy()
    }

    @Test
    fun cancelFromAnotherThreadDuringTheRunStopsIt() = cleanup {
        val (a, _) = enrolled("a")
        caseWithConsent(a, ConsentScope.INTERVIEW)
        val queued = a.syncStatus().pending
        val session = a.syncSession(null)
        // The observer's first report (prepare) has another thread cancel, and waits for it.
        val observer = object : SyncObserver {
            override fun onProgress(progress: SyncProgress) {
                if (!session.isCancelled()) thread { session.cancel() }.join()
            }
        }
        val r = session.run(observer)
        assertEquals(SyncInterruption.Cancelled, r.interrupted)
        assertEquals(queued, a.syncStatus().pending)
        assertEquals(queued, a.sync(null, null).pushed)
        a.destroy()
    }

    @Test
    fun aThrowingShellTransportIsATransientInterruptionAndEntriesStayQueued() = cleanup {
        val (a, _) = enrolled("a")
        caseWithConsent(a, ConsentScope.INTERVIEW)
        val queued = a.syncStatus().pending
        val bad = ThrowingTransport()
        val r = a.sync(bad, null)
        assertEquals(SyncInterruption.Transport(TransportErrorKind.OTHER), r.interrupted)
        assertNotNull(r.retryAfterMs, "the core says how long to wait")
        assertEquals(1, bad.calls.get())
        assertEquals(0uL, r.pushed)
        assertEquals(queued, r.pending)
        assertFalse(r.toString().contains("SECRET"))
        // A declared failure keeps its kind.
        assertEquals(SyncInterruption.Transport(TransportErrorKind.TIMEOUT),
            a.sync(TimingOutTransport(), null).interrupted)
        // A JVM `Error` (not an `Exception`: uniffi's generated code does not catch those; JNA
        // does) ends the same way, without a crash.
        val dying = object : Transport {
            override fun send(request: HttpRequest): HttpResponse = throw AssertionError("SECRET")
        }
        val r2 = a.sync(dying, null)
        assertEquals(SyncInterruption.Transport(TransportErrorKind.OTHER), r2.interrupted)
        assertEquals(queued, r2.pending)
        val dyingObserver = object : SyncObserver {
            override fun onProgress(progress: SyncProgress) = throw AssertionError("observer")
        }
        assertEquals(SyncInterruption.Transport(TransportErrorKind.OTHER),
            a.sync(dying, dyingObserver).interrupted)
        // A failing observer changes nothing either.
        val obs = ThrowingObserver()
        val ok = a.sync(null, obs)
        assertNull(ok.interrupted, "$ok")
        assertNull(ok.retryAfterMs)
        assertEquals(queued, ok.pushed)
        assertTrue(obs.calls.get() > 2, "the observer kept being called")
        a.destroy()
    }

    @Test
    fun wedgedEntriesCanBeListedRetriedAndDiscarded() = cleanup {
        val (a, _) = enrolled("a")
        caseWithConsent(a, ConsentScope.INTERVIEW)
        val big = a.createCase()
        // Over the relay's 6000-byte envelope limit (set by the test script).
        a.setCaseField(big.id, "notes", "x".repeat(4000))
        a.setCaseField(big.id, "history", "y".repeat(4000))
        val queued = a.syncStatus().pending
        val r = a.sync(null, null)
        assertNull(r.interrupted, "$r")
        // The big case's three entries (creation and two fields, each a snapshot over the limit)
        // are refused; everything else (the small case, consent, audit entries) went through.
        assertEquals(queued - 3uL, r.pushed, "$r")
        val wedged = a.syncStatus().wedged
        assertEquals(3, wedged.size, "$wedged")
        assertEquals(r.wedged, wedged.size.toULong())
        assertTrue(wedged.all { it.reason == "envelope_too_large" && it.kind == SyncEntryKind.CASE })
        assertEquals(3uL, a.syncStatus().pending, "only the wedged entries are left")
        // Retry: the same envelopes go again and are refused again.
        assertEquals(3uL, a.retryWedged())
        assertEquals(0, a.syncStatus().wedged.size)
        assertEquals(3uL, a.sync(null, null).wedged)
        // Discard, one by one; an unknown number is `false`.
        assertFalse(a.discardWedged(999_999uL))
        for (w in a.syncStatus().wedged) assertTrue(a.discardWedged(w.seq))
        assertEquals(0uL, a.syncStatus().pending)
        assertEquals(0uL, a.sync(null, null).pending)
        a.destroy()
    }

    @Test
    fun aRevokedDeviceIsWipedOnItsNextSync() = cleanup {
        val (a, ea) = enrolled("a")
        caseWithConsent(a, ConsentScope.INTERVIEW)
        val dir = a.dir()
        assertTrue(vaultExists(dir))
        Relay.revoke(ea.deviceId)
        assertFailsWith<AmanatException.Revoked> { a.sync(null, null) }
        assertFalse(vaultExists(dir), "the vault was wiped")
        assertFalse(a.isUnlocked())
        val after = assertFailsWith<AmanatException> { a.listCases() }
        assertTrue(after.code() in setOf("no_vault", "locked"), after.code())
        a.destroy()
    }

    @Test
    fun anEnvelopeFromAnUnregisteredDeviceIsQuarantinedNotApplied() = cleanup {
        val (b, eb) = enrolled("b")
        val (c, _) = enrolled("c")
        // C shares a case with B, but B never registered C: B must not trust what C signs.
        val case = c.createCase()
        c.shareCase(case.id, eb.signingPublicKey, eb.ageRecipient)
        val cQueued = c.syncStatus().pending
        assertEquals(cQueued, c.sync(null, null).pushed)
        val r = b.sync(null, null)
        assertEquals(0uL to 1uL, r.pulled to r.quarantined, "$r")
        val q = b.quarantined()
        assertEquals(listOf("unknown_author"), q.map { it.reason })
        assertTrue(q[0].payload.isNotEmpty(), "kept, still encrypted")
        assertFailsWith<AmanatException.NotFound> { b.getCase(case.id) }
        b.destroy(); c.destroy()
    }

    @Test
    fun concurrentRunsOnOneVaultAreSerialisedAndSendEachEntryOnce() = cleanup {
        val (a, _) = enrolled("a")
        repeat(20) { a.createCase() }
        val queued = a.syncStatus().pending
        val reports = Collections.synchronizedList(mutableListOf<SyncReport>())
        val errors = Collections.synchronizedList(mutableListOf<Throwable>())
        val threads = (1..4).map {
            thread {
                try { reports += a.sync(null, null) } catch (e: Throwable) { errors += e }
            }
        }
        threads.forEach { it.join() }
        assertEquals(emptyList<Throwable>(), errors.toList())
        assertTrue(reports.all { it.interrupted == null }, "$reports")
        assertEquals(queued, reports.sumOf { it.pushed }, "each entry pushed once")
        assertEquals(0uL, reports.sumOf { it.duplicates })
        assertEquals(0uL, a.syncStatus().pending)
        a.destroy()
    }

    @Test
    fun aCodeCarryingTheRelayNeedsNoUrlAndRefusesAnother() = cleanup {
        val v = device("a")
        val e = v.enroll(Relay.enrollmentCodeWithRelay(), null, null)
        assertEquals(Relay.url, e.relayUrl)
        caseWithConsent(v, ConsentScope.INTERVIEW)
        val queued = v.syncStatus().pending
        assertEquals(queued, v.sync(null, null).pushed)
        // Another URL than the signed one: refused before anything is sent, nothing stored.
        val other = device("b")
        val counting = JdkTransport()
        assertFailsWith<AmanatException.RelayUrlMismatch> {
            other.enroll(Relay.enrollmentCodeWithRelay(), "http://127.0.0.1:9", counting)
        }
        assertEquals(0, counting.calls.get())
        assertFalse(other.syncStatus().enrolled)
        // A code without a URL needs one.
        assertFailsWith<AmanatException.NoRelayUrl> { other.enroll(Relay.enrollmentCode(), null, null) }
        v.destroy(); other.destroy()
    }

    @Test
    fun syncErrorsAreTyped() = cleanup {
        val v = device("a")
        assertFalse(v.syncStatus().enrolled)
        assertNull(v.enrollment())
        assertFailsWith<AmanatException.NotEnrolled> { v.sync(null, null) }
        assertFailsWith<AmanatException.BadEnrollmentCode> { v.enroll("{}", Relay.url, null) }
        assertFailsWith<AmanatException.InvalidRelayUrl> { v.enroll(Relay.enrollmentCode(), "ftp://x", null) }
        // Plain http to a non-loopback host is refused before any shell transport sees it.
        val jdk = JdkTransport()
        val insecure = assertFailsWith<AmanatException.Transport> {
            v.enroll(Relay.enrollmentCode(), "http://192.0.2.1:8443", jdk)
        }
        assertEquals(TransportErrorKind.INSECURE_URL, insecure.kind)
        assertEquals(0, jdk.calls.get())
        // A code is single-use: the relay's stable code comes back.
        val code = Relay.enrollmentCode()
        v.enroll(code, Relay.url, null)
        assertFailsWith<AmanatException.AlreadyEnrolled> { v.enroll(code, Relay.url, null) }
        val other = device("b")
        val used = assertFailsWith<AmanatException.Rejected> { other.enroll(code, Relay.url, null) }
        assertEquals("code_used", used.relayCode)
        assertEquals("rejected", used.code())
        assertTrue(used.status.toInt() in 400..499)
        // Bad team-device keys are the caller's input.
        val case = v.createCase()
        assertFailsWith<AmanatException.InvalidInput> { v.shareCase(case.id, "zz", "age1nope") }
        // Enrollment over a throwing shell transport is a typed transport error.
        val third = device("c")
        val t = assertFailsWith<AmanatException.Transport> {
            third.enroll(Relay.enrollmentCode(), Relay.url, ThrowingTransport())
        }
        assertEquals(TransportErrorKind.OTHER, t.kind)
        assertFalse(t.message.orEmpty().contains("SECRET"))
        assertFalse(third.syncStatus().enrolled)
        v.destroy(); other.destroy(); third.destroy()
    }
}
