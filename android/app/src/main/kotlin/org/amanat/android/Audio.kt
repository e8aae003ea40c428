// Audio capture streamed straight into the vault: the microphone's bytes go into an
// AttachmentWriter (encrypted as they arrive); no plaintext file ever exists.
package org.amanat.android

import android.annotation.SuppressLint
import android.media.AudioFormat
import android.media.AudioRecord
import android.media.MediaRecorder
import org.amanat.core.AttachmentInfo
import org.amanat.core.AttachmentWriter
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.util.concurrent.atomic.AtomicBoolean

/**
 * Where recorded bytes come from. On a phone: [AudioRecordSource]. In tests: a fake that hands out
 * known bytes, so what reaches the vault can be compared.
 */
interface AudioSource : AutoCloseable {
    /** MIME type of the byte stream (`audio/…`, checked by the core). */
    val mediaType: String

    /** Starts capturing. */
    fun start()

    /** Fills [buffer] from the start; returns the byte count, 0 if nothing yet, -1 once the source has ended. */
    fun read(buffer: ByteArray): Int

    /** Stops capturing; later reads drain what is left, then return -1. */
    fun stop()
}

/**
 * The microphone through the framework's [AudioRecord]: 16 kHz mono 16-bit PCM in a WAV stream
 * whose header leaves the length open (0xFFFFFFFF), since it is written before the length is
 * known and nothing may be seeked back to on disk. Needs RECORD_AUDIO (asked for by the interview
 * screen first).
 */
class AudioRecordSource(private val sampleRate: Int = 16_000) : AudioSource {
    override val mediaType: String = "audio/wav"
    private var record: AudioRecord? = null
    private var header: ByteArray? = wavHeader(sampleRate)
    @Volatile
    private var stopped = false

    @SuppressLint("MissingPermission") // the interview screen asks for RECORD_AUDIO before it records
    override fun start() {
        val min = AudioRecord.getMinBufferSize(sampleRate, AudioFormat.CHANNEL_IN_MONO, AudioFormat.ENCODING_PCM_16BIT)
        val r = AudioRecord(
            MediaRecorder.AudioSource.MIC, sampleRate, AudioFormat.CHANNEL_IN_MONO,
            AudioFormat.ENCODING_PCM_16BIT, maxOf(min, 32 * 1024),
        )
        if (r.state != AudioRecord.STATE_INITIALIZED) {
            r.release()
            throw IllegalStateException("microphone unavailable")
        }
        record = r
        r.startRecording()
    }

    override fun read(buffer: ByteArray): Int {
        header?.let { h ->
            header = null
            h.copyInto(buffer)
            return h.size
        }
        val r = record ?: return -1
        if (stopped) return -1
        val n = r.read(buffer, 0, buffer.size)
        return if (n < 0) -1 else n
    }

    override fun stop() {
        stopped = true
        record?.stop()
    }

    override fun close() {
        record?.release()
        record = null
    }

    private companion object {
        fun wavHeader(rate: Int): ByteArray = ByteBuffer.allocate(44).order(ByteOrder.LITTLE_ENDIAN).apply {
            put("RIFF".toByteArray()); putInt(-1); put("WAVE".toByteArray())
            put("fmt ".toByteArray()); putInt(16); putShort(1); putShort(1)
            putInt(rate); putInt(rate * 2); putShort(2); putShort(16)
            put("data".toByteArray()); putInt(-1)
        }.array()
    }
}

/**
 * Pumps an [AudioSource] into an [AttachmentWriter] until the source ends or [stop] is called,
 * then finishes the attachment (the core also records it as the question's answer). On any failure
 * the writer is aborted, so nothing half-written stays in the vault. The chunk buffer is cleared
 * after every write.
 */
class AudioRecorder(private val source: AudioSource, private val writer: AttachmentWriter) {
    private val stopRequested = AtomicBoolean(false)

    /** Asks the recording to end; [run] then finishes the attachment. */
    fun stop() {
        stopRequested.set(true)
    }

    /** Records until the end; blocking (run it on the recorder executor). */
    fun run(): AttachmentInfo {
        val buffer = ByteArray(CHUNK)
        try {
            source.start()
            var stopping = false
            while (true) {
                if (!stopping && stopRequested.get()) {
                    source.stop()
                    stopping = true
                }
                val n = source.read(buffer)
                if (n < 0) break
                if (n > 0) writer.write(if (n == buffer.size) buffer else buffer.copyOf(n))
                buffer.fill(0)
            }
            return writer.finish()
        } catch (e: Exception) {
            try {
                writer.abort()
            } catch (_: Exception) {
            }
            throw e
        } finally {
            buffer.fill(0)
            source.close()
            writer.destroy()
        }
    }

    private companion object {
        const val CHUNK = 64 * 1024
    }
}
