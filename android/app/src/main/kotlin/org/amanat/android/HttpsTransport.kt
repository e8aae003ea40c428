// The shell's HTTP stack for the core's sync: the generated foreign trait `Transport` over the
// framework's HttpsURLConnection (no OkHttp, no extra library).
package org.amanat.android

import org.amanat.core.HttpHeader
import org.amanat.core.HttpRequest
import org.amanat.core.HttpResponse
import org.amanat.core.Transport
import org.amanat.core.TransportFfiException
import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.ConnectException
import java.net.HttpURLConnection
import java.net.NoRouteToHostException
import java.net.ProtocolException
import java.net.SocketTimeoutException
import java.net.URL
import java.net.UnknownHostException
import javax.net.ssl.SSLException

/**
 * Moves one signed request to the relay and returns its answer, whatever the status (4xx/5xx are
 * answers, not errors: the core classifies them). Called by the core on the syncing thread,
 * blocking.
 *
 * - The core has already checked the URL (`https://`, plain `http://` only to a loopback
 *   address) before this sees it; on a phone that means HttpsURLConnection with the platform's
 *   trust store (no pinning here: the envelopes are signed and encrypted end to end, the relay
 *   sees ciphertext only).
 * - A connect and a read timeout on every call; no redirects followed; no HTTP cache
 *   (`useCaches = false`); no cookies (the app never installs a `CookieHandler`, and none is sent
 *   or stored); the request is sent as the core built it (the signature covers method, path,
 *   body).
 * - Nothing is logged, and no exception text leaves here: every failure becomes a typed
 *   `TransportFfiException` with no message, which the core turns into a transient interruption
 *   (entries stay queued).
 * - An answer larger than [maxResponseBytes] is refused as `Protocol` rather than filling memory.
 */
class HttpsTransport(
    private val connectTimeoutMs: Int = 15_000,
    private val readTimeoutMs: Int = 60_000,
    private val maxResponseBytes: Long = 64L * 1024 * 1024,
) : Transport {
    override fun send(request: HttpRequest): HttpResponse {
        val conn = try {
            URL(request.url).openConnection() as HttpURLConnection
        } catch (e: IOException) {
            throw TransportFfiException.Other("")
        } catch (e: ClassCastException) {
            throw TransportFfiException.Other("")
        }
        try {
            conn.connectTimeout = connectTimeoutMs
            conn.readTimeout = readTimeoutMs
            conn.instanceFollowRedirects = false
            conn.useCaches = false
            conn.requestMethod = request.method
            for (h in request.headers) {
                // The connection sets the length itself (fixed-length streaming below).
                if (h.name.equals("content-length", ignoreCase = true)) continue
                conn.setRequestProperty(h.name, h.value)
            }
            if (request.method != "GET") {
                conn.doOutput = true
                conn.setFixedLengthStreamingMode(request.body.size)
                conn.outputStream.use { it.write(request.body) }
            }
            val status = conn.responseCode
            if (status < 100 || status > 599) throw TransportFfiException.Protocol()
            val headers = conn.headerFields.flatMap { (name, values) ->
                // The status line comes with a null name.
                if (name == null) emptyList() else values.map { HttpHeader(name.lowercase(), it) }
            }
            val stream: InputStream? = if (status >= 400) conn.errorStream else conn.inputStream
            val body = stream?.use { readLimited(it) } ?: ByteArray(0)
            return HttpResponse(status.toUShort(), headers, body)
        } catch (e: TransportFfiException) {
            throw e
        } catch (e: SocketTimeoutException) {
            throw TransportFfiException.Timeout()
        } catch (e: ConnectException) {
            throw TransportFfiException.Connect()
        } catch (e: UnknownHostException) {
            throw TransportFfiException.Connect()
        } catch (e: NoRouteToHostException) {
            throw TransportFfiException.Connect()
        } catch (e: SSLException) {
            throw TransportFfiException.Tls()
        } catch (e: ProtocolException) {
            throw TransportFfiException.Protocol()
        } catch (e: IOException) {
            throw TransportFfiException.Io()
        } catch (e: RuntimeException) {
            // Platform bugs and security exceptions: typed, without their text (it may quote URLs).
            throw TransportFfiException.Other("")
        } finally {
            conn.disconnect()
        }
    }

    private fun readLimited(input: InputStream): ByteArray {
        val out = ByteArrayOutputStream()
        val buf = ByteArray(64 * 1024)
        var total = 0L
        while (true) {
            val n = input.read(buf)
            if (n < 0) break
            total += n
            if (total > maxResponseBytes) throw TransportFfiException.Protocol()
            out.write(buf, 0, n)
        }
        return out.toByteArray()
    }
}
