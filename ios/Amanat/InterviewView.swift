// The interview form, rendered from the core's localized template: every question type, the core's
// skip logic, "why we ask", skip/pause, the core's typed validation errors in the interview's
// language, audio streamed into the vault, photos imported and shredded.
import AVFoundation
import AmanatKit
import SwiftUI
import UIKit

/// One interview (draft or submitted). Everything it shows comes from the core: the template in
/// the interview's language, the stored answers, the visible questions. Texts of the shell itself
/// (buttons, errors) are in the interview's language too, since the screen may be turned towards
/// the survivor.
struct InterviewView: View {
    @EnvironmentObject var model: AppModel
    let interviewId: String
    @State private var interview: Interview?
    @State private var template: LocalizedTemplate?
    @State private var visible: Set<String> = []
    @State private var drafts: [String: AnswerDraft] = [:]
    @State private var errors: [String: String] = [:]
    @State private var attachmentState: [String: String] = [:]
    @State private var whyShown: Set<String> = []
    @State private var status = ""
    @State private var busy = false
    @State private var recorder: AudioRecorder?
    @State private var recordingQuestion: String?
    @State private var lockToken: UUID?
    @State private var photoQuestion: String?

    private var texts: L10n {
        L10n(language: interview?.language ?? L10n.deviceLanguage())
    }

    private var editable: Bool {
        interview?.status == InterviewStatus.draft && !busy
    }

    var body: some View {
        Form {
            if let t: LocalizedTemplate = template {
                ForEach(t.sections, id: \.id) { section in
                    let shown = section.questions.filter { visible.contains($0.id) }
                    if !shown.isEmpty {
                        Section(header: Text(section.title), footer: section.description.map { Text($0) }) {
                            ForEach(shown, id: \.id) { q in
                                questionView(q)
                            }
                        }
                    }
                }
            }
            Section {
                if !status.isEmpty {
                    Text(status)
                }
                Button(texts.t("button_save_draft")) {
                    save(thenSubmit: false)
                }
                .disabled(!editable)
                Button(texts.t("button_submit")) {
                    save(thenSubmit: true)
                }
                .disabled(!editable)
            }
        }
        .navigationTitle(template?.title ?? "")
        .shellToolbar()
        .onAppear {
            // A lock (background, panic) during a recording drops it: nothing half-written stays.
            if lockToken == nil {
                lockToken = model.onBeforeLock {
                    recorder?.abort()
                }
            }
            load()
        }
        .onDisappear {
            recorder?.abort()
            if let token = lockToken {
                model.removeBeforeLock(token)
                lockToken = nil
            }
        }
        .sheet(isPresented: Binding(get: { photoQuestion != nil }, set: { if !$0 { photoQuestion = nil } })) {
            CameraPicker { data in
                let qid = photoQuestion
                photoQuestion = nil
                if let data = data, let qid = qid {
                    importPhoto(data, questionId: qid)
                }
            }
            .ignoresSafeArea()
        }
    }

    // ---- one question ----

    @ViewBuilder
    private func questionView(_ q: LocalizedQuestion) -> some View {
        VStack(alignment: .leading, spacing: 6) {
            Text(q.required ? "\(q.label) (\(texts.t("required_mark")))" : q.label)
                .font(.headline)
            if let hint = q.hint {
                Text(hint).font(.footnote).foregroundColor(.secondary)
            }
            if let rule = AnswerDraft.constraintText(q.constraints, texts) {
                Text(rule).font(.footnote).foregroundColor(.secondary)
            }
            if let why = q.whyWeAsk {
                Button(texts.t("button_why")) {
                    if whyShown.contains(q.id) {
                        whyShown.remove(q.id)
                    } else {
                        whyShown.insert(q.id)
                    }
                }
                .buttonStyle(.borderless)
                if whyShown.contains(q.id) {
                    Text(why).font(.callout)
                }
            }
            QuestionInput(question: q, draft: draftBinding(q.id), texts: texts, editable: editable,
                          stored: interview?.answers[q.id], onChange: refreshVisibility)
            if q.questionType == QuestionType.audio {
                audioControls(q)
            } else if q.questionType == QuestionType.photo {
                Button(texts.t("button_take_photo")) {
                    photoQuestion = q.id
                }
                .buttonStyle(.bordered)
                .disabled(!editable)
            }
            if let state = attachmentState[q.id] {
                Text(state).font(.footnote)
            }
            if AnswerDraft.sendsAnswer(q.questionType) {
                Button(texts.t("button_skip")) {
                    skip(q.id)
                }
                .buttonStyle(.borderless)
                .disabled(!editable)
            }
            if let error = errors[q.id] {
                Text(error).foregroundColor(.red).font(.callout)
            }
        }
        .padding(.vertical, 4)
    }

