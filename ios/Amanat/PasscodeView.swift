// Change the passcode, or set the duress passcode. The rules (length, current passcode, a duress
// passcode that differs from the real one) are the core's; this screen only collects and reports.
import AmanatKit
import SwiftUI

struct PasscodeView: View {
    @EnvironmentObject var model: AppModel
    @State private var current = ""
    @State private var newPasscode = ""
    @State private var repeated = ""
    @State private var duress = false
    @State private var status = ""
    @State private var busy = false

    var body: some View {
        Form {
            Section {
                Picker(tr("passcode_action"), selection: $duress) {
                    Text(tr("passcode_change")).tag(false)
                    Text(tr("passcode_duress")).tag(true)
                }
                .pickerStyle(.segmented)
                if duress {
                    Text(tr("passcode_duress_help")).font(.footnote).foregroundColor(.secondary)
                }
            }
            Section {
                SecureField(tr("passcode_current"), text: $current)
                    .textContentType(.oneTimeCode)
                SecureField(tr(duress ? "passcode_duress_new" : "passcode_new"), text: $newPasscode)
                    .textContentType(.oneTimeCode)
                SecureField(tr("passcode_confirm_hint"), text: $repeated)
                    .textContentType(.oneTimeCode)
            }
            Section {
                Button(tr("button_save_passcode"), action: save)
                    .disabled(busy || current.isEmpty || newPasscode.isEmpty)
                if !status.isEmpty {
                    Text(status)
                }
            }
        }
        .navigationTitle(tr("passcode_title"))
        .shellToolbar()
    }

    private func save() {
        // The passcodes leave the view at once; the core zeroizes its own copies.
        let cur = current
        let new = newPasscode
        let again = repeated
        let setDuress = duress
        current = ""
        newPasscode = ""
        repeated = ""
        if new != again {
            status = tr("error_passcode_mismatch")
            return
        }
        busy = true
        model.run({ session in
            if setDuress {
                try session.setDuressPasscode(current: cur, duress: new)
            } else {
                try session.changePasscode(current: cur, newPasscode: new)
            }
        }, then: { result in
            busy = false
            switch result {
            case .success:
                status = tr(setDuress ? "passcode_duress_saved" : "passcode_saved")
            case .failure(let error):
                status = Messages.of(error, model.l10n)
            }
        })
    }
}
