// Package testenv starts the real services that phiguard's tests run
// against. It is used by tests only and is not public API.
//
// Azurite, the official Azure Storage emulator, is installed from the npm
// registry into internal/testenv/azurite (pinned by its package-lock.json;
// `make test` runs `npm ci` there). A test binary shares one Azurite blob
// service on a free loopback port:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
//	func TestUpload(t *testing.T) {
//		c := testenv.NewContainer(t) // a fresh, empty container
//		...
//	}
//
// Where Azurite is not installed, tests that need it are skipped with a
// message saying how to install it, unless PHIGUARD_REQUIRE_AZURITE=1 (set by
// `make test` and CI), where they fail instead.
package testenv
