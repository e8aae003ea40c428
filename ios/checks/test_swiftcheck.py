"""Tests of the Swift checker itself (python3 -m unittest, run by scripts/test-ios.sh).

They run the checker against the freshly generated bindings (AMANAT_SWIFT_BINDINGS, the
AmanatCore.swift that scripts/test-ios.sh generates) and against mutated copies of them and of the
shell, so the checker is shown to fail on exactly what it is meant to catch: a renamed function,
method, argument label, enum case, record field or type in the FFI; a shell file that does not
parse; a missing or malformed translation.
"""
import os
import re
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import swiftcheck as sc  # noqa: E402

IOS = os.path.dirname(HERE)
PLATFORM = os.path.join(HERE, "platform-names.txt")
BINDINGS = os.environ.get("AMANAT_SWIFT_BINDINGS", "")
RESOURCES = os.path.join(IOS, "Amanat", "Resources")


def bindings_text() -> str:
    with open(BINDINGS, encoding="utf-8") as f:
        return f.read()


@unittest.skipUnless(BINDINGS and os.path.exists(BINDINGS), "AMANAT_SWIFT_BINDINGS not set (scripts/test-ios.sh sets it)")
class NamesCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="swiftcheck-")
        cls.decls = sc.read_bindings(BINDINGS)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def mutated(self, pattern: str, replacement: str, count_at_least: int = 1) -> str:
        """A copy of the bindings with `pattern` (regex) replaced; asserts it occurred."""
        text, n = re.subn(pattern, replacement, bindings_text())
        self.assertGreaterEqual(n, count_at_least, f"pattern {pattern!r} not found in the bindings")
        path = os.path.join(self.tmp, "AmanatCore.swift")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def problems(self, bindings) -> list:
        return sc.check_names(bindings, IOS, PLATFORM)

    def test_shell_uses_only_names_of_the_bindings(self):
        self.assertEqual(self.problems(BINDINGS), [])

    def test_bindings_declare_what_the_shell_needs(self):
        # The collection itself: if it found nothing, every other test would pass vacuously.
        vault = self.decls.types["Vault"].members
        for m in ("unlock", "openAttachmentWriter", "importAttachmentFile", "syncSession", "resolveClash"):
            self.assertIn(m, vault)
        self.assertIn("vaultExists", self.decls.funcs)
        self.assertIn("Answer", self.decls.types["AmanatError"].members)
        self.assertEqual(
            [tuple(l for l, _ in c.labels) for c in self.decls.types["AmanatError"].members["Answer"] if c],
            [("question", "reason", "detail")],
        )

    def test_renamed_method_fails_naming_it(self):
        path = self.mutated(r"\bfunc openAttachmentWriter\(", "func openAttachmentStream(", 2)
        probs = self.problems(path)
        self.assertTrue(probs, "a renamed FFI method must fail the check")
        self.assertTrue(all("openAttachmentWriter" in p for p in probs), probs)
        self.assertRegex(probs[0], r"InterviewView\.swift:\d+:\d+: Vault\.openAttachmentWriter is not in the bindings")

    def test_renamed_free_function_fails_naming_it(self):
        probs = self.problems(self.mutated(r"\bfunc wipeVault\(", "func destroyVault("))
        self.assertTrue(any("wipeVault" in p and "VaultSession.swift" in p for p in probs), probs)

    def test_changed_argument_label_fails(self):
        probs = self.problems(self.mutated(r"func discardWedged\(seq:", "func discardWedged(entrySeq:", 2))
        self.assertTrue(any("discardWedged(seq:)" in p and "does not match" in p for p in probs), probs)

    def test_renamed_enum_case_fails(self):
        probs = self.problems(self.mutated(r"case outOfRange\(", "case outsideRange("))
        self.assertTrue(any("AnswerReason.outOfRange" in p for p in probs), probs)

    def test_error_case_arity_change_fails(self):
        # A new associated value in AmanatError.WrongPasscode breaks `case let .WrongPasscode(a, b, c)`.
        probs = self.problems(self.mutated(r"case WrongPasscode\(\n", "case WrongPasscode(lockedUntil: UInt64?, \n"))
        self.assertTrue(any("WrongPasscode" in p and "value(s)" in p for p in probs), probs)

    def test_renamed_record_field_fails(self):
        probs = self.problems(self.mutated(r"public var consecutiveFailures: UInt32", "public var failuresInARow: UInt32"))
        self.assertTrue(any("SyncStatus.consecutiveFailures" in p for p in probs), probs)

    def test_renamed_type_fails(self):
        probs = self.problems(self.mutated(r"\bpublic struct WedgedEntry\b", "public struct StuckEntry"))
        self.assertTrue(any("WedgedEntry" in p for p in probs), probs)

    def test_new_enum_case_breaks_an_exhaustive_switch(self):
        # A reason the FFI adds must get its sentence: Messages.answerMessage has no `default`.
        probs = self.problems(self.mutated(r"\n    case notAttachmentQuestion\n", "\n    case notAttachmentQuestion\n    case tooManyAttachments\n"))
        self.assertTrue(any("switch over AnswerReason misses .tooManyAttachments" in p and "Messages.swift" in p
                            for p in probs), probs)

    def test_renamed_protocol_requirement_fails(self):
        # KeyProvider.destroyKey renamed: SecureEnclaveKeyProvider no longer conforms.
        probs = self.problems(self.mutated(r"func destroyKey\(\) throws", "func destroyPlatformKey() throws"))
        self.assertTrue(any("SecureEnclaveKeyProvider adopts KeyProvider" in p for p in probs), probs)

    def test_platform_list_cannot_hide_a_bindings_type(self):
        plat = os.path.join(self.tmp, "platform.txt")
        with open(PLATFORM, encoding="utf-8") as f, open(plat, "w", encoding="utf-8") as g:
            g.write(f.read() + "\nVault\n")
        probs = sc.check_names(BINDINGS, IOS, plat)
        self.assertTrue(any("'Vault' is a bindings type" in p for p in probs), probs)

    def test_unknown_name_in_the_shell_fails(self):
        shell = os.path.join(self.tmp, "shell")
        shutil.copytree(IOS, shell, ignore=shutil.ignore_patterns("build", "checks"))
        path = os.path.join(shell, "AmanatKit", "Sources", "VaultSession.swift")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("v.unlockStatus()", "v.unlockState()")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        probs = sc.check_names(BINDINGS, shell, PLATFORM)
        self.assertTrue(any("Vault.unlockState is not in the bindings" in p for p in probs), probs)

    def test_sweep_every_used_bindings_name_is_guarded(self):
        """Renames bindings declarations the shell uses, one at a time, in memory: the check must
        fail each time, naming it. All of them (about 40 s); every sixth with SWIFTCHECK_QUICK=1."""
        # Names in member position in the shell's code (`x.name`, `.name`, `case .name(…)`, and
        # types), minus names the shell or the platform list declare too: a use of those on a
        # receiver whose type the checker cannot tell is not necessarily a bindings use (ios/README.md,
        # "What the names check cannot see").
        shell, _ = sc.read_shell([f for f in sc.swift_files([IOS])])
        platform = sc.load_platform(PLATFORM)
        words = set()
        for f in sc.swift_files([IOS]):
            with open(f, "rb") as fh:
                tree = sc.parser().parse(fh.read())
            for n in sc.walk(tree.root_node):
                if n.type == "type_identifier":
                    words.add(sc.name_of(n))
                elif n.type == "simple_identifier" and n.parent is not None and (
                        n.parent.type in ("navigation_suffix", "prefix_expression", "pattern")):
                    words.add(sc.name_of(n))
        words -= (shell.names - set(self.decls.types)) | platform
        targets = []
        for tn, td in sorted(self.decls.types.items()):
            if td.kind == "extension" or tn.endswith("Protocol") or tn.startswith(("FfiConverter", "Uniffi", "NoHandle")):
                continue
            for m in sorted(td.members):
                if m in words and m != "init" and used_on(tn, m):
                    targets.append((tn, m))
        self.assertGreater(len(targets), 60, "the sweep found too few used names: is the shell there?")
        if os.environ.get("SWIFTCHECK_QUICK"):
            targets = targets[::6]
        escaped = []
        for tn, m in targets:
            td = self.decls.types[tn]
            saved = td.members.pop(m)
            td.members[m + "Renamed"] = saved
            proto = self.decls.types.get(tn + "Protocol")
            psaved = proto.members.pop(m, None) if proto is not None else None
            try:
                probs = sc.check_names(self.decls, IOS, PLATFORM)
            finally:
                td.members.pop(m + "Renamed")
                td.members[m] = saved
                if psaved is not None:
                    proto.members[m] = psaved
            if not any(m in p for p in probs):
                escaped.append(f"{tn}.{m}")
        self.assertEqual(escaped, [], "renames the checker did not notice")


