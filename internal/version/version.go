// Package version holds the build's version, set at link time with
// -ldflags "-X github.com/qgate/qgate/internal/version.Version=...".
package version

// Version of this build.
var Version = "0.1.0-dev"

// UserAgent is what qgate sends to destinations.
func UserAgent() string { return "qgate/" + Version }
