// The lock screen: choose a passcode (first run) or unlock. Attempts and waits come from the core's
// persisted counter; a duress passcode looks exactly like a correct one.
import AmanatKit
import SwiftUI

/// First run: passcode + repeat → `Vault.create`. Later: passcode → `unlock`. The screen shows the
/// core's failed-attempt count and, while the core's backoff runs, a countdown with the button
/// disabled (the core refuses early attempts anyway). A duress passcode takes the same path and
/// shows the same next screen — the shell cannot tell and does not try. If the platform key is gone
/// (`KeyProvider` error, kind `keyMissing`) the data cannot be opened: the screen says so and offers
/// the wipe.
struct LockView: View {
    @EnvironmentObject var model: AppModel
    @State private var setup = false
    @State private var loaded = false
    @State private var passcode = ""
    @State private var confirm = ""
    @State private var status = ""
    @State private var busy = false
    @State private var retryAtMs: UInt64?
    @State private var now = Date()
    @State private var keyMissing = false
    private let ticker = Timer.publish(every: 1, on: .main, in: .common).autoconnect()

    private var secondsLeft: Int64 {
        guard let at = retryAtMs else { return 0 }
        let nowMs = UInt64(now.timeIntervalSince1970 * 1000)
        return at > nowMs ? Int64((at - nowMs + 999) / 1000) : 0
    }

    var body: some View {
        VStack(spacing: 16) {
            Text(tr(setup ? "lock_title_setup" : "lock_title_unlock"))
                .font(.title2)
            SecureField(tr("passcode_hint"), text: $passcode)
                .textContentType(.oneTimeCode)
                .textFieldStyle(.roundedBorder)
                .disableAutocorrection(true)
            if setup {
                SecureField(tr("passcode_confirm_hint"), text: $confirm)
                    .textContentType(.oneTimeCode)
                    .textFieldStyle(.roundedBorder)
                    .disableAutocorrection(true)
            }
            Button(tr(setup ? "button_create" : "button_unlock")) {
                submit()
            }
            .buttonStyle(.borderedProminent)
            .disabled(busy || keyMissing || secondsLeft > 0 || !loaded)
            if secondsLeft > 0 {
                Text(tr("status_wait", secondsLeft))
                    .foregroundColor(.secondary)
            } else if !status.isEmpty {
                Text(status)
                    .foregroundColor(.secondary)
            }
            if keyMissing {
                Button(tr("button_wipe"), role: .destructive) {
                    wipeUnopenable()
                }
            }
        }
        .padding(24)
        .onAppear(perform: refresh)
        .onReceive(ticker) { date in
            now = date
        }
    }

    private func refresh() {
        model.run({ session -> (Bool, UnlockStatus?)? in
            if session.isUnlocked() {
                return nil
            }
            if !session.exists() {
                return (true, nil)
            }
            return (false, try session.status())
        }, then: { result in
            switch result {
            case .success(nil):
                model.didUnlock()
            case .success(.some(let state)):
                loaded = true
                setup = state.0
                keyMissing = false
                if let s: UnlockStatus = state.1 {
                    show(s)
                } else {
                    status = ""
                }
            case .failure(let error):
                loaded = true
                showError(error)
            }
        })
    }

    private func show(_ s: UnlockStatus) {
        status = s.failedAttempts > 0 ? tr("status_wrong_passcode", Int64(s.failedAttempts)) : ""
        retryAtMs = s.retryAtMs
    }

    private func submit() {
        // The passcode leaves the view at once; the core zeroizes its own copy.
        let code = passcode
        let again = confirm
        passcode = ""
        confirm = ""
        if setup && code != again {
            status = tr("error_passcode_mismatch")
            return
        }
        busy = true
        let creating = setup
        model.run({ session in
            if creating {
                try session.create(passcode: code)
            } else {
                try session.unlock(passcode: code)
            }
        }, then: { result in
            busy = false
            switch result {
            case .success:
                model.didUnlock()
            case .failure(let error):
                showError(error)
            }
        })
    }

    private func showError(_ error: Error) {
        status = Messages.of(error, model.l10n)
        switch error {
        case let AmanatError.WrongPasscode(_, retryAt, _):
            retryAtMs = retryAt
        case let AmanatError.Backoff(_, retryAt, _, _):
            retryAtMs = retryAt
        case let AmanatError.KeyProvider(kind, _):
            keyMissing = kind == KeyProviderErrorKind.keyMissing
        default:
            break
        }
    }

    private func wipeUnopenable() {
        busy = true
        model.run({ session in try session.wipeUnopenable() }, then: { result in
            busy = false
            model.resetSession()
            if case .failure(let error) = result {
                showError(error)
            } else {
                keyMissing = false
                status = ""
                refresh()
            }
        })
    }
}
