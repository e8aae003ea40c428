"""The Amanat API from Python: the interview flow, bad inputs and typed errors.

Run by scripts/test-bindings.sh with the generated module (amanat_ffi.py and libamanat_ffi.so)
on PYTHONPATH.
"""

import gc
import hashlib
import hmac
import inspect
import os
import secrets
import shutil
import tempfile
import threading
import unittest

import amanat_ffi

from amanat_ffi import (
    AmanatError,
    AnswerReason,
    AnswerValue,
    ConsentScope,
    InterviewStatus,
    KdfParams,
    KeyProvider,
    KeyProviderErrorKind,
    KeyProviderFfiError,
    QuestionType,
    TemplateReason,
    Vault,
    check_template,
    vault_exists,
    wipe_vault,
    wipe_vault_with_key_file,
)

FAST = KdfParams(m_kib=256, t=1, p=1)
PASS = "246810"
TEMPLATE = "trafficking_screening"


class MemoryProvider(KeyProvider):
    """A Python provider (callbacks from Rust into Python) with a key held in memory.

    Encrypt-then-MAC from the standard library (SHA-256 keystream, HMAC-SHA256 tag): what a
    platform keystore does, minus the hardware. Test use only.
    """

    def __init__(self):
        self.key = None
        self.calls = 0
        self.closed = False

    def close(self):
        self.closed = True

    def _check(self):
        if self.closed:
            raise RuntimeError("provider closed")

    def _stream(self, nonce, n):
        out = b""
        counter = 0
        while len(out) < n:
            out += hashlib.sha256(self.key + nonce + counter.to_bytes(8, "big")).digest()
            counter += 1
        return out[:n]

    def wrap(self, plaintext):
        self._check()
        self.calls += 1
        if self.key is None:  # wrap creates the platform key on first use (also after a wipe)
            self.key = secrets.token_bytes(32)
        nonce = secrets.token_bytes(16)
        ct = bytes(a ^ b for a, b in zip(plaintext, self._stream(nonce, len(plaintext))))
        return nonce + ct + hmac.new(self.key, nonce + ct, "sha256").digest()

    def unwrap(self, wrapped):
        self._check()
        self.calls += 1
        if self.key is None:
            raise KeyProviderFfiError.KeyMissing()
        if len(wrapped) < 48:
            raise KeyProviderFfiError.Rejected()
        nonce, ct, tag = wrapped[:16], wrapped[16:-32], wrapped[-32:]
        if not hmac.compare_digest(tag, hmac.new(self.key, nonce + ct, "sha256").digest()):
            raise KeyProviderFfiError.Rejected()
        return bytes(a ^ b for a, b in zip(ct, self._stream(nonce, len(ct))))

    def destroy_key(self):
        self._check()
        self.key = None


PLATFORM_MARKER = "PLATFORM-TEXT-4e1d /data/user/0/secret-alias"


class ChattyProvider(KeyProvider):
    """Its platform message carries a marker that must never reach an error."""

    def wrap(self, plaintext):
        raise KeyProviderFfiError.Unavailable(PLATFORM_MARKER)

    def unwrap(self, wrapped):
        raise KeyProviderFfiError.Unavailable(PLATFORM_MARKER)

    def destroy_key(self):
        raise KeyProviderFfiError.Unavailable(PLATFORM_MARKER)


class ThrowingProvider(KeyProvider):
    def wrap(self, plaintext):
        raise KeyProviderFfiError.Unavailable("keystore locked")

    def unwrap(self, wrapped):
        raise KeyProviderFfiError.Rejected()

    def destroy_key(self):
        pass


class CrashingProvider(KeyProvider):
    def wrap(self, plaintext):
        raise RuntimeError("bug in the provider")

    def unwrap(self, wrapped):
        raise RuntimeError("bug in the provider")

    def destroy_key(self):
        pass


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="amanat-py")
        self.dir = os.path.join(self.tmp, "vault")
        self.provider = MemoryProvider()
        self.vault = Vault.create(self.dir, PASS, self.provider, FAST)

    def tearDown(self):
        self.vault.lock()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def case_with_consent(self, *scopes):
        case = self.vault.create_case()
        self.vault.record_consent(case.id, "worker-17", "ru", list(scopes))
        return case


