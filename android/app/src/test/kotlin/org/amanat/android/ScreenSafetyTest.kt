// Screen and storage safety: FLAG_SECURE on every activity, no backup or device transfer, the
// vault in credential-protected storage.
package org.amanat.android

import android.content.Intent
import android.content.pm.ApplicationInfo
import org.amanat.core.ConsentScope
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config
import org.xmlpull.v1.XmlPullParser
import java.io.File
import javax.xml.parsers.DocumentBuilderFactory

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class ScreenSafetyTest {
    @Test
    fun everyActivitySetsFlagSecure() {
        val shell = TestShell()
        // The lock screen, locked and before any vault exists.
        assertSecure(launch(LockActivity::class.java).get())
        shell.session.create(PASS)
        val v = shell.session.unlocked()
        val c = v.createCase()
        v.recordConsent(c.id, "worker-7", "en", listOf(ConsentScope.INTERVIEW))
        val iv = v.startInterview(c.id, CaseActivity.TEMPLATE_ID, CaseActivity.TEMPLATE_VERSION, "en")
        val app = shell.app
        val screens = listOf(
            launch(LockActivity::class.java).get(),
            launch(CaseListActivity::class.java).get(),
            launch(CaseActivity::class.java, Intent(app, CaseActivity::class.java).putExtra(CaseActivity.EXTRA_CASE_ID, c.id)).get(),
            launch(ConsentActivity::class.java, Intent(app, ConsentActivity::class.java).putExtra(CaseActivity.EXTRA_CASE_ID, c.id)).get(),
            launch(InterviewActivity::class.java, Intent(app, InterviewActivity::class.java).putExtra(InterviewActivity.EXTRA_INTERVIEW_ID, iv.id)).get(),
            launch(PasscodeActivity::class.java).get(),
            launch(EnrollActivity::class.java).get(),
            launch(SyncActivity::class.java).get(),
        )
        assertEquals(8, screens.map { it.javaClass }.toSet().size)
        screens.forEach(::assertSecure)
        screens.forEach { assertTrue(it.javaClass.simpleName, it is SecureActivity) }
        // Every activity the manifest declares is one of them (a new screen must be added here).
        val manifest = java.io.File(System.getProperty("amanat.manifest")).readText()
        val declared = Regex("<activity\\s+android:name=\"\\.(\\w+)\"").findAll(manifest).map { it.groupValues[1] }.toSet()
        assertEquals(screens.map { it.javaClass.simpleName }.toSet(), declared)

        // Locked: the data screens keep the flag and leave for the lock screen at once.
        shell.session.lock()
        val locked = launch(CaseListActivity::class.java).get()
        assertSecure(locked)
        assertTrue(locked.isFinishing)
        nextStarted(locked, LockActivity::class.java)
        for (cls in listOf(PasscodeActivity::class.java, EnrollActivity::class.java, SyncActivity::class.java)) {
            val screen = launch(cls).get()
            assertSecure(screen)
            assertTrue(cls.simpleName, screen.isFinishing)
            nextStarted(screen, LockActivity::class.java)
        }
    }

    @Test
    fun backupAndTransferAreOff() {
        val app = TestShell().app
        assertEquals(0, app.applicationInfo.flags and ApplicationInfo.FLAG_ALLOW_BACKUP)

        // The manifest the APK is built from points at both rule files.
        val manifest = DocumentBuilderFactory.newInstance().apply { isNamespaceAware = true }
            .newDocumentBuilder().parse(File(System.getProperty("amanat.manifest") ?: MANIFEST))
        val application = manifest.getElementsByTagName("application").item(0) as org.w3c.dom.Element
        val ns = "http://schemas.android.com/apk/res/android"
        assertEquals("false", application.getAttributeNS(ns, "allowBackup"))
        assertEquals("@xml/data_extraction_rules", application.getAttributeNS(ns, "dataExtractionRules"))
        assertEquals("@xml/backup_rules", application.getAttributeNS(ns, "fullBackupContent"))
        assertEquals("", application.getAttributeNS(ns, "defaultToDeviceProtectedStorage"))

        // Both rule files exclude every domain, for cloud backup and for device transfer.
        val domains = setOf("root", "file", "database", "sharedpref", "external")
        fun excluded(res: Int): Map<String, Set<String>> {
            val out = HashMap<String, MutableSet<String>>()
            val p = app.resources.getXml(res)
            var section = "full-backup-content"
            while (p.next() != XmlPullParser.END_DOCUMENT) {
                if (p.eventType != XmlPullParser.START_TAG) continue
                when (p.name) {
                    "cloud-backup", "device-transfer" -> section = p.name
                    "exclude" -> if (p.getAttributeValue(null, "path") == ".") {
                        out.getOrPut(section) { HashSet() }.add(p.getAttributeValue(null, "domain"))
                    }
                    "include" -> throw AssertionError("nothing may be included")
                }
            }
            return out
        }
        assertEquals(mapOf("cloud-backup" to domains, "device-transfer" to domains), excluded(R.xml.data_extraction_rules))
        assertEquals(mapOf("full-backup-content" to domains), excluded(R.xml.backup_rules))
    }

    @Test
    fun vaultLivesInCredentialProtectedStorage() {
        val app = TestShell().app
        assertFalse(app.isDeviceProtectedStorage)
        assertEquals(File(app.filesDir, "vault"), app.vaultDir())
        assertEquals(app.vaultDir().path, app.session.dir)
        assertTrue(File(app.noBackupFilesDir, "capture") == CaptureProvider.dir(app))
    }

    private companion object {
        const val MANIFEST = "android/app/src/main/AndroidManifest.xml"
    }
}
