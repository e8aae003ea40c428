// Enrollment and sync: enroll with the organisation's code, then the core's sync status — pending
// entries, wedged entries (retry / discard), last success, backoff — clashes to resolve, and
// "sync now" with progress and cancel.
import AmanatKit
import SwiftUI

struct SyncView: View {
    @EnvironmentObject var model: AppModel
    @State private var enrollment: Enrollment?
    @State private var syncStatus: SyncStatus?
    @State private var clashes: [SyncClash] = []
    @State private var code = ""
    @State private var relayUrl = ""
    @State private var progress: SyncProgress?
    @State private var running = false
    @State private var message = ""
    @State private var confirmDiscard: WedgedEntry?

    var body: some View {
        List {
            if let e: Enrollment = enrollment {
                Section(header: Text(tr("sync_enrolled"))) {
                    Text(tr("sync_relay", e.relayUrl)).font(.footnote)
                    Text(tr("sync_org", String(e.orgFingerprint.prefix(16)))).font(.footnote.monospaced())
                }
                statusSection
                wedgedSection
                clashSection
            } else {
                enrollSection
            }
            if !message.isEmpty {
                Section {
                    Text(message)
                }
            }
        }
        .navigationTitle(tr("sync_title"))
        .shellToolbar()
        .onAppear(perform: load)
        .alert(tr("sync_discard_title"), isPresented: Binding(get: { confirmDiscard != nil }, set: { if !$0 { confirmDiscard = nil } })) {
            Button(tr("button_discard"), role: .destructive) {
                if let entry = confirmDiscard {
                    discard(entry.seq)
                }
                confirmDiscard = nil
            }
            Button(tr("button_cancel"), role: .cancel) {
                confirmDiscard = nil
            }
        } message: {
            Text(tr("sync_discard_message"))
        }
    }

    // ---- enrollment ----

