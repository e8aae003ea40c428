"""The Amanat API from Python: the interview flow, bad inputs and typed errors.

Run by scripts/test-bindings.sh with the generated module (amanat_ffi.py and libamanat_ffi.so)
on PYTHONPATH.
"""

import os
import shutil
import tempfile
import threading
import unittest

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
    software_key_provider,
    vault_exists,
)

FAST = KdfParams(m_kib=256, t=1, p=1)
PASS = "246810"
TEMPLATE = "trafficking_screening"


class DelegatingProvider(KeyProvider):
    """A Python provider (callbacks from Rust into Python) backed by the software provider."""

    def __init__(self, key_path):
        self.inner = software_key_provider(key_path)
        self.calls = 0

    def wrap(self, plaintext):
        self.calls += 1
        return self.inner.wrap(plaintext)

    def unwrap(self, wrapped):
        self.calls += 1
        return self.inner.unwrap(wrapped)

    def destroy_key(self):
        self.inner.destroy_key()


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
        self.provider = DelegatingProvider(os.path.join(self.tmp, "device.key"))
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


if __name__ == "__main__":
    unittest.main()
