package image_test

import (
	"fmt"

	"github.com/comingout/extract/pkg/image"
)

// A bundled shell script must run and source the bundled files, not the
// host's: RelocateShell rewrites the absolute paths it runs and sources
// that are in the bundle, under the bundle's root.
func ExampleRelocateShell() {
	script := "#!/bin/sh\n. /usr/lib/app/env.sh\nexec /usr/local/bin/app --config /etc/app.conf\n"
	bundled := map[string]bool{"/usr/lib/app/env.sh": true, "/usr/local/bin/app": true}
	out := image.RelocateShell([]byte(script), "/tmp/x0123456789/rootfs", func(p string) bool { return bundled[p] })
	fmt.Print(string(out))
	// Output:
	// #!/bin/sh
	// . /tmp/x0123456789/rootfs/usr/lib/app/env.sh
	// exec /tmp/x0123456789/rootfs/usr/local/bin/app --config /etc/app.conf
}

// The data rules a package applies by default, each switchable off with
// WithoutData (CLI: --no-data NAME).
func ExampleDataRules() {
	for _, r := range image.DataRules {
		fmt.Println(r.Name)
	}
	// Output:
	// nsswitch
	// passwd
	// tz
	// locale
	// certs
}
