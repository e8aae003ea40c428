// Runs every Robolectric test class of the shell with JUnit 4 and ends with the line CI reads,
// "N passed, M failed" (scripts/test-android.sh).
package org.amanat.android

import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener
import kotlin.system.exitProcess

/** The test classes, in the order they run. */
val TEST_CLASSES: List<Class<*>> = listOf(
    KeystoreKeyProviderTest::class.java,
    LockScreenTest::class.java,
    InterviewFlowTest::class.java,
    FormFieldsTest::class.java,
    ScreenSafetyTest::class.java,
    StringsTest::class.java,
    MessagesTest::class.java,
    PasscodeScreenTest::class.java,
    SyncScreenTest::class.java,
)

/** Entry point: runs [TEST_CLASSES], prints one line per test and the summary. */
object RunTests {
    @JvmStatic
    fun main(args: Array<String>) {
        val core = JUnitCore()
        core.addListener(object : RunListener() {
            private var failed = false
            override fun testStarted(d: Description) {
                failed = false
            }
            override fun testFailure(f: Failure) {
                failed = true
                println("FAIL ${f.description.className.substringAfterLast('.')}::${f.description.methodName}")
                println(f.trace)
            }
            override fun testFinished(d: Description) {
                if (!failed) println("ok   ${d.className.substringAfterLast('.')}::${d.methodName}")
            }
        })
        // -Damanat.tests=SyncScreenTest,…: only those classes (for iterating; CI runs them all).
        val only = System.getProperty("amanat.tests")?.split(',')?.map { it.trim() }?.filter { it.isNotEmpty() }
        val classes = if (only.isNullOrEmpty()) TEST_CLASSES else TEST_CLASSES.filter { it.simpleName in only }
        val result = core.run(*classes.toTypedArray())
        val failed = result.failureCount
        val passed = result.runCount - failed
        println("Robolectric: ${result.runCount} tests in ${result.runTime / 1000} s, ${result.ignoreCount} ignored")
        println("$passed passed, $failed failed")
        exitProcess(if (failed == 0 && result.runCount > 0) 0 else 1)
    }
}