    @ViewBuilder
    private func audioControls(_ q: LocalizedQuestion) -> some View {
        if recordingQuestion == q.id {
            Button(texts.t("button_stop_audio")) {
                stopRecording()
            }
            .buttonStyle(.borderedProminent)
            Text(texts.t("recording")).font(.footnote)
        } else {
            Button(texts.t("button_record_audio")) {
                startRecording(q.id)
            }
            .buttonStyle(.bordered)
            .disabled(!editable || recordingQuestion != nil)
        }
    }

    private func draftBinding(_ id: String) -> Binding<AnswerDraft> {
        Binding(get: { drafts[id] ?? AnswerDraft() }, set: { drafts[id] = $0 })
    }

    // ---- loading, skip logic, saving ----

    private func load() {
        let id = interviewId
        model.run({ session -> (Interview, LocalizedTemplate, [String]) in
            let v: Vault = try session.unlocked()
            let iv: Interview = try v.getInterview(interviewId: id)
            let t = try v.template(templateId: iv.templateId, version: iv.templateVersion, language: iv.language)
            return (iv, t, try v.visibleQuestions(interviewId: id))
        }, then: { result in
            switch result {
            case .success(let loaded):
                show(loaded.0)
                template = loaded.1
                visible = Set(loaded.2)
                if loaded.0.status != InterviewStatus.draft {
                    status = texts.t("interview_submitted")
                }
            case .failure(let error):
                status = Messages.of(error, texts)
            }
        })
    }

    private func show(_ iv: Interview) {
        interview = iv
        var d: [String: AnswerDraft] = [:]
        for (qid, answer) in iv.answers {
            d[qid] = AnswerDraft.from(answer)
            if case let AnswerValue.attachment(attachmentId, _, mediaType) = answer {
                loadAttachmentSize(qid, attachmentId: attachmentId, audio: mediaType.hasPrefix("audio/"))
            }
        }
        drafts = d
    }

    private func loadAttachmentSize(_ qid: String, attachmentId: String, audio: Bool) {
        model.run({ session in try session.unlocked().attachmentInfo(attachmentId: attachmentId).size }, then: { result in
            if case .success(let size) = result {
                attachmentState[qid] = texts.t(audio ? "audio_saved" : "photo_saved", Int64((size + 1023) / 1024))
            }
        })
    }

    /// The answers on screen merged over the stored ones; a number that does not parse throws
    /// unless `lenient`.
    private func collect(lenient: Bool) throws -> [String: AnswerValue] {
        var batch: [String: AnswerValue] = [:]
        guard let t: LocalizedTemplate = template else {
            return batch
        }
        for section in t.sections {
            for q in section.questions where AnswerDraft.sendsAnswer(q.questionType) && visible.contains(q.id) {
                do {
                    if let v = try (drafts[q.id] ?? AnswerDraft()).value(for: q) {
                        batch[q.id] = v
                    }
                } catch {
                    if !lenient {
                        throw error
                    }
                }
            }
        }
        return batch
    }

    /// Asks the core which questions the answers on screen make visible (skip logic is the core's).
    private func refreshVisibility() {
        guard let iv: Interview = interview, let onScreen = try? collect(lenient: true) else {
            return
        }
        let answers = iv.answers.merging(onScreen) { _, new in new }
        model.run({ session in
            try session.unlocked().visibleQuestionsFor(templateId: iv.templateId, version: iv.templateVersion, answers: answers)
        }, then: { result in
            if case .success(let ids) = result {
                visible = Set(ids)
            }
        })
    }

    private func skip(_ qid: String) {
        drafts[qid] = AnswerDraft()
        errors[qid] = texts.t("skipped")
        refreshVisibility()
    }

