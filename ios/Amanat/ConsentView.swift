// Consent, in the survivor's language: a text the worker reads aloud, one box per scope.
import AmanatKit
import SwiftUI

/// Records consent: the worker picks the person's language; the read-aloud text and every scope
/// label switch to it; the ticked scopes go to `recordConsent` with that language. Nothing is ticked
/// in advance.
struct ConsentView: View {
    @EnvironmentObject var model: AppModel
    @Environment(\.presentationMode) private var presentationMode
    let caseId: String
    @State private var language = L10n.deviceLanguage()
    @State private var ticked: Set<String> = []
    @State private var status = ""
    @State private var busy = false

    private var texts: L10n {
        L10n(language: language)
    }

    var body: some View {
        NavigationView {
            Form {
                Section(header: Text(tr("consent_language"))) {
                    Picker(tr("consent_language"), selection: $language) {
                        Text(tr("language_en")).tag("en")
                        Text(tr("language_ru")).tag("ru")
                        Text(tr("language_uz")).tag("uz")
                    }
                    .pickerStyle(.segmented)
                }
                Section(header: Text(texts.t("consent_read_aloud"))) {
                    Text(texts.t("consent_prompt")).font(.title3)
                }
                Section(header: Text(texts.t("consent_scopes"))) {
                    ForEach(Messages.allScopes, id: \.self) { scope in
                        Toggle(texts.t(Messages.scopeKey(scope)), isOn: binding(for: scope))
                    }
                }
                Section {
                    Button(texts.t("button_save_consent"), action: save)
                        .disabled(busy)
                    if !status.isEmpty {
                        Text(status).foregroundColor(.red)
                    }
                }
            }
            .navigationTitle(tr("consent_title"))
            .toolbar {
                ToolbarItem(placement: .cancellationAction) {
                    Button(tr("button_cancel")) {
                        presentationMode.wrappedValue.dismiss()
                    }
                }
            }
        }
        .onChange(of: language) { _ in
            status = ""
        }
    }

    private func binding(for scope: ConsentScope) -> Binding<Bool> {
        let key = Messages.scopeKey(scope)
        return Binding(
            get: { ticked.contains(key) },
            set: { on in
                if on {
                    ticked.insert(key)
                } else {
                    ticked.remove(key)
                }
            }
        )
    }

    private func save() {
        let scopes = Messages.allScopes.filter { ticked.contains(Messages.scopeKey($0)) }
        let lang = language
        if scopes.isEmpty {
            status = texts.t("error_no_scope")
            return
        }
        busy = true
        let id = caseId
        let worker = model.config.workerId
        model.run({ session in
            try session.unlocked().recordConsent(caseId: id, recordedBy: worker, language: lang, scopes: scopes)
        }, then: { result in
            busy = false
            switch result {
            case .success:
                presentationMode.wrappedValue.dismiss()
            case .failure(let error):
                status = Messages.of(error, L10n(language: lang))
            }
        })
    }
}
