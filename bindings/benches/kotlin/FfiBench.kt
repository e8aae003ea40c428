// FFI overhead benchmark, Kotlin side: list 1,000 cases and read one interview with 100 answers
// through the generated bindings (JNA). The Rust side is `cargo run --release -p amanat-ffi
// --example ffi_bench`; both build the same data and time the same calls.
//
// Run: java -Djna.library.path=<target>/release -cp <classes>:kotlin-stdlib.jar:jna.jar \
//      org.amanat.bench.FfiBenchKt [iterations]
package org.amanat.bench

import org.amanat.core.*
import java.io.File
import java.nio.file.Files

const val CASES = 1000
const val ANSWERS = 100

/** A template with 100 text questions in one section, all three required languages. */
fun benchTemplateJson(): String {
    fun text(s: String) = """{"en":"$s","ru":"$s","uz":"$s"}"""
    val questions = (0 until ANSWERS).joinToString(",") { n ->
        """{"id":"q$n","type":"text","label":${text("Question $n")}}"""
    }
    return """{"id":"bench100","version":1,"languages":["en","ru","uz"],"title":${text("Bench")},""" +
        """"sections":[{"id":"s","title":${text("Section")},"questions":[$questions]}]}"""
}

fun stats(name: String, samplesNs: List<Long>) {
    val sorted = samplesNs.sorted()
    val median = sorted[sorted.size / 2] / 1000.0
    val p90 = sorted[(sorted.size * 9) / 10] / 1000.0
    println("kotlin  %-34s median %9.1f µs   p90 %9.1f µs   (n=%d)".format(name, median, p90, sorted.size))
}

fun main(args: Array<String>) {
    val iterations = args.firstOrNull()?.toInt() ?: 50
    val tmp = Files.createTempDirectory("amanat-bench").toFile()
    try {
        val key = File(tmp, "device.key").path
        Vault.createWithKeyFile(File(tmp, "vault").path, "246810", key, KdfParams(256u, 1u, 1u)).use { v ->
            v.installTemplate(benchTemplateJson())
            repeat(CASES) { v.createCase() }
            val case = v.listCases().first()
            v.recordConsent(case.id, "bench", "en", listOf(ConsentScope.INTERVIEW))
            val interview = v.startInterview(case.id, "bench100", 1u, "en")
            val answers = (0 until ANSWERS).associate { n ->
                "q$n" to AnswerValue.Text("Synthetic answer number $n, about fifty characters.")
            }
            v.saveAnswers(interview.id, answers)

            // Warm-up (JIT, JNA symbol lookup, SQLite page cache), then timed runs.
            repeat(30) { v.listCases() }
            repeat(2000) { v.getInterview(interview.id) }
            repeat(20000) { v.isUnlocked() }
            val list = (0 until iterations).map {
                val t0 = System.nanoTime()
                val cases = v.listCases()
                val dt = System.nanoTime() - t0
                check(cases.size == CASES)
                dt
            }
            val get = (0 until iterations * 10).map {
                val t0 = System.nanoTime()
                val i = v.getInterview(interview.id)
                val dt = System.nanoTime() - t0
                check(i.answers.size == ANSWERS)
                dt
            }
            val trivial = (0 until iterations * 100).map {
                val t0 = System.nanoTime()
                v.isUnlocked()
                System.nanoTime() - t0
            }
            stats("list_cases (1,000 cases)", list)
            stats("get_interview (100 answers)", get)
            stats("is_unlocked (call overhead)", trivial)
        }
    } finally {
        tmp.deleteRecursively()
    }
}
