package runtime_test

import (
	"fmt"

	xruntime "github.com/comingout/extract/pkg/runtime"
)

// The program's environment: the function's own variables and the image's
// ENV, the image's PATH and library directories mapped into the package,
// HOME set, and none of Lambda's runtime variables (credentials, region,
// TZ=:UTC, its PATH and library path).
func ExampleEnviron() {
	m := &xruntime.Manifest{
		Program:     "/usr/local/bin/momentum",
		Env:         []string{"PATH=/usr/local/bin:/usr/bin"},
		LibraryPath: []string{"/lib/x86_64-linux-gnu"},
	}
	lambdaEnv := []string{"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=AKIA", "TZ=:UTC", "MODE=fast",
		"LD_LIBRARY_PATH=/lib64:/usr/lib64", "PATH=/usr/bin:/bin"}
	for _, kv := range xruntime.Environ(m, "/var/task", lambdaEnv) {
		fmt.Println(kv)
	}
	// Output:
	// MODE=fast
	// PATH=/var/task/rootfs/usr/local/bin:/var/task/rootfs/usr/bin
	// LD_LIBRARY_PATH=/var/task/rootfs/lib/x86_64-linux-gnu
	// HOME=/tmp
}

// The output key of an input key: the input prefix replaced by the output
// prefix.
func ExampleOutputKey() {
	m := &xruntime.Manifest{
		Input:  xruntime.Input{Prefix: "input/", Suffix: ".csv"},
		Output: xruntime.Output{Prefix: "output/"},
	}
	fmt.Println(xruntime.OutputKey(m, "input/2026/day1.csv"))
	// Output: output/2026/day1.csv
}