    private func save(thenSubmit: Bool) {
        errors = [:]
        let batch: [String: AnswerValue]
        do {
            batch = try collect(lenient: false)
        } catch let nan as NotANumber {
            errors[nan.question] = Messages.of(nan, texts)
            return
        } catch {
            status = Messages.of(error, texts)
            return
        }
        busy = true
        let id = interviewId
        model.run({ session -> (Interview, [String]) in
            let v: Vault = try session.unlocked()
            var iv: Interview = try v.saveAnswers(interviewId: id, answers: batch)
            if thenSubmit {
                iv = try v.submitInterview(interviewId: id)
            }
            return (iv, try v.visibleQuestions(interviewId: id))
        }, then: { result in
            busy = false
            switch result {
            case .success(let saved):
                show(saved.0)
                visible = Set(saved.1)
                status = texts.t(saved.0.status == InterviewStatus.submitted ? "interview_submitted" : "saved")
            case .failure(let error):
                if case let AmanatError.Answer(question, reason, _) = error {
                    errors[question] = Messages.answerMessage(reason, texts)
                } else {
                    status = Messages.of(error, texts)
                }
            }
        })
    }

    // ---- audio ----

    private func startRecording(_ qid: String) {
        AVAudioSession.sharedInstance().requestRecordPermission { granted in
            DispatchQueue.main.async {
                if granted {
                    openWriter(qid)
                } else {
                    attachmentState[qid] = texts.t("error_permission_audio")
                }
            }
        }
    }

    private func openWriter(_ qid: String) {
        let source = model.config.audioSource()
        let id = interviewId
        let mediaType = source.mediaType
        model.run({ session in
            try session.unlocked().openAttachmentWriter(interviewId: id, questionId: qid, mediaType: mediaType, maxBytes: nil)
        }, then: { result in
            switch result {
            case .success(let writer):
                let rec = AudioRecorder(source: source, writer: writer)
                do {
                    try rec.start()
                    recorder = rec
                    recordingQuestion = qid
                    attachmentState[qid] = nil
                } catch {
                    attachmentState[qid] = Messages.of(error, texts)
                }
            case .failure(let error):
                attachmentState[qid] = Messages.of(error, texts)
            }
        })
    }

    private func stopRecording() {
        guard let rec: AudioRecorder = recorder, let qid = recordingQuestion else {
            return
        }
        recorder = nil
        recordingQuestion = nil
        rec.stop { result in
            switch result {
            case .success(let info):
                attachmentState[qid] = texts.t("audio_saved", Int64((info.size + 1023) / 1024))
                reloadAnswers()
            case .failure(let error):
                attachmentState[qid] = Messages.of(error, texts)
            }
        }
    }

    // ---- photo ----

    private func importPhoto(_ data: Data, questionId: String) {
        let id = interviewId
        let photos = model.photos
        model.run({ session in
            try photos.importPhoto(data: data, mediaType: "image/jpeg", interviewId: id, questionId: questionId,
                                   vault: try session.unlocked())
        }, then: { result in
            switch result {
            case .success(let info):
                attachmentState[questionId] = texts.t("photo_saved", Int64((info.size + 1023) / 1024))
                reloadAnswers()
            case .failure(let error):
                attachmentState[questionId] = Messages.of(error, texts)
            }
        })
    }

    private func reloadAnswers() {
        let id = interviewId
        model.run({ session in try session.unlocked().getInterview(interviewId: id) }, then: { result in
            if case .success(let iv) = result {
                interview = iv
            }
        })
    }
}

/// The camera (the photo library on a device without one, e.g. the Simulator). Hands back JPEG
/// bytes in memory, never a file; the picker re-encodes, which drops the photo's location metadata.
struct CameraPicker: UIViewControllerRepresentable {
    let done: (Data?) -> Void

    func makeUIViewController(context: Context) -> UIImagePickerController {
        let picker = UIImagePickerController()
        picker.sourceType = UIImagePickerController.isSourceTypeAvailable(.camera) ? .camera : .photoLibrary
        picker.allowsEditing = false
        picker.delegate = context.coordinator
        return picker
    }

    func updateUIViewController(_ controller: UIImagePickerController, context: Context) {}

    func makeCoordinator() -> Coordinator {
        Coordinator(done: done)
    }

    final class Coordinator: NSObject, UIImagePickerControllerDelegate, UINavigationControllerDelegate {
        let done: (Data?) -> Void

        init(done: @escaping (Data?) -> Void) {
            self.done = done
        }

        func imagePickerController(_ picker: UIImagePickerController,
                                   didFinishPickingMediaWithInfo info: [UIImagePickerController.InfoKey: Any]) {
            let image = info[UIImagePickerController.InfoKey.originalImage] as? UIImage
            done(image?.jpegData(compressionQuality: 0.85))
        }

        func imagePickerControllerDidCancel(_ picker: UIImagePickerController) {
            done(nil)
        }
    }
}