# Names the shell uses on a specific bindings type (checked by the sweep). Generic names that also
# appear on unrelated types (`id`, `value`, …) are included only where the shell uses them on that
# type: found by grepping the shell for `.member` next to a value of that type is not possible
# without a compiler, so the list is the set of (type, member) pairs whose member name occurs in
# the shell AND is unique to one bindings type or known to be used on it.
USED_ON_SHARED = {
    ("Case", "id"), ("Case", "code"), ("Interview", "id"), ("Interview", "status"), ("Interview", "language"),
    ("LocalizedQuestion", "id"), ("LocalizedQuestion", "label"), ("LocalizedChoice", "label"),
    ("LocalizedSection", "title"), ("LocalizedSection", "questions"), ("SyncClash", "id"), ("SyncClash", "field"),
    ("SyncClash", "values"), ("WedgedEntry", "seq"), ("WedgedEntry", "kind"), ("WedgedEntry", "reason"),
    ("SyncStatus", "pending"), ("SyncStatus", "wedged"), ("AttachmentInfo", "size"), ("HttpHeader", "name"),
    ("HttpHeader", "value"), ("HttpRequest", "headers"), ("HttpRequest", "body"), ("HttpRequest", "url"),
    ("HttpRequest", "method"), ("Enrollment", "relayUrl"), ("Consent", "scopes"), ("Consent", "language"),
    ("Consent", "version"),
}