class FlowTest(Base):
    def test_full_flow_in_russian(self):
        v = self.vault
        case = self.case_with_consent(ConsentScope.INTERVIEW, ConsentScope.SHARE_CASEWORKERS)
        t = v.template(TEMPLATE, 1, "ru")
        self.assertEqual(t.language, "ru")
        ids = [q.id for s in t.sections for q in s.questions]
        self.assertIn("hours_per_day", ids)
        i = v.start_interview(case.id, TEMPLATE, 1, "ru")
        self.assertEqual(i.answers["consent_interview"], AnswerValue.CONSENT(value=True))
        i = v.save_answers(i.id, {
            "interpreter_used": AnswerValue.YES_NO(value=False),
            "first_contact": AnswerValue.CHOICE(value="messaging_app"),
            "platforms": AnswerValue.CHOICES(values=["telegram"]),
            "hours_per_day": AnswerValue.INTEGER(value=14),
            "narrative": AnswerValue.TEXT(value="Синтетический рассказ для теста."),
        })
        self.assertNotIn("interpreter_language", v.visible_questions(i.id))
        with self.assertRaises(AmanatError.Answer) as ctx:
            v.save_answers(i.id, {"hours_per_day": AnswerValue.INTEGER(value=30)})
        self.assertEqual(ctx.exception.question, "hours_per_day")
        # The rule is typed, so a shell can say it in Russian or Uzbek.
        self.assertEqual(ctx.exception.reason, AnswerReason.OUT_OF_RANGE(min="0", max="24"))
        self.assertTrue(ctx.exception.reason.is_OUT_OF_RANGE())
        self.assertEqual(ctx.exception.code(), "answer")
        self.assertNotIn("30", ctx.exception.detail)
        s = v.submit_interview(i.id)
        self.assertEqual(s.status, InterviewStatus.SUBMITTED)
        a = v.amend_interview(i.id)
        v.save_answers(a.id, {"safe_now": AnswerValue.CHOICE(value="yes")})
        v.submit_interview(a.id)
        self.assertEqual(v.verify_chain(a.id), 2)
        self.assertEqual(len(v.list_interviews(case.id)), 2)
        self.assertGreaterEqual(v.verify_audit(), 6)
        self.assertGreater(self.provider.calls, 0)

    def test_lock_wrong_passcode_and_duress(self):
        v = self.vault
        v.create_case()
        v.set_duress_passcode(PASS, "135791")
        v.lock()
        with self.assertRaises(AmanatError.Locked):
            v.list_cases()
        with self.assertRaises(AmanatError.WrongPasscode) as ctx:
            v.unlock("000000")
        self.assertEqual(ctx.exception.failed_attempts, 1)
        v.unlock("135791")
        self.assertEqual(v.list_cases(), [])
        v.panic_wipe()
        self.assertFalse(vault_exists(self.dir))

    def test_threads_share_one_vault(self):
        v = self.vault
        errors = []

        def work():
            try:
                for _ in range(5):
                    c = v.create_case()
                    v.set_case_field(c.id, "status", "open")
                    v.list_cases()
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(v.list_cases()), 30)


