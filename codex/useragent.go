package codex

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"sync"
)

// uaSuffix ends every User-Agent so the upstream can tell this proxy apart
// from the official CLI if it cares to.
const uaSuffix = "usemysub"

// BuildUserAgent returns a Codex-style User-Agent,
// "<originator>/<version> (<os> <os version>; <arch>) usemysub" (docs/protocol.md#user-agent).
// Non-ASCII and control characters become '_'.
func BuildUserAgent(originator, version string) string {
	name, ver := platform()
	osPart := name
	if ver != "" {
		osPart += " " + ver
	}
	return sanitizeUA(originator + "/" + version + " (" + osPart + "; " + arch() + ") " + uaSuffix)
}

var platformOnce = sync.OnceValues(detectPlatform)

func platform() (string, string) { return platformOnce() }

// detectPlatform names the OS the way the official client's os_info does:
// the distribution on Linux, "Mac OS" on macOS.
func detectPlatform() (string, string) {
	switch runtime.GOOS {
	case "linux":
		if name, ver := osRelease("/etc/os-release"); name != "" {
			return name, ver
		}
		b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
		return "Linux", strings.TrimSpace(string(b))
	case "darwin":
		return "Mac OS", ""
	case "windows":
		return "Windows", ""
	default:
		return runtime.GOOS, ""
	}
}

// osRelease reads NAME and VERSION_ID from an os-release file.
func osRelease(path string) (name, version string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		switch k {
		case "NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	return name, version
}

// arch uses the names uname reports, as the official client does.
func arch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "386":
		return "i686"
	case "arm64":
		if runtime.GOOS == "darwin" {
			return "arm64"
		}
		return "aarch64"
	default:
		return runtime.GOARCH
	}
}

func sanitizeUA(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '_'
		}
	}
	return string(b)
}
