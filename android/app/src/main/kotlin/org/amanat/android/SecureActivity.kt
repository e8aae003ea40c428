// The base of every screen: the window-level protections, the lock check, and the one way screens
// call the core (off the main thread).
package org.amanat.android

import android.app.Activity
import android.app.AlertDialog
import android.content.Context
import android.content.Intent
import android.content.res.Configuration
import android.os.Build
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.view.Menu
import android.view.MenuItem
import android.view.WindowManager
import java.util.Locale

/**
 * Every activity of the app extends this:
 * - `FLAG_SECURE` on the window (no screenshots, no screen recording, no casting, and a blank
 *   thumbnail in Recents) and, on Android 13+, `setRecentsScreenshotEnabled(false)` as well;
 * - screens that show vault data send the user to the lock screen whenever the vault is locked
 *   (after the auto-lock, or a lock from another screen);
 * - [io] runs a blocking core call on the shell's executor and hands the result back on the main
 *   thread — no screen keeps survivor data anywhere but in its views.
 * Nothing here logs: the shell writes no survivor data to logcat.
 */
abstract class SecureActivity : Activity() {
    /** The application (its vault session and config). */
    protected val app: AmanatApp get() = application as AmanatApp

    /** Whether the screen shows vault data (everything but the lock screen). */
    protected open val needsUnlockedVault: Boolean = true

    private val main = Handler(Looper.getMainLooper())

    final override fun onCreate(savedInstanceState: Bundle?) {
        window.setFlags(WindowManager.LayoutParams.FLAG_SECURE, WindowManager.LayoutParams.FLAG_SECURE)
        super.onCreate(savedInstanceState)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) setRecentsScreenshotEnabled(false)
        if (needsUnlockedVault && !app.session.isUnlocked()) {
            toLockScreen()
            return
        }
        onCreateScreen(savedInstanceState)
    }

    /** Builds the screen (the vault is unlocked if [needsUnlockedVault]). */
    protected abstract fun onCreateScreen(savedInstanceState: Bundle?)

    override fun onStart() {
        super.onStart()
        if (needsUnlockedVault && !isFinishing && !app.session.isUnlocked()) toLockScreen()
    }

    /** Leaves for the lock screen, dropping every screen that showed vault data. */
    protected fun toLockScreen() {
        startActivity(Intent(this, LockActivity::class.java).addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_CLEAR_TASK))
        finish()
    }

    /** Runs [work] (a core call) off the main thread; [done] gets its result on the main thread. */
    protected fun <T> io(work: () -> T, done: (Result<T>) -> Unit) {
        app.config.io.execute {
            val result = try {
                Result.success(work())
            } catch (e: Exception) {
                Result.failure(e)
            }
            main.post { if (!isDestroyed) done(result) }
        }
    }

    /** Posts [r] to the main thread (for work that finishes on another executor). */
    protected fun onMain(r: () -> Unit) {
        main.post { if (!isDestroyed) r() }
    }

    /** A context whose resources speak [language] (`en`, `ru`, `uz`): the survivor's, not the phone's. */
    protected fun inLanguage(language: String): Context {
        val config = Configuration(resources.configuration)
        config.setLocale(Locale.forLanguageTag(language))
        return createConfigurationContext(config)
    }

    override fun onCreateOptionsMenu(menu: Menu): Boolean {
        if (!needsUnlockedVault) return false
        menu.add(Menu.NONE, R.id.sync_screen, Menu.NONE, R.string.button_sync_screen)
        menu.add(Menu.NONE, R.id.passcode_screen, Menu.NONE, R.string.button_passcode_screen)
        menu.add(Menu.NONE, R.id.lock, Menu.NONE, R.string.button_lock)
        menu.add(Menu.NONE, R.id.panic, Menu.NONE, R.string.button_panic)
        return true
    }

    override fun onOptionsItemSelected(item: MenuItem): Boolean = when (item.itemId) {
        R.id.sync_screen -> { startActivity(Intent(this, SyncActivity::class.java)); true }
        R.id.passcode_screen -> { startActivity(Intent(this, PasscodeActivity::class.java)); true }
        R.id.lock -> { lockNow(); true }
        R.id.panic -> { confirmPanicWipe(); true }
        else -> super.onOptionsItemSelected(item)
    }

    /** Locks the vault and shows the lock screen. */
    protected fun lockNow() {
        app.session.lock()
        toLockScreen()
    }

    /** Asks once, then wipes (the panic action is on every screen: menu, and the case list's button). */
    protected fun confirmPanicWipe() {
        AlertDialog.Builder(this)
            .setTitle(R.string.panic_confirm_title)
            .setMessage(R.string.panic_confirm_message)
            .setPositiveButton(R.string.button_confirm_wipe) { _, _ -> panicWipe() }
            .setNegativeButton(R.string.button_cancel, null)
            .show()
    }

    private fun panicWipe() {
        io({ app.session.panicWipe() }) {
            app.resetSession()
            toLockScreen()
        }
    }
}
