// The lock screen against the real core: first passcode, backoff from the core's counter (also
// after a restart), duress indistinguishable, auto-lock on background, lost platform key → wipe.
package org.amanat.android

import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import org.amanat.core.AmanatException
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class LockScreenTest {
    private fun LockActivity.type(code: String, again: String? = null) {
        view<EditText>(R.id.passcode).setText(code)
        again?.let { view<EditText>(R.id.passcode_confirm).setText(it) }
        view<Button>(R.id.unlock).performClick()
        idle()
    }

    private val LockActivity.status get() = view<TextView>(R.id.status).text.toString()

    @Test
    fun firstRunChoosesAPasscode() {
        val shell = TestShell()
        val lock = launch(LockActivity::class.java).get()
        assertSecure(lock)
        assertEquals("Choose a passcode", lock.view<TextView>(R.id.title).text.toString())
        assertEquals(View.VISIBLE, lock.view<View>(R.id.passcode_confirm).visibility)

        lock.type(PASS, "246811")
        assertEquals("The two passcodes are not the same.", lock.status)
        lock.type("12", "12")
        assertTrue(lock.status, lock.status.startsWith("The passcode needs at least"))
        assertFalse(shell.session.exists())
        // The passcode fields are emptied at once.
        assertEquals("", lock.view<EditText>(R.id.passcode).text.toString())

        lock.type(PASS, PASS)
        assertTrue(shell.session.exists())
        assertTrue(shell.session.isUnlocked())
        nextStarted(lock, CaseListActivity::class.java)
    }

    @Test
    fun wrongPasscodesBackOffAsTheCoreSays() {
        val shell = TestShell()
        shell.session.create(PASS)
        shell.session.lock()
        var lock = launch(LockActivity::class.java).get()
        assertEquals("Enter your passcode", lock.view<TextView>(R.id.title).text.toString())
        assertEquals(View.GONE, lock.view<View>(R.id.passcode_confirm).visibility)
        for (i in 1..4) {
            lock.type("000000")
            assertEquals("Wrong passcode. Failed attempts: $i.", lock.status)
            assertTrue(lock.view<Button>(R.id.unlock).isEnabled)
        }
        lock.type("000000")
        // Fifth failure: the core sets a 30 s wait; the button waits with it.
        assertFalse(lock.view<Button>(R.id.unlock).isEnabled)
        val wait = Regex("Too many attempts\\. Try again in (\\d+) s\\.").matchEntire(lock.status)
        assertTrue(lock.status, wait != null && wait.groupValues[1].toInt() in 1..30)
        assertThrows(AmanatException.Backoff::class.java) { shell.session.unlock(PASS) }

        // A restart (new process: new session, new screen) shows the same wait from the core's file.
        shell.app.resetSession()
        lock = launch(LockActivity::class.java).get()
        assertFalse(lock.view<Button>(R.id.unlock).isEnabled)
        assertTrue(lock.status, lock.status.startsWith("Too many attempts"))
        assertEquals(5u, shell.session.status().failedAttempts) // the refused early attempt is not counted
    }

    @Test
    fun duressLooksLikeAnUnlockAndShowsAnEmptyVault() {
        val shell = TestShell()
        shell.session.create(PASS)
        shell.session.unlocked().createCase()
        shell.session.unlocked().setDuressPasscode(PASS, DURESS)
        shell.session.lock()

        val normal = launch(LockActivity::class.java).get()
        normal.type(PASS)
        val afterNormal = nextStarted(normal, CaseListActivity::class.java)
        val normalStatus = normal.status
        val withCases = launch(CaseListActivity::class.java, afterNormal).get()
        assertEquals(1, withCases.view<android.widget.LinearLayout>(R.id.case_list).childCount)
        shell.session.lock()

        val duress = launch(LockActivity::class.java).get()
        duress.type(DURESS)
        val afterDuress = nextStarted(duress, CaseListActivity::class.java)
        // Same next screen, same flags, same (empty) status: nothing on screen tells them apart.
        assertEquals(afterNormal.flags, afterDuress.flags)
        assertEquals(normalStatus, duress.status)
        val empty = launch(CaseListActivity::class.java, afterDuress).get()
        assertEquals(listOf("No cases yet."), allTexts(empty.view<View>(R.id.case_list)))
        // The real data is gone: the real passcode no longer opens anything.
        shell.session.lock()
        assertThrows(AmanatException.WrongPasscode::class.java) { shell.session.unlock(PASS) }
    }

    @Test
    fun goingToTheBackgroundLocks() {
        val shell = TestShell()
        shell.session.create(PASS)
        val controller = launch(CaseListActivity::class.java)
        assertTrue(shell.session.isUnlocked())
        controller.pause().stop()
        assertFalse("auto-lock on background", shell.session.isUnlocked())
        controller.restart().start()
        idle()
        val a = controller.get()
        nextStarted(a, LockActivity::class.java)
        assertTrue(a.isFinishing)
    }

    @Test
    fun rotationDoesNotLock() {
        val shell = TestShell()
        shell.session.create(PASS)
        val controller = launch(CaseListActivity::class.java)
        controller.configurationChange(android.content.res.Configuration(controller.get().resources.configuration).apply {
            orientation = android.content.res.Configuration.ORIENTATION_LANDSCAPE
        })
        idle()
        assertTrue(shell.session.isUnlocked())
    }

    @Test
    fun lostPlatformKeyOffersTheWipe() {
        val shell = TestShell()
        shell.session.create(PASS)
        shell.session.unlocked().createCase()
        shell.session.lock()
        shell.keys.invalidated = true // e.g. the screen lock was removed

        val lock = launch(LockActivity::class.java).get()
        assertEquals(View.GONE, lock.view<View>(R.id.wipe).visibility)
        lock.type(PASS)
        assertTrue(lock.status, lock.status.startsWith("This phone's security key is gone"))
        assertEquals(View.VISIBLE, lock.view<View>(R.id.wipe).visibility)
        assertFalse(lock.view<Button>(R.id.unlock).isEnabled)
        assertEquals(0u, shell.session.status().failedAttempts)

        lock.view<Button>(R.id.wipe).performClick()
        idle()
        assertFalse(shell.session.exists())
        assertEquals("Choose a passcode", lock.view<TextView>(R.id.title).text.toString())
        assertEquals(View.GONE, lock.view<View>(R.id.wipe).visibility)
    }
}