    private var enrollSection: some View {
        Section(header: Text(tr("sync_not_enrolled"))) {
            TextField(tr("enroll_code_hint"), text: $code)
                .disableAutocorrection(true)
                .textInputAutocapitalization(.never)
            TextField(tr("enroll_relay_hint"), text: $relayUrl)
                .keyboardType(.URL)
                .disableAutocorrection(true)
                .textInputAutocapitalization(.never)
            Button(tr("button_enroll"), action: enroll)
                .disabled(running || code.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        }
    }

    private func enroll() {
        let c = code.trimmingCharacters(in: .whitespacesAndNewlines)
        let url = relayUrl.trimmingCharacters(in: .whitespacesAndNewlines)
        let transport = model.config.transport()
        running = true
        model.run({ session in
            try session.unlocked().enroll(code: c, relayUrl: url.isEmpty ? nil : url, transport: transport)
        }, then: { result in
            running = false
            switch result {
            case .success(let e):
                enrollment = e
                code = ""
                message = tr("enrolled_ok")
                load()
            case .failure(let error):
                message = Messages.of(error, model.l10n)
            }
        })
    }

    // ---- status and sync now ----

    private var statusSection: some View {
        Section(header: Text(tr("sync_status"))) {
            if let s: SyncStatus = syncStatus {
                Text(tr("sync_pending", Int64(s.pending)))
                Text(s.lastSuccessMs.map { tr("sync_last_success", Self.time($0)) } ?? tr("sync_never"))
                if s.consecutiveFailures > 0 {
                    Text(tr("sync_failures", Int64(s.consecutiveFailures)))
                }
                if let next = s.nextAttemptMs {
                    Text(tr("sync_next_attempt", Self.time(next)))
                }
            }
            if running {
                if let p: SyncProgress = progress {
                    ProgressView(value: p.total > 0 ? Double(p.done) / Double(p.total) : 0) {
                        Text(tr(Self.phaseKey(p.phase)))
                    }
                } else {
                    ProgressView()
                }
                Button(tr("button_cancel"), role: .cancel) {
                    model.syncRunner.cancel()
                }
            } else {
                Button(tr("button_sync_now"), action: syncNow)
            }
        }
    }

    private func syncNow() {
        progress = nil
        message = ""
        let started = model.syncRunner.start(progress: { p in progress = p }) { result in
            running = false
            progress = nil
            switch result {
            case .success(let report):
                if let i = report.interrupted {
                    message = Messages.interruption(i, model.l10n)
                } else {
                    message = tr("sync_done", Int64(report.pushed), Int64(report.pulled))
                }
                model.scheduler.schedule(earliestMs: report.retryAfterMs.map { UInt64(Date().timeIntervalSince1970 * 1000) + $0 })
            case .failure(let error):
                message = Messages.of(error, model.l10n)
            }
            load()
        }
        running = started
    }

    // ---- wedged entries ----

    @ViewBuilder
    private var wedgedSection: some View {
        if let s: SyncStatus = syncStatus, !s.wedged.isEmpty {
            Section(header: Text(tr("sync_wedged", Int64(s.wedged.count))), footer: Text(tr("sync_wedged_help"))) {
                ForEach(s.wedged, id: \.seq) { entry in
                    HStack {
                        // The reason is the relay's code (e.g. `envelope_too_large`), not survivor data.
                        Text("\(Messages.entryKind(entry.kind, model.l10n)) · \(entry.reason)")
                            .font(.footnote)
                        Spacer()
                        Button(tr("button_discard"), role: .destructive) {
                            confirmDiscard = entry
                        }
                        .buttonStyle(.borderless)
                    }
                }
                Button(tr("button_retry_wedged"), action: retryWedged)
            }
        }
    }

    private func retryWedged() {
        model.run({ session in try session.unlocked().retryWedged() }, then: { result in
            if case .failure(let error) = result {
                message = Messages.of(error, model.l10n)
            }
            load()
        })
    }

    private func discard(_ seq: UInt64) {
        model.run({ session in try session.unlocked().discardWedged(seq: seq) }, then: { result in
            if case .failure(let error) = result {
                message = Messages.of(error, model.l10n)
            }
            load()
        })
    }

    // ---- clashes ----

    @ViewBuilder
    private var clashSection: some View {
        if !clashes.isEmpty {
            // Values are survivor data: shown only here, on the unlocked screen under the privacy cover.
            Section(header: Text(tr("sync_clashes", Int64(clashes.count)))) {
                ForEach(clashes, id: \.id) { clash in
                    VStack(alignment: .leading, spacing: 4) {
                        Text(clash.field).font(.headline)
                        ForEach(Array(clash.values.enumerated()), id: \.offset) { item in
                            Button {
                                resolve(clash.id, ClashChoice.keep(index: UInt32(item.offset)))
                            } label: {
                                Text(tr("clash_keep", item.element.value ?? tr("clash_empty"), Self.time(item.element.writtenAtMs)))
                            }
                            .buttonStyle(.borderless)
                        }
                        Button(tr("clash_clear"), role: .destructive) {
                            resolve(clash.id, ClashChoice.clear)
                        }
                        .buttonStyle(.borderless)
                    }
                }
            }
        }
    }

    private func resolve(_ clashId: String, _ choice: ClashChoice) {
        model.run({ session in try session.unlocked().resolveClash(clashId: clashId, choice: choice) }, then: { result in
            if case .failure(let error) = result {
                message = Messages.of(error, model.l10n)
            }
            load()
        })
    }

    // ---- loading ----

    private func load() {
        model.run({ session -> (Enrollment?, SyncStatus?, [SyncClash]) in
            let v: Vault = try session.unlocked()
            guard let e: Enrollment = try v.enrollment() else {
                return (nil, nil, [])
            }
            return (e, try v.syncStatus(), try v.clashes())
        }, then: { result in
            switch result {
            case .success(let loaded):
                enrollment = loaded.0
                syncStatus = loaded.1
                clashes = loaded.2
            case .failure(let error):
                message = Messages.of(error, model.l10n)
            }
        })
    }

    static func time(_ ms: UInt64) -> String {
        let f = DateFormatter()
        f.dateStyle = .short
        f.timeStyle = .short
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(ms) / 1000))
    }

    static func phaseKey(_ phase: SyncPhase) -> String {
        switch phase {
        case .prepare: return "sync_phase_prepare"
        case .push: return "sync_phase_push"
        case .upload: return "sync_phase_upload"
        case .pull: return "sync_phase_pull"
        case .download: return "sync_phase_download"
        }
    }
}
