// The passcode screen against the real core: change the passcode (the old one then fails, the new
// one opens), set the emergency (duress) passcode (then it wipes and looks like an unlock), and the
// core's typed errors on the way (mismatch, too short, wrong current passcode counted, conflict).
package org.amanat.android

import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import org.amanat.core.AmanatException
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class PasscodeScreenTest {
    private val newPass = "97531864"

    private fun PasscodeActivity.change(current: String, new: String, again: String = new): String {
        view<EditText>(R.id.current_passcode).setText(current)
        view<EditText>(R.id.new_passcode).setText(new)
        view<EditText>(R.id.new_passcode_confirm).setText(again)
        view<Button>(R.id.change_passcode).performClick()
        idle()
        assertEquals("fields are emptied at once", "", view<EditText>(R.id.new_passcode).text.toString())
        return view<TextView>(R.id.change_status).text.toString()
    }

    private fun PasscodeActivity.duress(current: String, duress: String, again: String = duress): String {
        view<EditText>(R.id.duress_current).setText(current)
        view<EditText>(R.id.duress_passcode).setText(duress)
        view<EditText>(R.id.duress_confirm).setText(again)
        view<Button>(R.id.set_duress).performClick()
        idle()
        assertEquals("", view<EditText>(R.id.duress_passcode).text.toString())
        return view<TextView>(R.id.duress_status).text.toString()
    }

    private fun unlockOnScreen(code: String): Pair<LockActivity, String> {
        val lock = launch(LockActivity::class.java).get()
        lock.view<EditText>(R.id.passcode).setText(code)
        lock.view<Button>(R.id.unlock).performClick()
        idle()
        return lock to lock.view<TextView>(R.id.status).text.toString()
    }

    @Test
    fun changedPasscodeUnlocksAndTheOldOneFails() {
        val shell = TestShell()
        shell.session.create(PASS)
        val caseCode = shell.session.unlocked().createCase().code
        val screen = launch(PasscodeActivity::class.java).get()
        assertSecure(screen)

        assertEquals("The two passcodes are not the same.", screen.change(PASS, newPass, "x$newPass"))
        // Length is the core's rule: its minimum comes back typed.
        assertTrue(screen.change(PASS, "12").startsWith("The passcode needs at least"))
        // A wrong current passcode is refused and counted by the core like one on the lock screen.
        assertEquals("The current passcode is wrong.", screen.change("000000", newPass))
        assertEquals(1u, shell.session.status().failedAttempts)

        assertEquals("The passcode was changed.", screen.change(PASS, newPass))
        assertEquals(0u, shell.session.status().failedAttempts)
        assertTrue("still unlocked", shell.session.isUnlocked())

        shell.session.lock()
        val (old, oldStatus) = unlockOnScreen(PASS)
        assertEquals("Wrong passcode. Failed attempts: 1.", oldStatus)
        assertFalse(shell.session.isUnlocked())
        old.finish()
        val (lock, _) = unlockOnScreen(newPass)
        nextStarted(lock, CaseListActivity::class.java)
        // Same data behind the new passcode.
        assertEquals(listOf(caseCode), shell.session.unlocked().listCases().map { it.code })
    }

    @Test
    fun duressPasscodeSetOnTheScreenWipesAndLooksLikeAnUnlock() {
        val shell = TestShell()
        shell.session.create(PASS)
        shell.session.unlocked().createCase()
        val screen = launch(PasscodeActivity::class.java).get()

        assertEquals("The two passcodes are not the same.", screen.duress(PASS, DURESS, "x"))
        assertEquals("The emergency passcode must differ from the passcode.", screen.duress(PASS, PASS))
        assertEquals("The current passcode is wrong.", screen.duress("000000", DURESS))
        assertEquals("The emergency passcode was set.", screen.duress(PASS, DURESS))
        // Changing the passcode to the emergency one is refused as well.
        assertEquals("The emergency passcode must differ from the passcode.", screen.change(PASS, DURESS))

        // A normal unlock first, to compare what the screen does.
        shell.session.lock()
        val (normal, normalStatus) = unlockOnScreen(PASS)
        val afterNormal = nextStarted(normal, CaseListActivity::class.java)
        assertEquals(1, shell.session.unlocked().listCases().size)
        shell.session.lock()

        // The emergency passcode: the same next screen, the same (empty) status, an empty vault.
        val (duress, duressStatus) = unlockOnScreen(DURESS)
        val afterDuress = nextStarted(duress, CaseListActivity::class.java)
        assertEquals(afterNormal.flags, afterDuress.flags)
        assertEquals(normalStatus, duressStatus)
        val list = launch(CaseListActivity::class.java, afterDuress).get()
        assertEquals(listOf("No cases yet."), allTexts(list.view<LinearLayout>(R.id.case_list)))
        assertEquals(View.VISIBLE, list.view<View>(R.id.new_case).visibility)
        // The real data is gone: the real passcode opens nothing any more.
        shell.session.lock()
        assertThrows(AmanatException.WrongPasscode::class.java) { shell.session.unlock(PASS) }
    }

    @Test
    fun lockedVaultSendsThePasscodeScreenToTheLockScreen() {
        val shell = TestShell()
        shell.session.create(PASS)
        shell.session.lock()
        val screen = launch(PasscodeActivity::class.java).get()
        assertSecure(screen)
        assertTrue(screen.isFinishing)
        nextStarted(screen, LockActivity::class.java)
    }
}