class BadInputTest(Base):
    def test_malformed_template_json_names_the_path(self):
        with self.assertRaises(AmanatError.Template) as ctx:
            self.vault.install_template('{"id": "x", "version": 1, "languages": ["en"]}')
        self.assertTrue(ctx.exception.path)
        self.assertEqual(ctx.exception.code(), "template")
        self.assertEqual(ctx.exception.path, "languages")
        self.assertEqual(ctx.exception.reason,
                         TemplateReason.MISSING_LANGUAGE(language="ru"))
        with self.assertRaises(AmanatError.Template) as ctx:
            check_template("{not json")
        self.assertEqual(ctx.exception.numeric_code(), 1301)
        self.assertTrue(ctx.exception.reason.is_INVALID_JSON())
        self.assertEqual(ctx.exception.reason.line, 1)

    def test_wrong_answer_types_name_the_question(self):
        case = self.case_with_consent(ConsentScope.INTERVIEW)
        i = self.vault.start_interview(case.id, TEMPLATE, 1, "en")
        cases = {
            "hours_per_day": (AnswerValue.TEXT(value="fourteen"),
                              AnswerReason.WRONG_TYPE(expected=QuestionType.INTEGER)),
            "interpreter_used": (AnswerValue.INTEGER(value=1),
                                 AnswerReason.WRONG_TYPE(expected=QuestionType.YES_NO)),
            "platforms": (AnswerValue.CHOICE(value="telegram"),
                          AnswerReason.WRONG_TYPE(expected=QuestionType.MULTIPLE_CHOICE)),
            "first_contact": (AnswerValue.CHOICE(value="no_such_choice"),
                              AnswerReason.UNKNOWN_CHOICE()),
        }
        for question, (value, reason) in cases.items():
            with self.subTest(question=question):
                with self.assertRaises(AmanatError.Answer) as ctx:
                    self.vault.save_answers(i.id, {question: value})
                self.assertEqual(ctx.exception.question, question)
                self.assertEqual(ctx.exception.reason, reason)
        with self.assertRaises(AmanatError.Answer) as ctx:
            self.vault.save_answers(i.id, {"consent_audio": AnswerValue.CONSENT(value=True)})
        self.assertEqual(ctx.exception.question, "consent_audio")
        self.assertEqual(ctx.exception.reason, AnswerReason.CONSENT_VIA_RECORD())
        with self.assertRaises(AmanatError.NotFound):
            self.vault.save_answers("zz", {})
        with self.assertRaises(AmanatError.InvalidInput):
            self.vault.record_consent(case.id, "", "ru", [ConsentScope.INTERVIEW])

    def test_failing_providers_and_corrupt_database(self):
        d = os.path.join(self.tmp, "other")
        with self.assertRaises(AmanatError.KeyProvider) as ctx:
            Vault.create(d, PASS, ThrowingProvider(), FAST)
        self.assertEqual(ctx.exception.kind, KeyProviderErrorKind.UNAVAILABLE)
        with self.assertRaises(AmanatError.KeyProvider):
            Vault.create(d, PASS, CrashingProvider(), FAST)
        self.assertFalse(vault_exists(d))
        self.vault.lock()
        with open(os.path.join(self.dir, "vault.db"), "wb") as f:
            f.write(b"\x5a" * 8192)
        wal = os.path.join(self.dir, "vault.db-wal")
        if os.path.exists(wal):
            os.remove(wal)
        reopened = Vault.open(self.dir, self.provider)
        with self.assertRaises(AmanatError) as ctx:
            reopened.unlock(PASS)
        self.assertIn(ctx.exception.code(), ("corrupt", "integrity", "storage"))


def _rust_object_classes():
    """Classes of the generated module that hold a handle to a Rust object."""
    return {
        name: obj
        for name, obj in vars(amanat_ffi).items()
        if inspect.isclass(obj) and hasattr(obj, "_uniffi_clone_handle")
    }


def _annotation_name(a):
    if isinstance(a, str):
        return a.strip("'\"")
    return getattr(a, "__name__", str(a))


