//go:build unix && !linux

package devstack

import (
	"os/exec"
	"syscall"
)

// withChildAttributes puts the child in its own process group, so stopping
// it reaches its children too. Only Linux can kill children with their
// parent; elsewhere a crashed runner may leave servers behind.
func withChildAttributes(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}
