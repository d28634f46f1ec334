// checkprofile parses each file named on the command line with google/pprof's
// profile.Parse and checks it with CheckValid, as every pprof reader does first.
// It prints one line per file and exits 1 if any failed.
//
//	go run . FILE...
package main

import (
	"fmt"
	"os"

	"github.com/google/pprof/profile"
)

func check(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if err := p.CheckValid(); err != nil {
		return fmt.Errorf("CheckValid: %w", err)
	}
	if len(p.SampleType) == 0 {
		return fmt.Errorf("no sample types")
	}
	return nil
}

func main() {
	failed := false
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			fmt.Printf("FAIL %s: %v\n", path, err)
			failed = true
		} else {
			fmt.Printf("ok %s\n", path)
		}
	}
	if failed {
		os.Exit(1)
	}
}
