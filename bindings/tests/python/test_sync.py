"""Sync from Python against the real relay scripts/test-bindings.sh starts on 127.0.0.1.

The relay serves an `org init` organisation; enrollment codes come from `amanat device enroll`,
run here as a process. The environment variables below are set by the script.
"""

import os
import shutil
import subprocess
import tempfile
import threading
import unittest
import urllib.error
import urllib.request

from amanat_ffi import (
    AmanatError,
    BackgroundUploadStep,
    ClashChoice,
    ClashedRecord,
    ConsentScope,
    DeviceRole,
    HttpHeader,
    HttpResponse,
    SyncEntryKind,
    SyncInterruption,
    SyncObserver,
    SyncPhase,
    Transport,
    TransportErrorKind,
    TransportFfiError,
    Vault,
    background_upload_next,
    discard_background_uploads,
    vault_exists,
)

from test_bindings import FAST, PASS, TEMPLATE


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the tests through scripts/test-bindings.sh")
    return value


def relay_url():
    return _env("AMANAT_RELAY_URL")


def _hq(*args):
    """Runs `amanat device <args>` as HQ would; returns its one line of JSON."""
    out = subprocess.run(
        [_env("AMANAT_BIN"), "device", *args, "--org", _env("AMANAT_ORG_DIR"),
         "--passphrase-file", _env("AMANAT_PASSPHRASE_FILE")],
        check=True, capture_output=True, text=True, timeout=60,
    )
    return out.stdout.strip()


def enrollment_code():
    """A fresh one-time code, as `amanat device enroll` prints it."""
    return _hq("enroll")


def enrollment_code_with_relay():
    """A code with this relay's URL signed into it (`amanat device enroll --relay URL`)."""
    return _hq("enroll", "--relay", relay_url())


def revoke(device_id):
    """`amanat device revoke`, then POST to the relay (revocations are not device-signed)."""
    req = urllib.request.Request(
        relay_url() + "/v1/revocations", data=_hq("revoke", device_id).encode(), method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=20) as r:
        assert r.status == 200, r.status


class Recorder(SyncObserver):
    def __init__(self):
        self.seen = []

    def on_progress(self, progress):
        self.seen.append(progress)

    def phases(self):
        out = []
        for p in self.seen:
            if p.phase not in out:
                out.append(p.phase)
        return out


class UrllibTransport(Transport):
    """A shell transport on the standard library's HTTP client."""

    def __init__(self):
        self.calls = 0
        self.methods = []

    def send(self, request):
        self.calls += 1
        self.methods.append(request.method)
        req = urllib.request.Request(
            request.url, data=request.body or None, method=request.method,
            headers={h.name: h.value for h in request.headers},
        )
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                status, headers, body = r.status, r.getheaders(), r.read()
        except urllib.error.HTTPError as e:  # a 4xx/5xx is an answer, not a failure
            status, headers, body = e.code, e.headers.items(), e.read()
        except urllib.error.URLError:
            raise TransportFfiError.Connect()
        return HttpResponse(status=status, headers=[HttpHeader(name=k, value=v) for k, v in headers],
                            body=body)


class ThrowingTransport(Transport):
    def __init__(self):
        self.calls = 0

    def send(self, request):
        self.calls += 1
        raise RuntimeError("SECRET-IN-TRANSPORT " + request.url)


class ThrowingObserver(SyncObserver):
    def __init__(self):
        self.calls = 0

    def on_progress(self, progress):
        self.calls += 1
        raise ValueError("observer bug")


class SyncBase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="amanat-py-sync")
        self.vaults = []

    def tearDown(self):
        for v in self.vaults:
            v.lock()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def device(self, name):
        v = Vault.create_with_key_file(os.path.join(self.tmp, name), PASS,
                                       os.path.join(self.tmp, name + ".key"), FAST)
        self.vaults.append(v)
        return v

    def enrolled(self, name, transport=None):
        v = self.device(name)
        return v, v.enroll(enrollment_code(), relay_url(), transport)

    @staticmethod
    def case_with_consent(v):
        case = v.create_case()
        v.record_consent(case.id, "worker-17", "ru", [ConsentScope.INTERVIEW])
        return case


