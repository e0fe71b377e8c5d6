package demo_test

import (
	"fmt"

	"github.com/comingout/extract/internal/demo"
)

// S3 event notifications carry keys URL-encoded in form style.
func ExampleEncodeKey() {
	fmt.Println(demo.EncodeKey("input/red flower.csv"))
	fmt.Println(demo.EncodeKey("input/day 1+2.csv"))
	// Output:
	// input/red+flower.csv
	// input/day+1%2B2.csv
}
