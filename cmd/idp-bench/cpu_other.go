//go:build !unix

package main

import (
	"errors"
	"time"
)

// selfCPU needs getrusage.
func selfCPU() (time.Duration, error) {
	return 0, errors.New("this process's CPU time is only measured on Unix")
}
