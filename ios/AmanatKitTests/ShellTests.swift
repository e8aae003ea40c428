// AmanatKit against the real core (the XCFramework): session, duress, audio, photo import,
// messages in three languages, answer conversion.
import AmanatKit
import XCTest

final class ShellTests: XCTestCase {
    private func session() -> VaultSession {
        VaultSession(dir: freshDirectory("vault"), keyProvider: SecureEnclaveKeyProvider(store: SoftwareKeyStore()),
                     kdfParams: fastKdf)
    }

    func testWrongPasscodesCountAndBackOffFromTheCore() throws {
        let s = session()
        try s.create(passcode: passcode)
        s.lockNow()
        var lastError: Error?
        for _ in 0 ..< 6 {
            do {
                try s.unlock(passcode: "wrong wrong 0")
            } catch {
                lastError = error
            }
        }
        XCTAssertGreaterThan(try s.status().failedAttempts, 0)
        guard case .some(AmanatError.Backoff) = lastError else {
            return XCTFail("expected the core's backoff after repeated failures, got \(String(describing: lastError))")
        }
    }

    func testDuressUnlockLooksLikeAnUnlockAndShowsAnEmptyVault() throws {
        let s = session()
        try s.create(passcode: passcode)
        let v: Vault = try s.unlocked()
        _ = try v.createCase()
        try s.setDuressPasscode(current: passcode, duress: duressPasscode)
        s.lockNow()
        XCTAssertNoThrow(try s.unlock(passcode: duressPasscode))
        XCTAssertTrue(s.isUnlocked())
        XCTAssertEqual(try s.unlocked().listCases(), [])
    }

    func testChangedPasscodeUnlocksAndTheOldOneFails() throws {
        let s = session()
        try s.create(passcode: passcode)
        try s.changePasscode(current: passcode, newPasscode: "a new passcode 3")
        s.lockNow()
        XCTAssertThrowsError(try s.unlock(passcode: passcode)) { error in
            guard case AmanatError.WrongPasscode = error else {
                return XCTFail("expected WrongPasscode, got \(error)")
            }
        }
        XCTAssertNoThrow(try s.unlock(passcode: "a new passcode 3"))
    }

    /// The core compares passcodes in NFC (core/src/secret.rs): the shell passes them as typed.
    func testPasscodesAreComparedInNFC() throws {
        let s = session()
        try s.create(passcode: "caf\u{00E9} 12345")   // precomposed é
        s.lockNow()
        XCTAssertNoThrow(try s.unlock(passcode: "cafe\u{0301} 12345"))   // e + combining accent
    }

    func testAudioIsStreamedIntoTheVaultAndNothingElse() throws {
        let s = session()
        try s.create(passcode: passcode)
        let v: Vault = try s.unlocked()
        let c: Case = try v.createCase()
        _ = try v.recordConsent(caseId: c.id, recordedBy: "w", language: "en", scopes: [.interview, .audio])
        let iv: Interview = try v.startInterview(caseId: c.id, templateId: "trafficking_screening", templateVersion: 1, language: "en")
        let template: LocalizedTemplate = try v.template(templateId: iv.templateId, version: iv.templateVersion, language: "en")
        guard let audioQuestion = template.sections.flatMap({ $0.questions }).first(where: { $0.questionType == QuestionType.audio }) else {
            return XCTFail("the screening template has an audio question")
        }
        let chunks = [EngineAudioSource.wavHeader(sampleRate: 16_000), Data(repeating: 3, count: 70_000), Data([1, 2, 3])]
        let source = FakeAudioSource(chunks: chunks)
        let writer: AttachmentWriter = try v.openAttachmentWriter(interviewId: iv.id, questionId: audioQuestion.id,
                                                                  mediaType: source.mediaType, maxBytes: nil)
        let recorder = AudioRecorder(source: source, writer: writer)
        try recorder.start()
        let done = expectation(description: "recording finished")
        var stored: AttachmentInfo?
        recorder.stop { result in
            stored = try? result.get()
            done.fulfill()
        }
        wait(for: [done], timeout: 10)
        let info = try XCTUnwrap(stored)
        XCTAssertEqual(info.size, UInt64(chunks.reduce(0) { $0 + $1.count }))
        let reader: AttachmentReader = try v.openAttachment(attachmentId: info.id)
        XCTAssertEqual(try reader.readAll(), chunks.reduce(Data(), +))
        XCTAssertTrue(source.stopped)
    }

