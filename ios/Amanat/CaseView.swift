// One case: its code, its current consent, its interviews (open a draft, amend a submitted one).
import AmanatKit
import SwiftUI

/// The case screen. The interview language is the one the consent was recorded in (the survivor's
/// language); the screening template is the built-in one.
struct CaseView: View {
    /// The built-in screening interview.
    static let templateId = "trafficking_screening"
    static let templateVersion: UInt32 = 1

    @EnvironmentObject var model: AppModel
    let caseId: String
    @State private var code = ""
    @State private var consent: Consent?
    @State private var interviews: [Interview] = []
    @State private var status = ""
    @State private var openInterviewId: String?
    @State private var showConsent = false

    var body: some View {
        List {
            Section {
                Text(consentText)
                Button(tr("button_consent")) {
                    showConsent = true
                }
                Button(tr("button_start_interview"), action: startInterview)
            }
            Section {
                ForEach(interviews, id: \.id) { iv in
                    row(iv)
                }
            }
            if !status.isEmpty {
                Text(status).foregroundColor(.red)
            }
        }
        .navigationTitle(tr("case_title", code))
        .shellToolbar()
        .onAppear(perform: load)
        .sheet(isPresented: $showConsent, onDismiss: load) {
            ConsentView(caseId: caseId)
                .environmentObject(model)
        }
        .background(
            NavigationLink(destination: openInterviewId.map { InterviewView(interviewId: $0) }, isActive: Binding(
                get: { openInterviewId != nil },
                set: { active in
                    if !active {
                        openInterviewId = nil
                        load()
                    }
                }
            )) { EmptyView() }
        )
    }

    private var consentText: String {
        guard let c: Consent = consent, !c.scopes.isEmpty else {
            return tr("consent_none")
        }
        let l = model.l10n
        let names = c.scopes.map { l.t(Messages.scopeKey($0)) }.joined(separator: ", ")
        return tr("consent_current", Int64(c.version), names)
    }

    @ViewBuilder
    private func row(_ iv: Interview) -> some View {
        let state = tr(iv.status == InterviewStatus.draft ? "interview_status_draft" : "interview_status_submitted")
        let label = iv.amendment == 0 ? tr("interview_item", state) : tr("interview_item_amendment", Int64(iv.amendment), state)
        let amended = Set(interviews.compactMap { $0.amends })
        HStack {
            Text(label)
            Spacer()
            if iv.status == InterviewStatus.draft {
                Button(tr("button_open")) {
                    openInterviewId = iv.id
                }
            } else if !amended.contains(iv.id) {
                Button(tr("button_amend")) {
                    amend(iv.id)
                }
            }
        }
    }

    private func load() {
        let id = caseId
        model.run({ session -> (String, Consent?, [Interview]) in
            let v: Vault = try session.unlocked()
            return (try v.getCase(caseId: id).code, try v.currentConsent(caseId: id), try v.listInterviews(caseId: id))
        }, then: { result in
            switch result {
            case .success(let loaded):
                code = loaded.0
                consent = loaded.1
                interviews = loaded.2
            case .failure(let error):
                status = Messages.of(error, model.l10n)
            }
        })
    }

    private func startInterview() {
        let id = caseId
        let language = consent?.language ?? L10n.deviceLanguage()
        model.run({ session in
            try session.unlocked().startInterview(caseId: id, templateId: CaseView.templateId,
                                                  templateVersion: CaseView.templateVersion, language: language)
        }, then: { result in
            switch result {
            case .success(let iv):
                openInterviewId = iv.id
            case .failure(let error):
                status = Messages.of(error, model.l10n)
            }
        })
    }

    private func amend(_ interviewId: String) {
        model.run({ session in try session.unlocked().amendInterview(interviewId: interviewId) }, then: { result in
            switch result {
            case .success(let iv):
                openInterviewId = iv.id
            case .failure(let error):
                status = Messages.of(error, model.l10n)
            }
        })
    }
}
