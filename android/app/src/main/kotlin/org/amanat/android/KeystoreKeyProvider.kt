// The platform key provider: the vault's sealed data key is wrapped again with an AES-256-GCM key
// that never leaves the phone's keystore (DESIGN.md "Key slots").
package org.amanat.android

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.security.keystore.UserNotAuthenticatedException
import org.amanat.core.KeyProvider
import org.amanat.core.KeyProviderFfiException
import java.security.GeneralSecurityException
import java.security.KeyStore
import java.security.ProviderException
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * Where the wrapping key lives. On a phone: [AndroidKeystoreKey]. In JVM tests (Robolectric has no
 * AndroidKeyStore) a double holding a `javax.crypto` key stands in, so [KeystoreKeyProvider]'s own
 * logic — wrap format, error mapping — is exercised against the real core either way.
 */
interface WrappingKeyStore {
    /** The existing key, or null when there is none (never created, or deleted). */
    fun find(): SecretKey?

    /** Creates the key on first use. */
    fun create(): SecretKey

    /** Deletes the key; idempotent. */
    fun delete()
}

/**
 * The generated [KeyProvider] over a [WrappingKeyStore]: AES-256-GCM, the IV chosen by the cipher
 * (AndroidKeyStore refuses caller-chosen IVs), output `version ‖ iv(12) ‖ ciphertext+tag`.
 *
 * Every failure becomes one of the three typed provider errors, so the core can tell "the key is
 * gone" (offer wipe) from "the keystore is busy" (retry): in particular
 * [KeyPermanentlyInvalidatedException] — the key invalidated by a change of screen lock or
 * biometrics — is `KeyMissing`, never a crash. Platform messages are not passed on (they could
 * contain anything).
 */
class KeystoreKeyProvider(private val store: WrappingKeyStore) : KeyProvider {
    override fun wrap(plaintext: ByteArray): ByteArray = guard {
        val key = store.find() ?: store.create()
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key)
        cipher.updateAAD(AAD)
        val iv = cipher.iv
        if (iv == null || iv.size != IV_BYTES) throw KeyProviderFfiException.Unavailable("unexpected IV")
        byteArrayOf(FORMAT) + iv + cipher.doFinal(plaintext)
    }

    override fun unwrap(wrapped: ByteArray): ByteArray = guard {
        if (wrapped.size < 1 + IV_BYTES + TAG_BYTES || wrapped[0] != FORMAT) {
            throw KeyProviderFfiException.Rejected()
        }
        val key = store.find() ?: throw KeyProviderFfiException.KeyMissing()
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(TAG_BYTES * 8, wrapped, 1, IV_BYTES))
        cipher.updateAAD(AAD)
        cipher.doFinal(wrapped, 1 + IV_BYTES, wrapped.size - 1 - IV_BYTES)
    }

    override fun destroyKey() = guard { store.delete() }

    private inline fun <T> guard(block: () -> T): T =
        try {
            block()
        } catch (e: KeyProviderFfiException) {
            throw e
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw KeyProviderFfiException.KeyMissing()
        } catch (e: UserNotAuthenticatedException) {
            throw KeyProviderFfiException.Unavailable("user not authenticated")
        } catch (e: AEADBadTagException) {
            throw KeyProviderFfiException.Rejected()
        } catch (e: GeneralSecurityException) {
            throw KeyProviderFfiException.Unavailable("keystore error")
        } catch (e: ProviderException) {
            // AndroidKeyStore reports keymaster/StrongBox failures as ProviderException.
            throw KeyProviderFfiException.Unavailable("keystore error")
        } catch (e: IllegalStateException) {
            throw KeyProviderFfiException.Unavailable("keystore error")
        }

    private companion object {
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val FORMAT: Byte = 1
        const val IV_BYTES = 12
        const val TAG_BYTES = 16
        val AAD = "amanat/android-keystore/v1".toByteArray()
    }
}

/**
 * The wrapping key in `AndroidKeyStore`: AES-256, GCM only, random IVs enforced, non-exportable.
 * StrongBox (a separate secure chip) is asked for when the phone has one; if it refuses
 * ([StrongBoxUnavailableException]) the key is made in the TEE instead, and [strongBoxBacked]
 * says which one holds it.
 *
 * [unlockedDeviceRequired] (Android 9+) makes the key unusable while the phone is locked, so a
 * seized phone that is still running cannot unwrap the vault key without its screen lock.
 */
class AndroidKeystoreKey(
    private val alias: String = DEFAULT_ALIAS,
    private val strongBoxAvailable: Boolean,
    private val unlockedDeviceRequired: Boolean = true,
) : WrappingKeyStore {
    /** Whether the key was created in StrongBox (null until created in this process). */
    @Volatile
    var strongBoxBacked: Boolean? = null
        private set

    private fun keyStore(): KeyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }

    override fun find(): SecretKey? = (keyStore().getEntry(alias, null) as? KeyStore.SecretKeyEntry)?.secretKey

    override fun create(): SecretKey {
        if (strongBoxAvailable && Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
            try {
                return generate(strongBox = true).also { strongBoxBacked = true }
            } catch (e: StrongBoxUnavailableException) {
                // Falls through to the TEE: a key there is still non-exportable.
            }
        }
        return generate(strongBox = false).also { strongBoxBacked = false }
    }

    private fun generate(strongBox: Boolean): SecretKey {
        val builder = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setKeySize(256)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setRandomizedEncryptionRequired(true)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
            builder.setIsStrongBoxBacked(strongBox)
            builder.setUnlockedDeviceRequired(unlockedDeviceRequired)
        }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEYSTORE)
        generator.init(builder.build())
        return generator.generateKey()
    }

    override fun delete() {
        val ks = keyStore()
        if (ks.containsAlias(alias)) ks.deleteEntry(alias)
    }

    companion object {
        /** The alias of the vault's wrapping key. */
        const val DEFAULT_ALIAS = "amanat.vault.wrapping-key"
        private const val ANDROID_KEYSTORE = "AndroidKeyStore"

        /** Whether this phone declares a StrongBox keystore. */
        fun hasStrongBox(context: Context): Boolean =
            Build.VERSION.SDK_INT >= Build.VERSION_CODES.P &&
                context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)
    }
}
