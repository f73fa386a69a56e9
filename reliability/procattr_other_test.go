//go:build !linux

package reliability

import "os/exec"

// dieWithTest does nothing where the kernel cannot tie a child's life to
// its parent's; the tests' cleanups stop the processes.
func dieWithTest(*exec.Cmd) {}
