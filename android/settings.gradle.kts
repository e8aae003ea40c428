// Gradle build of the Android shell, for Android Studio users (not run on this project's CI:
// Google's Maven, the Android Gradle Plugin and the NDK are not reachable there; see README.md).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        // JNA (the only runtime library) comes from Maven Central.
        mavenCentral()
        google()
    }
}

rootProject.name = "amanat-android"
include(":app")
