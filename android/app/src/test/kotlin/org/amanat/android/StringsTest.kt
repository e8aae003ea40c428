// Every shell text exists in English, Russian and Uzbek (Latin): Android would silently fall
// back to English for a missing translation, so this test is the only thing that notices.
package org.amanat.android

import android.content.Context
import android.content.res.Configuration
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import java.util.Locale

@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class StringsTest {
    private val app = RuntimeEnvironment.getApplication()

    private fun inLocale(tag: String): Context =
        app.createConfigurationContext(Configuration(app.resources.configuration).apply { setLocale(Locale.forLanguageTag(tag)) })

    /** Texts that are the same in every language (names). */
    private val same = setOf("app_name", "language_en", "language_ru", "language_uz")

    @Test
    fun everyStringIsTranslated() {
        val en = inLocale("en")
        val ids = R.string::class.java.fields.map { it.name to it.getInt(null) }
        assertTrue(ids.size > 80)
        for (lang in listOf("ru", "uz")) {
            val c = inLocale(lang)
            val missing = ids.filter { (name, id) -> name !in same && c.getString(id) == en.getString(id) }.map { it.first }
            assertEquals("untranslated in $lang", emptyList<String>(), missing)
        }
    }

    @Test
    fun formatArgumentsMatchAcrossLanguages() {
        val ids = R.string::class.java.fields.map { it.name to it.getInt(null) }
        val arg = Regex("%(\\d+)\\$([sd])")
        val en = inLocale("en")
        for (lang in listOf("ru", "uz")) {
            val c = inLocale(lang)
            for ((name, id) in ids) {
                assertEquals("$name in $lang", arg.findAll(en.getString(id)).map { it.value }.toSet(),
                    arg.findAll(c.getString(id)).map { it.value }.toSet())
            }
        }
    }

    @Test
    fun uzbekIsLatinScript() {
        val uz = inLocale("uz")
        for (f in R.string::class.java.fields) {
            if (f.name in same) continue
            val s = uz.getString(f.getInt(null))
            assertTrue("${f.name} has Cyrillic: $s", s.none { it in '\u0400'..'\u04FF' })
        }
    }
}
