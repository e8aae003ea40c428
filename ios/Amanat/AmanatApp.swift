// The app: one AppModel per process, background-task registration at launch, the privacy cover
// whenever the app is not active, and the auto-lock when it leaves the screen.
import AmanatKit
import SwiftUI
import UIKit

/// Registers the background sync tasks before launch finishes (BGTaskScheduler requires it) and
/// shreds photo capture files a killed process left behind.
final class AppDelegate: NSObject, UIApplicationDelegate {
    static let model = AppModel(config: ShellConfig.device())

    func application(_ application: UIApplication,
                     didFinishLaunchingWithOptions launchOptions: [UIApplication.LaunchOptionsKey: Any]? = nil) -> Bool {
        AppDelegate.model.scheduler.register()
        AppDelegate.model.photos.shredLeftovers()
        return true
    }

    /// Background chunk uploads finished while the app was suspended or not running.
    func application(_ application: UIApplication, handleEventsForBackgroundURLSession identifier: String,
                     completionHandler: @escaping () -> Void) {
        if !AppDelegate.model.backgroundUploader.handleEvents(identifier: identifier, completion: completionHandler) {
            completionHandler()
        }
    }
}

@main
struct AmanatApp: App {
    @UIApplicationDelegateAdaptor(AppDelegate.self) var delegate
    @Environment(\.scenePhase) private var scenePhase
    @StateObject private var model = AppDelegate.model

    var body: some Scene {
        WindowGroup {
            RootView()
                .environmentObject(model)
                .onChange(of: scenePhase) { phase in
                    switch phase {
                    case .active:
                        model.covered = UIScreen.main.isCaptured
                    case .inactive:
                        // App switcher, Control Centre, a call: hide the screen before iOS takes
                        // the snapshot it shows in the app switcher.
                        model.covered = true
                    case .background:
                        // Time to write the upload plan and lock before iOS suspends the app.
                        var task = UIBackgroundTaskIdentifier.invalid
                        task = UIApplication.shared.beginBackgroundTask {
                            UIApplication.shared.endBackgroundTask(task)
                        }
                        model.enteredBackground {
                            UIApplication.shared.endBackgroundTask(task)
                        }
                    @unknown default:
                        model.covered = true
                    }
                }
                .onReceive(NotificationCenter.default.publisher(for: UIApplication.willResignActiveNotification)) { _ in
                    model.covered = true
                }
                .onReceive(NotificationCenter.default.publisher(for: UIScreen.capturedDidChangeNotification)) { _ in
                    // Screen recording, AirPlay or a mirrored display: survivor data is not shown.
                    model.covered = UIScreen.main.isCaptured || scenePhase != .active
                }
        }
    }
}

/// The lock screen until the vault is unlocked, then the case list; the privacy cover on top of
/// either whenever the app is not active.
struct RootView: View {
    @EnvironmentObject var model: AppModel

    var body: some View {
        ZStack {
            if model.unlocked {
                NavigationView {
                    CaseListView()
                }
                .navigationViewStyle(.stack)
                .id(model.lockGeneration)
            } else {
                LockView()
            }
            if model.covered {
                PrivacyCover()
            }
        }
    }
}

/// An opaque cover with nothing of the app's content: what the app switcher's snapshot shows.
struct PrivacyCover: View {
    var body: some View {
        ZStack {
            Color(UIColor.systemBackground)
            Image(systemName: "lock.shield")
                .font(.system(size: 56))
                .foregroundColor(.secondary)
        }
        .ignoresSafeArea()
        .accessibilityHidden(true)
    }
}

/// A shell text in the phone's language (screens shown to the worker).
func tr(_ key: String, _ args: CVarArg...) -> String {
    let l = L10n(language: L10n.deviceLanguage())
    return args.isEmpty ? l.t(key) : String(format: l.t(key), locale: Locale(identifier: l.language), arguments: args)
}
