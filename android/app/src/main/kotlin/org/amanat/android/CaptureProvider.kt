// Hands the camera app a file to write a photo into, without androidx's FileProvider.
package org.amanat.android

import android.content.ContentProvider
import android.content.ContentValues
import android.content.Context
import android.database.Cursor
import android.net.Uri
import android.os.ParcelFileDescriptor
import java.io.File
import java.io.FileNotFoundException
import java.security.SecureRandom

/**
 * A write-only content provider over `noBackupFilesDir/capture/`: the camera app (granted
 * write permission for one URI) writes the photo there; the interview screen then imports it with
 * the core's `importAttachmentFile`, which encrypts it into the vault and shreds the file. This is
 * the one place a plaintext file exists, for the seconds between the shot and the import, in
 * credential-protected storage excluded from backup. Only names this app made are served; nothing
 * can be read back through the provider.
 */
class CaptureProvider : ContentProvider() {
    override fun onCreate(): Boolean = true

    override fun openFile(uri: Uri, mode: String): ParcelFileDescriptor {
        val name = uri.lastPathSegment ?: throw FileNotFoundException()
        if (!NAME.matches(name) || mode.contains('r')) throw FileNotFoundException()
        val ctx = context ?: throw FileNotFoundException()
        val file = File(dir(ctx), name)
        return ParcelFileDescriptor.open(
            file,
            ParcelFileDescriptor.MODE_WRITE_ONLY or ParcelFileDescriptor.MODE_CREATE or ParcelFileDescriptor.MODE_TRUNCATE,
        )
    }

    override fun getType(uri: Uri): String = "image/jpeg"
    override fun query(uri: Uri, p: Array<out String>?, s: String?, a: Array<out String>?, o: String?): Cursor? = null
    override fun insert(uri: Uri, values: ContentValues?): Uri? = null
    override fun delete(uri: Uri, selection: String?, selectionArgs: Array<out String>?): Int = 0
    override fun update(uri: Uri, values: ContentValues?, selection: String?, selectionArgs: Array<out String>?): Int = 0

    companion object {
        /** The provider's authority (manifest). */
        const val AUTHORITY = "org.amanat.android.capture"
        private val NAME = Regex("[0-9a-f]{32}\\.jpg")

        /** The capture folder (created on demand). */
        fun dir(context: Context): File = File(context.noBackupFilesDir, "capture").apply { mkdirs() }

        /** A new random file name for one shot. */
        fun newName(): String {
            val b = ByteArray(16).also { SecureRandom().nextBytes(it) }
            return b.joinToString("") { "%02x".format(it) } + ".jpg"
        }

        /** The URI the camera app writes [name] through. */
        fun uri(name: String): Uri = Uri.parse("content://$AUTHORITY/$name")

        /** Overwrites and deletes a shot that is not imported (camera cancelled). */
        fun discard(file: File) {
            if (!file.exists()) return
            try {
                file.outputStream().use { out ->
                    val zeros = ByteArray(8192)
                    var left = file.length()
                    while (left > 0) {
                        val n = minOf(left, zeros.size.toLong()).toInt()
                        out.write(zeros, 0, n)
                        left -= n
                    }
                    out.fd.sync()
                }
            } finally {
                file.delete()
            }
        }
    }
}
