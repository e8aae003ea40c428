// Between a widget's text and the core's AnswerValue, by question type. Only the conversion lives
// here; validation and skip logic are the core's.
import Foundation

/// What a question's input holds, independent of any view: text for the free-text kinds, a set of
/// choice ids, or yes/no. `value(for:)` is what would be sent to the core (nil: unanswered, so the
/// question is skipped or paused).
public struct AnswerDraft: Equatable {
    public var text: String = ""
    public var chosen: [String] = []
    public var yesNo: Bool?

    public init() {}

    /// Whether the shell sends this question's answer at all (consent and attachment answers are
    /// written by the core from the consent record and the capture).
    public static func sendsAnswer(_ type: QuestionType) -> Bool {
        switch type {
        case .consent, .audio, .photo:
            return false
        default:
            return true
        }
    }

    /// The answer to send for a question of `type`, or nil if there is none; `NotANumber` for a
    /// number field holding text.
    public func value(for question: LocalizedQuestion) throws -> AnswerValue? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch question.questionType {
        case .text, .longText:
            return trimmed.isEmpty ? nil : AnswerValue.text(value: trimmed)
        case .date:
            return trimmed.isEmpty ? nil : AnswerValue.date(value: trimmed)
        case .location:
            return trimmed.isEmpty ? nil : AnswerValue.location(district: trimmed)
        case .integer:
            if trimmed.isEmpty {
                return nil
            }
            guard let n = Int64(trimmed) else {
                throw NotANumber(question: question.id)
            }
            return AnswerValue.integer(value: n)
        case .decimal:
            if trimmed.isEmpty {
                return nil
            }
            guard let d = Double(trimmed.replacingOccurrences(of: ",", with: ".")), d.isFinite else {
                throw NotANumber(question: question.id)
            }
            return AnswerValue.decimal(value: d)
        case .singleChoice:
            return chosen.first.map { AnswerValue.choice(value: $0) }
        case .multipleChoice:
            return chosen.isEmpty ? nil : AnswerValue.choices(values: chosen)
        case .yesNo:
            return yesNo.map { AnswerValue.yesNo(value: $0) }
        case .consent, .audio, .photo:
            return nil
        }
    }

    /// The draft showing a stored answer (nil clears).
    public static func from(_ answer: AnswerValue?) -> AnswerDraft {
        var d = AnswerDraft()
        guard let answer = answer else {
            return d
        }
        switch answer {
        case let .text(value):
            d.text = value
        case let .integer(value):
            d.text = String(value)
        case let .decimal(value):
            d.text = String(value)
        case let .date(value):
            d.text = value
        case let .location(district):
            d.text = district
        case let .choice(value):
            d.chosen = [value]
        case let .choices(values):
            d.chosen = values
        case let .yesNo(value):
            d.yesNo = value
        case .consent, .attachment:
            break
        }
        return d
    }

    /// The limits the template states, for guidance before the core checks them.
    public static func constraintText(_ c: Constraints, _ l: L10n) -> String? {
        switch c {
        case let .integerRange(min, max):
            guard min != nil || max != nil else { return nil }
            return l.t("allowed_range", min.map { String($0) } ?? "…", max.map { String($0) } ?? "…")
        case let .decimalRange(min, max):
            guard min != nil || max != nil else { return nil }
            return l.t("allowed_range", min.map { String($0) } ?? "…", max.map { String($0) } ?? "…")
        case let .dateRange(min, max):
            guard min != nil || max != nil else { return nil }
            return l.t("allowed_range", min ?? "…", max ?? "…")
        case let .length(_, maxLength):
            return maxLength.map { l.t("allowed_length", Int64($0)) }
        default:
            return nil
        }
    }
}