    func testPhotoImportLeavesNoCaptureFile() throws {
        let s = session()
        try s.create(passcode: passcode)
        let v: Vault = try s.unlocked()
        let c: Case = try v.createCase()
        _ = try v.recordConsent(caseId: c.id, recordedBy: "w", language: "en", scopes: [.interview, .photos])
        let iv: Interview = try v.startInterview(caseId: c.id, templateId: "trafficking_screening", templateVersion: 1, language: "en")
        let template: LocalizedTemplate = try v.template(templateId: iv.templateId, version: iv.templateVersion, language: "en")
        guard let photoQuestion = template.sections.flatMap({ $0.questions }).first(where: { $0.questionType == QuestionType.photo }) else {
            return XCTFail("the screening template has a photo question")
        }
        let dir = URL(fileURLWithPath: freshDirectory("capture"), isDirectory: true)
        let photos = PhotoImporter(dir: dir)
        let jpeg = Data([0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: 5, count: 5000))
        let info = try photos.importPhoto(data: jpeg, mediaType: "image/jpeg", interviewId: iv.id, questionId: photoQuestion.id, vault: v)
        XCTAssertEqual(info.size, UInt64(jpeg.count))
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [], [])
    }

    func testTypedAnswerReasonsInThreeLanguages() {
        let reason = AnswerReason.outOfRange(min: "0", max: "24")
        var seen = Set<String>()
        for lang in L10n.languages {
            let text = Messages.answerMessage(reason, L10n(language: lang))
            XCTAssertTrue(text.contains("24"), text)
            XCTAssertFalse(text.contains("error_answer"), "untranslated key in \(lang)")
            seen.insert(text)
        }
        XCTAssertEqual(seen.count, 3)
    }

    func testNumbersAreParsedByTypeAndTextIsRefused() throws {
        let q = LocalizedQuestion(id: "hours", questionType: .integer, label: "Hours", hint: nil, whyWeAsk: nil,
                                  sensitive: false, required: false, choices: [], constraints: .unconstrained, scope: nil)
        var draft = AnswerDraft()
        draft.text = " 14 "
        XCTAssertEqual(try draft.value(for: q), AnswerValue.integer(value: 14))
        draft.text = "fourteen"
        XCTAssertThrowsError(try draft.value(for: q)) { error in
            XCTAssertEqual(error as? NotANumber, NotANumber(question: "hours"))
        }
        draft.text = ""
        XCTAssertNil(try draft.value(for: q))
    }

    func testBackgroundUploadRuleStopsWithoutAPlanAndOnlyTheUploadsFolderIsTheException() throws {
        // The shell's uploader asks the core after every answer; with no plan on disk (discarded
        // at unlock, or wiped) the answer is "stop", whatever the relay said.
        let step = try backgroundUploadNext(
            vaultDir: freshDirectory("vault"), blobSha256: String(repeating: "a", count: 64),
            offset: 0, attempt: 1, status: 200, body: Data("{\"offset\":1048576}".utf8)
        )
        guard case .stop = step else {
            return XCTFail("expected stop without a plan, got \(step)")
        }
        XCTAssertEqual(FileProtection.uploadsClass, .completeUntilFirstUserAuthentication)
        let vault = freshDirectory("vault")
        XCTAssertTrue(backgroundUploadsDir(vaultDir: vault).hasPrefix(vault))
        XCTAssertEqual(BackgroundUploader.sessionIdentifier, "org.amanat.upload")
    }
}
