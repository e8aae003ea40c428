// One input per question type, built from the core's localized template. An input only edits an
// AnswerDraft (AmanatKit turns it into an AnswerValue); validation and skip logic are the core's.
import AmanatKit
import SwiftUI

/// The input of one question, by its type (every type of the template format).
struct QuestionInput: View {
    let question: LocalizedQuestion
    @Binding var draft: AnswerDraft
    let texts: L10n
    let editable: Bool
    /// The stored answer (consent and attachments are shown from it).
    let stored: AnswerValue?
    /// Called after a change that can change the skip logic.
    let onChange: () -> Void

    var body: some View {
        switch question.questionType {
        case .text, .location:
            textField(hint: question.questionType == QuestionType.location ? texts.t("hint_district") : "", keyboard: .default)
        case .longText:
            TextEditor(text: $draft.text)
                .frame(minHeight: 96)
                .disableAutocorrection(true)
                .disabled(!editable)
        case .integer:
            textField(hint: "", keyboard: .numbersAndPunctuation)
        case .decimal:
            textField(hint: "", keyboard: .decimalPad)
        case .date:
            textField(hint: texts.t("hint_date"), keyboard: .numbersAndPunctuation)
        case .singleChoice:
            ForEach(question.choices, id: \.id) { choice in
                choiceRow(choice, selected: draft.chosen.first == choice.id) {
                    draft.chosen = [choice.id]
                    onChange()
                }
            }
        case .multipleChoice:
            ForEach(question.choices, id: \.id) { choice in
                choiceRow(choice, selected: draft.chosen.contains(choice.id)) {
                    if let i = draft.chosen.firstIndex(of: choice.id) {
                        draft.chosen.remove(at: i)
                    } else {
                        draft.chosen.append(choice.id)
                    }
                    onChange()
                }
            }
        case .yesNo:
            Picker(question.label, selection: Binding(
                get: { draft.yesNo },
                set: { value in
                    draft.yesNo = value
                    onChange()
                }
            )) {
                Text(texts.t("answer_yes")).tag(Bool?.some(true))
                Text(texts.t("answer_no")).tag(Bool?.some(false))
            }
            .pickerStyle(.segmented)
            .disabled(!editable)
        case .consent:
            // Read-only: the core fills it from the consent record.
            Text(texts.t(consentGiven ? "consent_answer_given" : "consent_answer_not_given"))
                .foregroundColor(.secondary)
        case .audio, .photo:
            // The capture buttons are the interview screen's; the stored size is shown there.
            EmptyView()
        }
    }

    private var consentGiven: Bool {
        if case let .consent(value) = stored {
            return value
        }
        return false
    }

    private func textField(hint: String, keyboard: UIKeyboardType) -> some View {
        TextField(hint, text: $draft.text, onEditingChanged: { editing in
            if !editing {
                onChange()
            }
        })
        .keyboardType(keyboard)
        // Nothing a survivor says is learned by the keyboard or suggested later.
        .disableAutocorrection(true)
        .textInputAutocapitalization(.never)
        .disabled(!editable)
    }

    private func choiceRow(_ choice: LocalizedChoice, selected: Bool, toggle: @escaping () -> Void) -> some View {
        Button(action: toggle) {
            HStack {
                Image(systemName: selected ? "checkmark.circle.fill" : "circle")
                Text(choice.label)
            }
        }
        .buttonStyle(.borderless)
        .disabled(!editable)
    }
}