class HardeningTest(Base):
    """Sequences that once crashed or leaked (issue 10, items 2, 8 and 9)."""

    def test_no_call_takes_a_rust_object_as_an_argument(self):
        # uniffi's generated code does not check, when lowering an argument, that a Rust
        # object is still alive; so the API never takes one (docs/API.md).
        objects = _rust_object_classes()
        self.assertIn("Vault", objects)
        # Traits the shell implements are fine as arguments only if no call returns a Rust
        # implementation of them (`<Trait>Impl`).
        shell_traits = {n[: -len("Impl")] for n in objects if n.endswith("Impl")}
        forbidden_args = set(objects) | {n + "Protocol" for n in objects}
        forbidden_returns = shell_traits | {t + "Impl" for t in shell_traits}
        callables = [
            (name, f) for name, f in vars(amanat_ffi).items()
            if inspect.isfunction(f) and not name.startswith("_") and f.__module__ == "amanat_ffi"
        ]
        for cname, cls in objects.items():
            for name, f in vars(cls).items():
                if name.startswith("_"):
                    continue
                if isinstance(f, (classmethod, staticmethod)):
                    f = f.__func__
                if inspect.isfunction(f):
                    callables.append((cname + "." + name, f))
        self.assertGreater(len(callables), 40)
        offenders = []
        for name, f in callables:
            sig = inspect.signature(f)
            for p in sig.parameters.values():
                if _annotation_name(p.annotation) in forbidden_args:
                    offenders.append(f"{name} takes {p.name}")
            if _annotation_name(sig.return_annotation) in forbidden_returns:
                offenders.append(f"{name} returns {_annotation_name(sig.return_annotation)}")
        self.assertEqual(offenders, [])

    def test_closed_python_provider_is_a_typed_error(self):
        self.vault.create_case()
        self.vault.lock()
        self.provider.close()
        reopened = Vault.open(self.dir, self.provider)
        with self.assertRaises(AmanatError.KeyProvider) as ctx:
            reopened.unlock(PASS)
        self.assertEqual(ctx.exception.kind, KeyProviderErrorKind.UNAVAILABLE)
        self.assertEqual(reopened.unlock_status().failed_attempts, 0)
        other = os.path.join(self.tmp, "other")
        with self.assertRaises(AmanatError.KeyProvider):
            Vault.create(other, PASS, self.provider, FAST)
        self.assertFalse(vault_exists(other))
        try:
            wipe_vault(self.dir, self.provider)
        except AmanatError:
            pass  # typed is all that is asked: the process is alive

    def test_key_file_vault_lifecycle(self):
        d = os.path.join(self.tmp, "kf")
        key = os.path.join(self.tmp, "device.key")
        Vault.create_with_key_file(d, PASS, key, FAST).create_case()
        v = Vault.open_with_key_file(d, key)
        v.unlock(PASS)
        self.assertEqual(len(v.list_cases()), 1)
        v.lock()
        os.remove(key)
        with self.assertRaises(AmanatError.KeyProvider) as ctx:
            v.unlock(PASS)
        self.assertEqual(ctx.exception.kind, KeyProviderErrorKind.KEY_MISSING)
        wipe_vault_with_key_file(d, key)
        self.assertFalse(vault_exists(d))

    def test_platform_text_never_reaches_the_error(self):
        with self.assertRaises(AmanatError.KeyProvider) as ctx:
            Vault.create(os.path.join(self.tmp, "chatty"), PASS, ChattyProvider(), FAST)
        e = ctx.exception
        for text in (e.detail, str(e), repr(e)):
            self.assertNotIn("PLATFORM-TEXT", text)
            self.assertNotIn("secret-alias", text)

    def test_objects_are_freed_when_the_last_reference_goes(self):
        # docs/API.md: Python has no destroy() or context manager on these objects; CPython
        # frees one as soon as its last reference goes. An unfinished writer freed that way
        # aborts: nothing of it stays on disk.
        for cls in _rust_object_classes().values():
            self.assertFalse(hasattr(cls, "destroy"), cls)
            self.assertFalse(hasattr(cls, "__enter__"), cls)
        case = self.case_with_consent(ConsentScope.INTERVIEW, ConsentScope.AUDIO)
        i = self.vault.start_interview(case.id, TEMPLATE, 1, "en")
        w = self.vault.open_attachment_writer(i.id, "narrative_audio", "audio/ogg", None)
        w.write(b"\x01" * 100_000)
        att = os.path.join(self.dir, "attachments")
        self.assertTrue(os.listdir(att), "the writer has a file while alive")
        del w
        gc.collect()
        self.assertEqual(os.listdir(att), [])


if __name__ == "__main__":
    unittest.main()
