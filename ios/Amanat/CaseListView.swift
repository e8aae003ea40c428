// The case list: case codes only (no names: identity fields stay behind the case screen).
import AmanatKit
import SwiftUI

/// Lists the cases by code (newest first, as the core returns them); new case, sync, lock, panic
/// wipe (confirmed once).
struct CaseListView: View {
    @EnvironmentObject var model: AppModel
    @State private var cases: [Case] = []
    @State private var status = ""
    @State private var openCaseId: String?
    @State private var confirmWipe = false

    var body: some View {
        List {
            Section {
                Button(tr("button_new_case"), action: newCase)
            }
            Section {
                if cases.isEmpty {
                    Text(tr("cases_empty")).foregroundColor(.secondary)
                }
                ForEach(cases, id: \.id) { c in
                    NavigationLink(destination: CaseView(caseId: c.id), tag: c.id, selection: $openCaseId) {
                        Text(c.code).font(.body.monospaced())
                    }
                }
            }
            if !status.isEmpty {
                Text(status).foregroundColor(.red)
            }
            Section {
                NavigationLink(tr("sync_title"), destination: SyncView())
                NavigationLink(tr("passcode_title"), destination: PasscodeView())
                Button(tr("button_lock")) {
                    model.lock()
                }
                Button(tr("button_panic"), role: .destructive) {
                    confirmWipe = true
                }
            }
        }
        .navigationTitle(tr("cases_title"))
        .onAppear(perform: load)
        .panicWipeConfirmation(isPresented: $confirmWipe)
    }

    private func load() {
        model.run({ session in try session.unlocked().listCases() }, then: { result in
            switch result {
            case .success(let list):
                cases = list
                status = ""
            case .failure(let error):
                status = Messages.of(error, model.l10n)
            }
        })
    }

    private func newCase() {
        model.run({ session in try session.unlocked().createCase() }, then: { result in
            switch result {
            case .success(let c):
                cases.insert(c, at: 0)
                openCaseId = c.id
            case .failure(let error):
                status = Messages.of(error, model.l10n)
            }
        })
    }
}

extension View {
    /// Lock and panic wipe in the toolbar of every unlocked screen (as in the Android shell's menus).
    func shellToolbar() -> some View {
        modifier(ShellToolbar())
    }

    /// The panic wipe's one confirmation: destroys everything at once (the core destroys the
    /// platform key and the key slots first), then the app is back at "choose a passcode".
    func panicWipeConfirmation(isPresented: Binding<Bool>) -> some View {
        modifier(PanicWipeConfirmation(isPresented: isPresented))
    }
}

struct PanicWipeConfirmation: ViewModifier {
    @EnvironmentObject var model: AppModel
    @Binding var isPresented: Bool

    func body(content: Content) -> some View {
        content.alert(tr("panic_confirm_title"), isPresented: $isPresented) {
            Button(tr("button_confirm_wipe"), role: .destructive) {
                model.panicWipe { _ in }
            }
            Button(tr("button_cancel"), role: .cancel) {}
        } message: {
            Text(tr("panic_confirm_message"))
        }
    }
}

/// The lock and panic-wipe menu of every unlocked screen.
struct ShellToolbar: ViewModifier {
    @EnvironmentObject var model: AppModel
    @State private var confirmWipe = false

    func body(content: Content) -> some View {
        content
            .toolbar {
                ToolbarItem(placement: .primaryAction) {
                    Menu {
                        Button(tr("button_lock")) {
                            model.lock()
                        }
                        Button(tr("button_panic"), role: .destructive) {
                            confirmWipe = true
                        }
                    } label: {
                        Image(systemName: "lock")
                    }
                }
            }
            .panicWipeConfirmation(isPresented: $confirmWipe)
    }
}
