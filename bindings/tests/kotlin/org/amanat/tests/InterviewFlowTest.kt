// The interview flow from Kotlin: template in Russian, validation error, skip logic, submit,
// amend, chain and audit verification.
package org.amanat.tests

import org.amanat.core.*
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.Test
import kotlin.test.assertFailsWith

class InterviewFlowTest {
    @Test
    fun fullFlowInRussian() = Fixture().use { f ->
        val v = f.vault
        val case = caseWithConsent(v, ConsentScope.INTERVIEW, ConsentScope.SHARE_CASEWORKERS)
        assertEquals(9, case.code.length)
        assertEquals(case.id, v.findCaseByCode(case.code.lowercase().replace("-", ""))?.id)

        val t = v.template(TEMPLATE, 1u, "ru")
        assertEquals("ru", t.language)
        assertTrue(t.title.isNotBlank())
        val hours = t.sections.flatMap { it.questions }.first { it.id == "hours_per_day" }
        assertEquals(QuestionType.INTEGER, hours.questionType)
        assertEquals(Constraints.IntegerRange(0L, 24L), hours.constraints)

        val started = v.startInterview(case.id, TEMPLATE, 1u, "ru")
        assertEquals(InterviewStatus.DRAFT, started.status)
        assertEquals(AnswerValue.Consent(true), started.answers["consent_interview"])

        val saved = v.saveAnswers(started.id, mapOf(
            "interpreter_used" to AnswerValue.YesNo(true),
            "interpreter_language" to choice("russian"),
            "first_contact" to choice("messaging_app"),
            "platforms" to AnswerValue.Choices(listOf("telegram")),
            "hours_per_day" to AnswerValue.Integer(14L),
        ))
        assertEquals(AnswerValue.Integer(14L), saved.answers["hours_per_day"])
        assertTrue("interpreter_language" in v.visibleQuestions(saved.id))

        // A bad batch: a typed exception naming the question, not the value; nothing stored.
        val e = assertFailsWith<AmanatException.Answer> {
            v.saveAnswers(saved.id, mapOf(
                "narrative" to AnswerValue.Text("kept out"),
                "hours_per_day" to AnswerValue.Integer(30L),
            ))
        }
        assertEquals("hours_per_day", e.question)
        // The rule is typed, so the shell can say it in Russian or Uzbek: out of range, 0..24.
        assertEquals(AnswerReason.OutOfRange("0", "24"), e.reason)
        assertEquals("answer", e.code())
        assertEquals(1303u, e.numericCode())
        assertFalse(e.detail.contains("30"), e.detail)
        assertFalse(v.getInterview(saved.id).answers.containsKey("narrative"))
        val wrongType = assertFailsWith<AmanatException.Answer> {
            v.saveAnswers(saved.id, mapOf("hours_per_day" to AnswerValue.Text("many")))
        }
        assertEquals(AnswerReason.WrongType(QuestionType.INTEGER), wrongType.reason)
        val unknownChoice = assertFailsWith<AmanatException.Answer> {
            v.saveAnswers(saved.id, mapOf("first_contact" to choice("no_such_choice")))
        }
        assertEquals(AnswerReason.UnknownChoice, unknownChoice.reason)
        val consent = assertFailsWith<AmanatException.Answer> {
            v.saveAnswers(saved.id, mapOf("consent_audio" to AnswerValue.Consent(true)))
        }
        assertEquals(AnswerReason.ConsentViaRecord, consent.reason)

        // Skip logic: no interpreter → the language question disappears, its answer is dropped.
        val now = v.saveAnswers(saved.id, mapOf("interpreter_used" to AnswerValue.YesNo(false)))
        assertFalse(now.answers.containsKey("interpreter_language"))
        assertFalse("interpreter_language" in v.visibleQuestions(saved.id))
        assertTrue("interpreter_language" in v.visibleQuestionsFor(TEMPLATE, 1u,
            mapOf("consent_interview" to AnswerValue.Consent(true),
                  "interpreter_used" to AnswerValue.YesNo(true))))

        val submitted = v.submitInterview(saved.id)
        assertEquals(InterviewStatus.SUBMITTED, submitted.status)
        assertEquals(64, submitted.hash?.length)
        assertFailsWith<AmanatException.InterviewSubmitted> {
            v.saveAnswers(saved.id, mapOf("safe_now" to choice("yes")))
        }
        val amendment = v.amendInterview(saved.id)
        assertEquals(1u, amendment.amendment)
        assertEquals(submitted.hash, amendment.prevHash)
        v.saveAnswers(amendment.id, mapOf("safe_now" to choice("no")))
        v.submitInterview(amendment.id)
        assertFailsWith<AmanatException.AlreadyAmended> { v.amendInterview(saved.id) }
        assertEquals(2u, v.verifyChain(amendment.id))
        assertEquals(2, v.listInterviews(case.id).size)
        assertTrue(v.verifyAudit() >= 6uL)
        assertTrue(v.auditEntries().any { it.kind == AuditKind.SUBMIT })
    }

    @Test
    fun casesConsentAndIdentity() = Fixture().use { f ->
        val v = f.vault
        val case = v.createCase()
        v.setCaseField(case.id, "status", "open")
        v.setIdentityField(case.id, "given_name", "Madina")
        assertEquals("open", v.getCase(case.id).fields["status"]?.value)
        assertFalse(v.getCase(case.id).fields.containsKey("given_name"))
        assertEquals("Madina", v.getIdentity(case.id).fields["given_name"]?.value)
        val bad = assertFailsWith<AmanatException.InvalidInput> { v.setCaseField(case.id, "Bad Name", "x") }
        assertEquals("invalid_input", bad.code())

        assertFailsWith<AmanatException.ConsentMissing> { v.startInterview(case.id, TEMPLATE, 1u, "ru") }
            .also { assertEquals(ConsentScope.INTERVIEW, it.scope) }
        v.recordConsent(case.id, "worker-17", "ru", listOf(ConsentScope.INTERVIEW, ConsentScope.AUDIO))
        val w = v.withdrawConsent(case.id, "worker-17", "ru", listOf(ConsentScope.AUDIO))
        assertEquals(listOf(ConsentScope.AUDIO), w.withdrawn)
        assertEquals(2u, v.currentConsent(case.id)?.version)
        assertEquals(2, v.consentHistory(case.id).size)
        assertTrue(v.getCase(case.id).withdrawalPending)
        assertFailsWith<AmanatException.NotFound> { v.getCase("00".repeat(16)) }
        assertFailsWith<AmanatException.InvalidInput> { v.findCaseByCode("ZZZZ-ZZZ") }
        assertFailsWith<AmanatException.UnknownTemplate> { v.template("nope", 1u, "ru") }
        assertFailsWith<AmanatException.Template> { v.template(TEMPLATE, 1u, "fr") }
    }
}
