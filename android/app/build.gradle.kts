// The Amanat Android app. Builds the Rust core for the phone ABIs with cargo-ndk, generates the
// Kotlin bindings from the host build of the same library, and packages both with JNA (@aar).
// Needs: Android SDK (platform 35) + NDK, Rust with the Android targets, cargo-ndk (README.md).
import org.gradle.api.tasks.Exec

plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

val repoRoot: File = rootDir.parentFile
val rustJniLibs = layout.buildDirectory.dir("rustJniLibs")
val generatedBindings = layout.buildDirectory.dir("generated/uniffi/kotlin")

android {
    namespace = "org.amanat.android"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.amanat.android"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk {
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets["main"].java.srcDir(generatedBindings)
    sourceSets["main"].jniLibs.srcDir(rustJniLibs)

    testOptions {
        // Robolectric tests (src/test) read the merged resources, as scripts/test-android.sh
        // provides them on the CI.
        unitTests.isIncludeAndroidResources = true
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // JNA with its Android native dispatch libraries; the generated bindings call the core through it.
    implementation("net.java.dev.jna:jna:5.17.0@aar")

    testImplementation("junit:junit:4.13.2")
    testImplementation("org.robolectric:robolectric:4.16.1")
    testImplementation("net.java.dev.jna:jna:5.17.0")
}

// --- the Rust core ---

/** libamanat_ffi.so for each phone ABI, into build/rustJniLibs/<abi>/. */
val cargoNdk by tasks.registering(Exec::class) {
    group = "rust"
    description = "Builds libamanat_ffi for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk"
    workingDir = repoRoot
    commandLine(
        "cargo", "ndk",
        "-t", "arm64-v8a", "-t", "armeabi-v7a", "-t", "x86_64",
        "--platform", "26",
        "-o", rustJniLibs.get().asFile.path,
        "build", "--release", "--locked", "-p", "amanat-ffi", "--lib",
    )
}

/** The host build of the library, which uniffi-bindgen reads the interface from. */
val hostLibrary: String = System.getProperty("os.name").lowercase().let { os ->
    when {
        os.contains("mac") -> "libamanat_ffi.dylib"
        os.contains("windows") -> "amanat_ffi.dll"
        else -> "libamanat_ffi.so"
    }
}

/** The Kotlin bindings, generated from a host build of the same crate (library mode). */
val uniffiBindings by tasks.registering(Exec::class) {
    group = "rust"
    description = "Generates the Kotlin bindings with uniffi-bindgen"
    workingDir = repoRoot
    val out = generatedBindings.get().asFile
    doFirst { out.deleteRecursively() }
    commandLine(
        "sh", "-c",
        "cargo build --release --locked -p amanat-ffi --lib --bins && " +
            "target/release/uniffi-bindgen generate --library target/release/$hostLibrary " +
            "--language kotlin --out-dir '${out.path}'",
    )
}

tasks.named("preBuild") {
    dependsOn(cargoNdk, uniffiBindings)
}