def used_on(tn: str, m: str) -> bool:
    if (tn, m) in USED_ON_SHARED:
        return True
    decls = sc.read_bindings(BINDINGS) if not hasattr(used_on, "decls") else used_on.decls
    used_on.decls = decls
    owners = [t for t, d in decls.types.items() if m in d.members and d.kind != "extension"
              and not t.endswith("Protocol") and not t.startswith(("FfiConverter", "Uniffi", "NoHandle"))
              and not t.endswith("Impl")]
    return owners == [tn]


class ParseCheck(unittest.TestCase):
    def test_every_shell_file_parses(self):
        files = sc.swift_files([IOS])
        self.assertGreater(len(files), 10)
        probs = [p for f in files for p in sc.parse_problems(f)]
        self.assertEqual(probs, [])

    def test_unbalanced_braces_fail_with_file_and_line(self):
        src = os.path.join(IOS, "AmanatKit", "Sources", "Messages.swift")
        with open(src, encoding="utf-8") as f:
            lines = f.read().split("\n")
        # Drop the closing brace of `answerMessage`'s switch: one `}` fewer than `{`.
        idx = next(i for i, l in enumerate(lines) if l.strip() == "case .consentViaRecord:") + 2
        self.assertEqual(lines[idx].strip(), "}")
        del lines[idx]
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "Messages.swift")
            with open(bad, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
            probs = sc.parse_problems(bad)
        self.assertTrue(probs, "unbalanced braces must fail the parse check")
        self.assertRegex(probs[0], r"Messages\.swift:\d+:\d+: (syntax error|missing \})")

    def test_a_stray_token_fails(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "Bad.swift")
            with open(bad, "w", encoding="utf-8") as f:
                f.write("import Foundation\n\nfunc f() -> Int {\n    return 1 +\n}\n")
            probs = sc.parse_problems(bad)
        self.assertTrue(probs)
        self.assertIn("Bad.swift:", probs[0])


class NoLogging(unittest.TestCase):
    def test_the_shell_never_logs(self):
        """No print/NSLog/os_log/Logger/dump call anywhere in the shell (survivor data must not reach
        the system log): checked on the syntax tree, so comments and strings do not count."""
        calls = []
        for f in sc.swift_files([IOS]):
            with open(f, "rb") as fh:
                tree = sc.parser().parse(fh.read())
            for n in sc.walk(tree.root_node):
                if n.type == "call_expression" and n.named_children and n.named_children[0].type == "simple_identifier":
                    name = sc.name_of(n.named_children[0])
                    if name in ("print", "debugPrint", "NSLog", "os_log", "Logger", "dump"):
                        calls.append(f"{f}:{n.start_point[0] + 1}: {name}")
        self.assertEqual(calls, [])


class StringsCheck(unittest.TestCase):
    def copy(self, d: str) -> str:
        dst = os.path.join(d, "Resources")
        shutil.copytree(RESOURCES, dst)
        return dst

    def edit(self, res: str, lang: str, fn):
        p = os.path.join(res, f"{lang}.lproj", "Localizable.strings")
        with open(p, encoding="utf-8") as f:
            text = f.read()
        with open(p, "w", encoding="utf-8") as f:
            f.write(fn(text))

    def test_every_key_in_three_languages(self):
        self.assertEqual(sc.check_strings(RESOURCES), [])
        en, _ = sc.read_strings(os.path.join(RESOURCES, "en.lproj", "Localizable.strings"))
        self.assertGreater(len(en), 100)

    def test_every_key_the_shell_uses_exists(self):
        en, _ = sc.read_strings(os.path.join(RESOURCES, "en.lproj", "Localizable.strings"))
        used = sc.used_string_keys(IOS)
        self.assertIn("status_wrong_passcode", used)
        self.assertIn("scope_share_law_enforcement", used)  # returned by Messages.scopeKey
        self.assertEqual(sorted(used - set(en)), [])

    def test_missing_russian_key_fails(self):
        with tempfile.TemporaryDirectory() as d:
            res = self.copy(d)
            self.edit(res, "ru", lambda t: re.sub(r'^"sync_pending" = .*\n', "", t, flags=re.M))
            probs = sc.check_strings(res)
        self.assertTrue(any("ru.lproj" in p and "'sync_pending' missing" in p for p in probs), probs)

    def test_placeholder_mismatch_fails(self):
        with tempfile.TemporaryDirectory() as d:
            res = self.copy(d)
            self.edit(res, "uz", lambda t: t.replace("%1$lld soniyadan", "%1$@ soniyadan"))
            probs = sc.check_strings(res)
        self.assertTrue(any("status_wait" in p and "placeholders differ" in p for p in probs), probs)

    def test_cyrillic_uzbek_fails(self):
        with tempfile.TemporaryDirectory() as d:
            res = self.copy(d)
            self.edit(res, "uz", lambda t: t.replace('"button_lock" = "', '"button_lock" = "Қулф '))
            probs = sc.check_strings(res)
        self.assertTrue(any("button_lock" in p and "Latin" in p for p in probs), probs)

    def test_malformed_line_fails(self):
        with tempfile.TemporaryDirectory() as d:
            res = self.copy(d)
            self.edit(res, "en", lambda t: t + '"broken" = "no semicolon"\n')
            probs = sc.check_strings(res)
        self.assertTrue(any("en.lproj" in p and "not a" in p for p in probs), probs)


if __name__ == "__main__":
    unittest.main()
