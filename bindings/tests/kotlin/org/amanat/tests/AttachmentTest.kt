// Attachments from Kotlin: stream audio into the vault, read it back with seeking, the interview
// answer references its SHA-256, and the consent/type gates.
package org.amanat.tests

import org.amanat.core.*
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.Test
import kotlin.test.assertFailsWith
import java.security.MessageDigest

class AttachmentTest {
    @Test
    fun writeReadSeek() = Fixture().use { f ->
        val v = f.vault
        val case = caseWithConsent(v, ConsentScope.INTERVIEW, ConsentScope.AUDIO)
        val interview = v.startInterview(case.id, TEMPLATE, 1u, "ru")
        val data = ByteArray(300_000) { (it % 251).toByte() }
        val info = v.openAttachmentWriter(interview.id, "narrative_audio", "audio/ogg", null).use { w ->
            for (start in data.indices step 64_000) {
                w.write(data.copyOfRange(start, minOf(start + 64_000, data.size)))
            }
            assertEquals(data.size.toULong(), w.size())
            val info = w.finish()
            assertFailsWith<AmanatException.Closed> { w.write(byteArrayOf(1)) }
            info
        }
        val sha = MessageDigest.getInstance("SHA-256").digest(data).joinToString("") { "%02x".format(it) }
        assertEquals(sha, info.sha256)
        val answer = v.getInterview(interview.id).answers["narrative_audio"]
        assertEquals(AnswerValue.Attachment(info.id, sha, "audio/ogg"), answer)
        assertEquals(info, v.attachmentInfo(info.id))

        v.openAttachment(info.id).use { r ->
            assertEquals(data.size.toULong(), r.size())
            assertArrayEquals(data, r.readAll())
            assertEquals(200_000uL, r.seek(200_000uL))
            assertArrayEquals(data.copyOfRange(200_000, 200_100), r.read(100u))
        }

        // Photos need their own consent; a wrong media type is refused before any byte.
        assertFailsWith<AmanatException.ConsentMissing> {
            v.openAttachmentWriter(interview.id, "document_photo", "image/jpeg", null)
        }
        assertFailsWith<AmanatException.Answer> {
            v.openAttachmentWriter(interview.id, "narrative_audio", "image/jpeg", null)
        }
        val limited = v.openAttachmentWriter(interview.id, "narrative_audio", "audio/ogg", 10uL)
        assertFailsWith<AmanatException.TooLarge> { limited.write(ByteArray(11)) }
        assertFailsWith<AmanatException.Closed> { limited.finish() }
        limited.destroy()
    }
}
