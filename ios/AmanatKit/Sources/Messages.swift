// What the screens say, in the language of the screen: shell texts by key, and the core's typed
// errors mapped to them (never the core's English `detail`, which is for logs and never shown).
import Foundation

/// Shell texts in one language (en, ru or uz), from the app's `<lang>.lproj/Localizable.strings`.
/// A screen turned towards the survivor (consent, interview) uses the survivor's language, the
/// rest the phone's.
public struct L10n {
    /// The languages of the shell and of the built-in template.
    public static let languages = ["en", "ru", "uz"]

    /// Language code of this table.
    public let language: String
    private let bundle: Bundle

    /// `language` outside `languages` falls back to English.
    public init(language: String, bundle: Bundle = .main) {
        let lang = L10n.languages.contains(language) ? language : "en"
        self.language = lang
        if let path = bundle.path(forResource: lang, ofType: "lproj"), let table = Bundle(path: path) {
            self.bundle = table
        } else {
            self.bundle = bundle
        }
    }

    /// The phone's preferred language among ours (English otherwise).
    public static func deviceLanguage() -> String {
        for preferred in Locale.preferredLanguages {
            let code = String(preferred.prefix(2))
            if languages.contains(code) {
                return code
            }
        }
        return "en"
    }

    /// The text of `key`, formatted with `args` (`%1$lld` takes an Int64, `%1$@` a String).
    public func t(_ key: String, _ args: CVarArg...) -> String {
        let format = bundle.localizedString(forKey: key, value: key, table: nil)
        if args.isEmpty {
            return format
        }
        return String(format: format, locale: Locale(identifier: language), arguments: args)
    }
}

/// A number field holds something that is not a number; never reaches the core.
public struct NotANumber: Error, Equatable {
    /// The question's id.
    public let question: String

    public init(question: String) {
        self.question = question
    }
}

/// Maps the core's typed errors to shell text.
public enum Messages {
    /// The sentence for `error` in the language of `l`.
    public static func of(_ error: Error, _ l: L10n) -> String {
        if error is NotANumber {
            return l.t("error_not_a_number")
        }
        if error is AudioFailure {
            return l.t("error_microphone")
        }
        guard let e = error as? AmanatError else {
            return l.t("error_generic", "shell")
        }
        switch e {
        case let .WrongPasscode(failedAttempts, _, _):
            return l.t("status_wrong_passcode", Int64(failedAttempts))
        case let .Backoff(_, _, retryAfterSecs, _):
            return l.t("status_wait", Int64(retryAfterSecs))
        case let .PasscodeTooShort(minChars, _):
            return l.t("error_passcode_too_short", Int64(minChars))
        case let .KeyProvider(kind, _):
            return kind == KeyProviderErrorKind.keyMissing ? l.t("status_key_missing") : l.t("status_key_unavailable")
        case let .Answer(_, reason, _):
            return answerMessage(reason, l)
        case .ConsentMissing:
            return l.t("error_consent_missing")
        case .InterviewSubmitted:
            return l.t("error_interview_submitted")
        case .TooLarge:
            return l.t("error_too_large")
        case .Locked:
            return l.t("error_locked")
        case .DuressConflict:
            return l.t("error_duress_conflict")
        case .Integrity, .ChainBroken, .AuditBroken:
            return l.t("error_tampered")
        case .BadEnrollmentCode:
            return l.t("error_enroll_code")
        case .AlreadyEnrolled:
            return l.t("error_already_enrolled")
        case .NotEnrolled:
            return l.t("sync_not_enrolled")
        case .InvalidRelayUrl, .RelayUrlMismatch:
            return l.t("error_relay_url")
        case .NoRelayUrl:
            return l.t("error_no_relay_url")
        case .OrgMismatch:
            return l.t("error_org_mismatch")
        case .Transport:
            return l.t("error_network")
        case .Revoked:
            return l.t("error_revoked")
        case .NotFound:
            return l.t("error_not_found")
        default:
            return l.t("error_generic", e.code())
        }
    }

    /// The one place that turns the core's typed answer rejection into shell text (the limits come
    /// from the template, never the answer).
    public static func answerMessage(_ reason: AnswerReason, _ l: L10n) -> String {
        switch reason {
        case .unknownQuestion:
            return l.t("error_answer_unknown_question")
        case .wrongType:
            return l.t("error_answer_wrong_type")
        case .empty:
            return l.t("error_answer_empty")
        case let .tooShort(minChars):
            return l.t("error_answer_too_short", Int64(minChars))
        case let .tooLong(maxChars):
            return l.t("error_answer_too_long", Int64(maxChars))
        case .notFinite:
            return l.t("error_answer_not_finite")
        case let .outOfRange(min, max):
            return l.t("error_answer_out_of_range") + " " + l.t("allowed_range", min ?? "…", max ?? "…")
        case .invalidDate:
            return l.t("error_answer_bad_date")
        case .unknownChoice:
            return l.t("error_answer_unknown_choice")
        case .duplicateChoice:
            return l.t("error_answer_duplicate_choice")
        case let .tooFewChoices(minChoices):
            return l.t("error_answer_too_few_choices", Int64(minChoices))
        case let .tooManyChoices(maxChoices):
            return l.t("error_answer_too_many_choices", Int64(maxChoices))
        case .invalidAttachmentId, .invalidSha256, .wrongMediaType, .notAttachmentQuestion:
            return l.t("error_answer_attachment")
        case .coordinates:
            return l.t("error_answer_coordinates")
        case .required:
            return l.t("error_answer_required")
        case .notRelevant:
            return l.t("error_answer_not_visible")
        case .consentViaRecord:
            return l.t("error_answer_consent")
        }
    }

    /// The key of a consent scope's label (the core names scopes, the shell words them).
    public static func scopeKey(_ scope: ConsentScope) -> String {
        switch scope {
        case .interview: return "scope_interview"
        case .audio: return "scope_audio"
        case .photos: return "scope_photos"
        case .shareCaseworkers: return "scope_share_caseworkers"
        case .shareLegal: return "scope_share_legal"
        case .shareLawEnforcement: return "scope_share_law_enforcement"
        case .shareResearch: return "scope_share_research"
        case .legalProceedings: return "scope_legal_proceedings"
        }
    }

    /// Every scope, in the order the consent screen lists them.
    public static let allScopes: [ConsentScope] = [
        .interview, .audio, .photos, .shareCaseworkers, .shareLegal, .shareLawEnforcement, .shareResearch,
        .legalProceedings,
    ]

    /// Why a sync run stopped early, as shell text.
    public static func interruption(_ i: SyncInterruption, _ l: L10n) -> String {
        switch i {
        case .transport:
            return l.t("sync_interrupted_network")
        case let .server(status):
            return l.t("sync_interrupted_server", Int64(status))
        case .rateLimited:
            return l.t("sync_interrupted_busy")
        case .cancelled:
            return l.t("sync_cancelled")
        }
    }

    /// The kind of a wedged outbox entry, as shell text.
    public static func entryKind(_ kind: SyncEntryKind, _ l: L10n) -> String {
        switch kind {
        case .case: return l.t("entry_case")
        case .identity: return l.t("entry_identity")
        case .consent: return l.t("entry_consent")
        case .withdrawal: return l.t("entry_withdrawal")
        case .interview: return l.t("entry_interview")
        case .attachment: return l.t("entry_attachment")
        case .audit: return l.t("entry_audit")
        case .device: return l.t("entry_device")
        }
    }
}