class SyncTest(SyncBase):
    def test_two_devices_share_a_case_write_on_one_read_on_the_other(self):
        a, ea = self.enrolled("a")
        b, eb = self.enrolled("b", UrllibTransport())
        self.assertEqual(ea.org_fingerprint, eb.org_fingerprint)
        self.assertEqual(ea.role, DeviceRole.FIELD)
        self.assertEqual(a.enrollment(), ea)
        case = self.case_with_consent(a)
        a.set_case_field(case.id, "status", "open")
        team = a.share_case(case.id, eb.signing_public_key, eb.age_recipient)
        self.assertEqual(team.cases, [case.id])
        b.share_case(case.id, ea.signing_public_key, ea.age_recipient)
        queued = a.sync_status().pending  # case, consent, field + their audit entries (HQ only)
        self.assertGreaterEqual(queued, 3)

        rec = Recorder()
        ra = a.sync(None, rec)
        self.assertIsNone(ra.interrupted, ra)
        self.assertEqual((ra.pushed, ra.pending), (queued, 0))
        self.assertEqual(rec.phases(), [SyncPhase.PREPARE, SyncPhase.PUSH, SyncPhase.PULL])
        self.assertIsNotNone(a.sync_status().last_success_ms)

        # B syncs through a Python transport; the case arrives verified and applied.
        rb = b.sync(UrllibTransport(), None)
        self.assertIsNone(rb.interrupted, rb)
        self.assertEqual((rb.pulled, rb.quarantined), (3, 0))
        on_b = b.get_case(case.id)
        self.assertEqual(on_b.code, case.code)
        self.assertEqual(on_b.fields["status"].value, "open")

        b.set_case_field(case.id, "next_step", "referral")
        b_queued = b.sync_status().pending
        self.assertEqual(b.sync(None, None).pushed, b_queued)
        self.assertEqual(a.sync(None, None).pulled, 1)
        self.assertEqual(a.get_case(case.id).fields["next_step"].value, "referral")

    def test_background_uploads_send_planned_chunks_while_locked(self):
        """The iOS shell's background uploader, played by urllib: the plan is written while
        unlocked; with the vault locked each chunk file goes out as its signed request and the
        core names the next; the unlocked sync then sends no chunk again."""
        a, _ = self.enrolled("a")
        case = a.create_case()
        a.record_consent(case.id, "worker-17", "ru", [ConsentScope.INTERVIEW, ConsentScope.AUDIO])
        i = a.start_interview(case.id, TEMPLATE, 1, "ru")
        w = a.open_attachment_writer(i.id, "narrative_audio", "audio/ogg", None)
        w.write(os.urandom(1024 * 1024 + 4096))
        w.finish()
        plan = a.prepare_background_uploads(64 * 1024 * 1024, 3_600_000)
        self.assertEqual((plan.blobs, len(plan.first)), (1, 1))
        request = plan.first[0]
        self.assertEqual((request.method, request.offset, request.attempt), ("PUT", 0, 1))
        self.assertTrue(request.url.startswith(relay_url()))
        names = {h.name for h in request.headers}
        self.assertIn("x-amanat-expires", names)
        vault_dir = os.path.join(self.tmp, "a")
        a.lock()
        sent, steps = 0, 0
        while True:
            with open(request.file_path, "rb") as f:
                body = f.read()
            req = urllib.request.Request(request.url, data=body, method=request.method)
            for h in request.headers:
                req.add_header(h.name, h.value)
            with urllib.request.urlopen(req, timeout=20) as resp:
                status, answer = resp.status, resp.read()
            sent += len(body)
            steps += 1
            step = background_upload_next(vault_dir, request.blob_sha256, request.offset,
                                           request.attempt, status, answer)
            if not isinstance(step, BackgroundUploadStep.UPLOAD):
                break
            request = step.request
        self.assertIsInstance(step, BackgroundUploadStep.FINISHED)
        self.assertEqual((sent, steps), (plan.bytes, 2))
        # A transient answer retries the same chunk; without a plan the answer is "stop".
        again = background_upload_next(vault_dir, request.blob_sha256, request.offset, 1, 503, b"")
        self.assertIsInstance(again, BackgroundUploadStep.UPLOAD)
        self.assertEqual((again.request.offset, again.request.attempt), (request.offset, 2))
        discard_background_uploads(vault_dir)
        self.assertIsInstance(
            background_upload_next(vault_dir, request.blob_sha256, 0, 1, 200, b'{"offset":1}'),
            BackgroundUploadStep.STOP)
        a.unlock(PASS)
        counting = UrllibTransport()
        report = a.sync(counting, None)
        self.assertIsNone(report.interrupted, report)
        self.assertEqual(report.pending, 0)
        self.assertNotIn("PUT", counting.methods)
        self.assertIn("POST", counting.methods)

    def test_a_same_field_edit_on_two_devices_is_a_clash_listed_on_both_and_resolved_once(self):
        a, ea = self.enrolled("a")
        b, eb = self.enrolled("b")
        case = self.case_with_consent(a)
        a.share_case(case.id, eb.signing_public_key, eb.age_recipient)
        b.share_case(case.id, ea.signing_public_key, ea.age_recipient)
        a.sync(None, None)
        b.sync(None, None)
        self.assertEqual(a.clashes(), [])
        # Offline on both, the same field: neither saw the other's value.
        a.set_case_field(case.id, "district", "north")
        b.set_case_field(case.id, "district", "south")
        a.sync(None, None)
        self.assertEqual(b.sync(None, None).clashes, 1)
        self.assertEqual(a.sync(None, None).clashes, 1)
        on_a, on_b = a.clashes(), b.clashes()
        self.assertEqual(len(on_a), 1, on_a)
        self.assertEqual(on_a, on_b)
        clash = on_a[0]
        self.assertEqual((clash.case_id, clash.record, clash.field), (case.id, ClashedRecord.CASE, "district"))
        self.assertEqual({v.value for v in clash.values}, {"north", "south"})
        self.assertEqual({v.author for v in clash.values}, {ea.device_id, eb.device_id})
        with self.assertRaises(AmanatError.InvalidInput) as bad:
            a.resolve_clash(clash.id, ClashChoice.KEEP(7))
        self.assertEqual(bad.exception.field, "choice")
        with self.assertRaises(AmanatError.NotFound) as stale:
            a.resolve_clash("not-a-clash", ClashChoice.CLEAR())
        self.assertEqual(stale.exception.what, "clash")
        # Keep A's value, resolved on A; after both sync the clash is gone on both.
        keep = [i for i, v in enumerate(clash.values) if v.value == "north"][0]
        a.resolve_clash(clash.id, ClashChoice.KEEP(keep))
        a.sync(None, None)
        b.sync(None, None)
        self.assertEqual((a.clashes(), b.clashes()), ([], []))
        self.assertEqual(b.get_case(case.id).fields["district"].value, "north")

    def test_cancel_before_sync_and_from_another_thread(self):
        a, _ = self.enrolled("a")
        self.case_with_consent(a)
        queued = a.sync_status().pending
        session = a.sync_session(None)
        session.cancel()
        r = session.run(Recorder())
        self.assertEqual(r.interrupted, SyncInterruption.CANCELLED())
        self.assertEqual((r.pushed, r.pending), (0, queued))
        self.assertEqual(a.sync_status().pending, queued)

        # Cancelled from another thread while the run is under way (at its first report).
        session2 = a.sync_session(None)

        class CancelOnFirst(SyncObserver):
            def on_progress(self, progress):
                if not session2.is_cancelled():
                    t = threading.Thread(target=session2.cancel)
                    t.start()
                    t.join()

        self.assertEqual(session2.run(CancelOnFirst()).interrupted, SyncInterruption.CANCELLED())
        self.assertEqual(a.sync_status().pending, queued)
        # Nothing lost.
        again = a.sync(None, None)
        self.assertEqual((again.pushed, again.pending), (queued, 0))

    def test_a_throwing_transport_is_an_interruption_and_entries_stay_queued(self):
        a, _ = self.enrolled("a")
        self.case_with_consent(a)
        queued = a.sync_status().pending
        bad = ThrowingTransport()
        r = a.sync(bad, None)
        self.assertEqual(r.interrupted, SyncInterruption.TRANSPORT(TransportErrorKind.OTHER))
        self.assertEqual(bad.calls, 1)
        self.assertEqual((r.pushed, r.pending), (0, queued))
        self.assertNotIn("SECRET", repr(r))
        obs = ThrowingObserver()
        ok = a.sync(None, obs)
        self.assertIsNone(ok.interrupted, ok)
        self.assertEqual(ok.pushed, queued)
        self.assertGreater(obs.calls, 2)

    def test_wedged_entries_list_retry_discard(self):
        a, _ = self.enrolled("a")
        self.case_with_consent(a)
        big = a.create_case()
        a.set_case_field(big.id, "notes", "x" * 4000)
        a.set_case_field(big.id, "history", "y" * 4000)
        queued = a.sync_status().pending
        r = a.sync(None, None)
        self.assertEqual((r.pushed, r.wedged), (queued - 3, 3), r)
        wedged = a.sync_status().wedged
        self.assertEqual([w.reason for w in wedged], ["envelope_too_large"] * 3)
        self.assertTrue(all(w.kind == SyncEntryKind.CASE for w in wedged))
        self.assertEqual(a.retry_wedged(), 3)
        self.assertEqual(a.sync(None, None).wedged, 3)
        self.assertFalse(a.discard_wedged(999999))
        for w in a.sync_status().wedged:
            self.assertTrue(a.discard_wedged(w.seq))
        self.assertEqual(a.sync_status().pending, 0)

    def test_a_revoked_device_is_wiped_on_its_next_sync(self):
        a, ea = self.enrolled("a")
        self.case_with_consent(a)
        self.assertTrue(vault_exists(a.dir()))
        revoke(ea.device_id)
        with self.assertRaises(AmanatError.Revoked):
            a.sync(None, None)
        self.assertFalse(vault_exists(a.dir()))
        with self.assertRaises(AmanatError) as ctx:
            a.list_cases()
        self.assertIn(ctx.exception.code(), ("no_vault", "locked"))

    def test_an_unregistered_author_is_quarantined_not_applied(self):
        b, eb = self.enrolled("b")
        c, _ = self.enrolled("c")
        case = c.create_case()
        c.share_case(case.id, eb.signing_public_key, eb.age_recipient)
        c_queued = c.sync_status().pending
        self.assertEqual(c.sync(None, None).pushed, c_queued)
        r = b.sync(None, None)
        self.assertEqual((r.pulled, r.quarantined), (0, 1), r)
        self.assertEqual([q.reason for q in b.quarantined()], ["unknown_author"])
        with self.assertRaises(AmanatError.NotFound):
            b.get_case(case.id)

    def test_a_code_carrying_the_relay_needs_no_url_and_refuses_another(self):
        v = self.device("a")
        self.assertEqual(v.enroll(enrollment_code_with_relay(), None, None).relay_url, relay_url())
        other = self.device("b")
        counting = UrllibTransport()
        with self.assertRaises(AmanatError.RelayUrlMismatch):
            other.enroll(enrollment_code_with_relay(), "http://127.0.0.1:9", counting)
        self.assertEqual(counting.calls, 0)
        with self.assertRaises(AmanatError.NoRelayUrl):
            other.enroll(enrollment_code(), None, None)
        self.assertFalse(other.sync_status().enrolled)

    def test_errors_are_typed(self):
        v = self.device("a")
        self.assertFalse(v.sync_status().enrolled)
        with self.assertRaises(AmanatError.NotEnrolled):
            v.sync(None, None)
        with self.assertRaises(AmanatError.BadEnrollmentCode):
            v.enroll("{}", relay_url(), None)
        with self.assertRaises(AmanatError.Transport) as ctx:
            v.enroll(enrollment_code(), "http://192.0.2.1:8443", UrllibTransport())
        self.assertEqual(ctx.exception.kind, TransportErrorKind.INSECURE_URL)
        code = enrollment_code()
        v.enroll(code, relay_url(), None)
        with self.assertRaises(AmanatError.AlreadyEnrolled):
            v.enroll(code, relay_url(), None)
        with self.assertRaises(AmanatError.Rejected) as ctx:
            self.device("b").enroll(code, relay_url(), None)
        self.assertEqual(ctx.exception.relay_code, "code_used")
        self.assertEqual(ctx.exception.code(), "rejected")
        with self.assertRaises(AmanatError.Transport) as ctx:
            self.device("c").enroll(enrollment_code(), relay_url(), ThrowingTransport())
        self.assertEqual(ctx.exception.kind, TransportErrorKind.OTHER)
        self.assertNotIn("SECRET", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
